"""Compiled evaluation plans for a set of market feature expressions: shared subexpressions computed once.

The catalog's expressions are built from :class:`spxcast.features.terms.Term` compositions, so the same
subexpression (a rolling mean of the typical price, a spread estimate, a smoothed true range) appears many
times inside one feature and across features. Polars' common-subexpression elimination finds them again on
every query, which dominates the cost of evaluating a few hundred bars (the online path). A
:class:`StagedPlan` finds them ONCE: every subexpression that occurs at least twice and reads a column
becomes a named intermediate column, computed in dependency order by ``with_columns`` stages, and each
feature becomes a small expression over those columns. The values are those of the original expressions
on the same rows (same operations, same order); :func:`evaluate` checks that on its first use and falls
back to the plain expressions when they differ.

Pure: expressions in, expressions out (through Polars' own JSON form of an expression, for this process).
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

log = logging.getLogger(__name__)

# Expression nodes (of Polars' JSON form) that map rows to the same rows: safe to compute as a column.
_MATERIALISABLE = ("BinaryExpr", "Function", "Cast", "Ternary")
_PREFIX = "__spxcast_shared_"
_NO_CSE = pl.QueryOptFlags(comm_subexpr_elim=False)


def _expression_nodes(node: Any, found: list[dict[str, Any]]) -> None:
    """Every materialisable expression node under ``node`` (pre-order; repeated subtrees repeat)."""
    if isinstance(node, dict):
        if len(node) == 1 and next(iter(node)) in _MATERIALISABLE:
            found.append(node)
        for value in node.values():
            _expression_nodes(value, found)
    elif isinstance(node, list):
        for value in node:
            _expression_nodes(value, found)


def _key(node: Any) -> str:
    return json.dumps(node, sort_keys=True)


def _replace(node: Any, names: dict[str, str], keep: Any = None) -> Any:
    """``node`` with every shared subexpression (except ``keep`` itself) replaced by its column."""
    if isinstance(node, dict):
        if node is not keep and len(node) == 1 and next(iter(node)) in _MATERIALISABLE:
            name = names.get(_key(node))
            if name is not None:
                return {"Column": name}
        return {k: _replace(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace(v, names) for v in node]
    return node


def _expr(node: Any) -> pl.Expr:
    return pl.Expr.deserialize(io.StringIO(json.dumps(node)), format="json")


@dataclass
class StagedPlan:
    """Expressions evaluated as ``with_columns`` stages of shared subexpressions, then one ``select``.

    ``plain`` are the original expressions (aliased), used when staging is not possible or disagrees.
    """

    plain: list[pl.Expr]
    stages: list[list[pl.Expr]] = field(default_factory=list)
    finals: list[pl.Expr] = field(default_factory=list)
    checked: bool = False

    @property
    def staged(self) -> bool:
        return bool(self.finals)

    def lazy(self, frame: pl.DataFrame, last_only: bool = True) -> pl.LazyFrame:
        """The query over ``frame``: every expression's column (only the last row when ``last_only``)."""
        if not self.staged:
            query = frame.lazy().select(self.plain)
        else:
            query = frame.lazy()
            for stage in self.stages:
                query = query.with_columns(stage)
            query = query.select(self.finals)
        return query.tail(1) if last_only else query


def staged_plan(exprs: Sequence[pl.Expr], names: Sequence[str]) -> StagedPlan:
    """Compile ``exprs`` (output columns ``names``) into a :class:`StagedPlan`."""
    plain = [e.alias(n) for e, n in zip(exprs, names, strict=True)]
    try:
        trees = [json.loads(e.meta.serialize(format="json")) for e in plain]
    except Exception as exc:  # an expression Polars cannot serialise (a Python UDF): no staging
        log.info("market plan not staged: %s", exc)
        return StagedPlan(plain)
    nodes: list[dict[str, Any]] = []
    for tree in trees:
        _expression_nodes(tree, nodes)
    counts = Counter(_key(n) for n in nodes)
    shared = sorted((k for k, c in counts.items() if c > 1 and '"Column"' in k), key=len)
    columns = {k: f"{_PREFIX}{i}" for i, k in enumerate(shared)}
    level: dict[str, int] = {}
    stages: dict[int, list[pl.Expr]] = {}
    try:
        for k in shared:  # shorter first: a shared node's shared parts are shorter, so already placed
            node = json.loads(k)
            body = _replace(node, columns, keep=node)
            inner = [
                other for other in shared[: shared.index(k)] if f'"{columns[other]}"' in json.dumps(body)
            ]
            level[k] = 1 + max((level[other] for other in inner), default=0)
            stages.setdefault(level[k], []).append(_expr(body).alias(columns[k]))
        finals = [_expr(_replace(tree, columns)) for tree in trees]
    except Exception as exc:
        log.info("market plan not staged: %s", exc)
        return StagedPlan(plain)
    return StagedPlan(plain, [stages[d] for d in sorted(stages)], finals)


def evaluate(plans: Sequence[tuple[StagedPlan, pl.DataFrame]]) -> list[pl.DataFrame]:
    """The last row of each plan over its frame, in one ``collect_all``.

    On a staged plan's first use, its result is compared with the plain expressions' on the same frame;
    if they differ (a Polars operation whose value depends on being computed inline), the plan drops its
    stages for good.
    """
    for plan, frame in plans:
        if plan.staged and not plan.checked:
            staged = plan.lazy(frame).collect(optimizations=_NO_CSE)
            reference = StagedPlan(plan.plain).lazy(frame).collect()
            if not staged.equals(reference):
                log.warning("staged market plan differs from the plain expressions; using the plain ones")
                plan.stages, plan.finals = [], []
            plan.checked = True
    staged_plans = [(p, f) for p, f in plans if p.staged]
    plain_plans = [(p, f) for p, f in plans if not p.staged]
    results: dict[int, pl.DataFrame] = {}
    if staged_plans:
        frames = pl.collect_all([p.lazy(f) for p, f in staged_plans], optimizations=_NO_CSE)
        results |= {id(p): r for (p, _), r in zip(staged_plans, frames, strict=True)}
    if plain_plans:
        frames = pl.collect_all([p.lazy(f) for p, f in plain_plans])
        results |= {id(p): r for (p, _), r in zip(plain_plans, frames, strict=True)}
    return [results[id(p)] for p, _ in plans]
