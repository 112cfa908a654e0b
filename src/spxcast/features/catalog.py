"""The feature catalog: every feature declared once.

A :class:`FeatureSpec` names a feature, its family (group), a description with formula, unit and time
semantics, and its lookback in bars. Market features carry a Polars expression over one series of bars
(one instrument and granularity, sorted by ``ts``, gaps not filled) that uses only the current and earlier
rows; the same expression serves the full-history batch build and the online computation on the trailing
``lookback`` bars. News features are computed by :mod:`spxcast.features.news` from articles as of each
bar's close; their specs carry no expression.

The catalog drives the batch build, the online path, the validation of gold, the feature list stored with
each model and ``docs/features.md``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import polars as pl

from spxcast.errors import SchemaError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# The columns of one bar series that market feature expressions may read.
BAR_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume", "bid_close", "ask_close")

# Market family modules under spxcast.features, each exposing ``specs(context) -> list[FeatureSpec]``.
MARKET_FAMILIES: tuple[str, ...] = (
    "returns",
    "calendar",
    "technical",
    "volatility",
    "microstructure",
    "shape",
)
# Every family module, market first, then news (owned by the news engineer).
FAMILY_MODULES: tuple[str, ...] = (*MARKET_FAMILIES, "news")

# The one place that says which silver table holds which market families.
SILVER_FAMILIES: dict[str, tuple[str, ...]] = {
    "silver.returns": ("returns", "calendar"),
    "silver.technical": ("technical",),
    "silver.volatility": ("volatility",),
    "silver.microstructure": ("microstructure", "shape"),
}
SILVER_OF_FAMILY: dict[str, str] = {
    family: table for table, families in SILVER_FAMILIES.items() for family in families
}


def feature_name(stem: str, **params: int | float | str) -> str:
    """The one helper that derives a feature name from its parameters.

    ``feature_name("vol_parkinson", w=20)`` is ``"vol_parkinson_w20"``; parameters are appended in the
    order given, as ``_<key><value>`` (whole floats lose their ``.0``; other dots become ``p``).
    """
    parts = [stem]
    for key, value in params.items():
        text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        parts.append(f"{key}{text.replace('.', 'p')}")
    return "_".join(parts)


@dataclass(frozen=True)
class FeatureContext:
    """What feature definitions may depend on: bar size and forecast horizon (never on data)."""

    granularity: str = "M1"
    horizon_minutes: int = 30


@dataclass(frozen=True, eq=False)
class FeatureSpec:
    """One feature.

    Parameters
    ----------
    name : column name, derived from parameters by one helper (``vol_parkinson_w20``).
    group : family: returns, calendar, technical, volatility, microstructure, shape, news.
    description : formula, unit and time semantics ("known at the bar's close").
    unit : e.g. "percent", "ratio", "z-score", "per-bar log-return std", "minutes".
    lookback : bars of history, the current bar included, that determine the value exactly (for
        recursive smoothers: enough bars that the truncated tail is below 1e-6 relative).
    expr : Polars expression computing it from bar columns; ``None`` for news features.
    silver : the silver table that holds it (``silver.technical``); ``None`` for news features.
    dtype : dtype in gold.
    """

    name: str
    group: str
    description: str
    unit: str
    lookback: int
    expr: pl.Expr | None = None
    silver: str | None = None
    dtype: pl.DataType = field(default_factory=pl.Float32)


class Catalog:
    """An ordered, validated set of feature specs."""

    def __init__(self, specs: Iterable[FeatureSpec]) -> None:
        self._specs: dict[str, FeatureSpec] = {}
        for spec in specs:
            if not _NAME.match(spec.name):
                raise SchemaError(f"feature name {spec.name!r} must be lower snake case")
            if spec.name in self._specs:
                raise SchemaError(f"feature {spec.name!r} is declared twice in the catalog")
            if spec.lookback < 1:
                raise SchemaError(f"feature {spec.name!r} has lookback {spec.lookback}; it must be >= 1")
            if not spec.description.strip():
                raise SchemaError(f"feature {spec.name!r} has no description")
            if (spec.expr is None) != (spec.group == "news"):
                raise SchemaError(
                    f"feature {spec.name!r}: market features need an expression, news ones none"
                )
            if spec.expr is not None:
                self._check_market_spec(spec)
            self._specs[spec.name] = spec

    @staticmethod
    def _check_market_spec(spec: FeatureSpec) -> None:
        assert spec.expr is not None
        unknown = sorted(set(spec.expr.meta.root_names()) - set(BAR_COLUMNS))
        if unknown:
            raise SchemaError(f"feature {spec.name!r} reads {unknown}; bar columns are {list(BAR_COLUMNS)}")
        expected = SILVER_OF_FAMILY.get(spec.group)
        if spec.silver != expected:
            raise SchemaError(
                f"feature {spec.name!r} of group {spec.group!r} is in {spec.silver}; expected {expected}"
            )

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def get(self, name: str) -> FeatureSpec:
        try:
            return self._specs[name]
        except KeyError as exc:
            raise SchemaError(f"unknown feature {name!r}; see `spxcast features list`") from exc

    def names(self, group: str | None = None) -> list[str]:
        return [s.name for s in self._specs.values() if group is None or s.group == group]

    def groups(self) -> list[str]:
        return list(dict.fromkeys(s.group for s in self._specs.values()))

    def select(self, names: Iterable[str]) -> Catalog:
        return Catalog(self.get(name) for name in names)

    def max_lookback(self, group: str | None = None) -> int:
        return max((s.lookback for s in self._specs.values() if group is None or s.group == group), default=1)


def _family_specs(families: Iterable[str], context: FeatureContext) -> list[FeatureSpec]:
    specs: list[FeatureSpec] = []
    for module_name in families:
        module = importlib.import_module(f"spxcast.features.{module_name}")
        specs.extend(module.specs(context))
    return specs


def market_catalog(context: FeatureContext | None = None) -> Catalog:
    """Every market feature (the families of :data:`MARKET_FAMILIES`), in family order."""
    return Catalog(_family_specs(MARKET_FAMILIES, context or FeatureContext()))


def default_catalog(context: FeatureContext | None = None) -> Catalog:
    """Every feature of every family module (market, then news), in family order."""
    return Catalog(_family_specs(FAMILY_MODULES, context or FeatureContext()))
