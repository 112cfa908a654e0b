"""The newest value of market feature expressions, computed in NumPy on only the rows each node needs.

The online row needs each market feature for ONE bar. Polars evaluates every expression over all rows of
its input and spends a fixed few microseconds per expression node and query (about 8 us per node on a few
hundred rows, measured with polars 1.44), so the catalog's ~400 distinct subexpressions cost milliseconds
however few rows they read. A :class:`LastRowProgram` reads the SAME expressions — the catalog's, through
Polars' own JSON form of an expression (within this process); no feature is written twice — shares the
subexpressions they repeat, and evaluates each node in NumPy over only the trailing rows its consumers
need: a rolling window of ``w`` over the last ``k`` rows reads ``k + w - 1`` rows of its input, a shift by
``s`` reads ``k + s``, a recursive mean its warm-up (``min_samples``) more, an elementwise node what its
consumers read. That is the lookback arithmetic of :class:`spxcast.features.terms.Term`, per node, so each
feature's value is the one Polars gives on the feature's declared ``lookback`` bars, up to float64 rounding
(recursive means: the same truncated tail, below :data:`spxcast.features.terms.EWM_TAIL`). Most nodes are
needed for the last row only (509 of the catalog's 660): those run on NumPy scalars, whose operators cost a
fraction of a ufunc call on a one-element array and keep NumPy's semantics (a division by zero is inf).

Semantics kept from Polars: null is NaN here (comparisons, ``when``, ``and``/``or`` with a null operand
give null; ``max/min_horizontal`` and ``coalesce`` skip nulls; rolling windows with a null give null), so a
genuine NaN of Polars comes out as null. An expression holding a node this module does not know, or integer
arithmetic (Polars keeps integer dtypes), is not compiled (:attr:`LastRowProgram.unsupported`): the caller
evaluates it with Polars. At run time, fewer bars than :attr:`LastRowProgram.rows` or a null read by a
recursive mean raise :class:`NotEvaluable`: the caller uses Polars for that row.

Pure: expressions in, arrays out.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import lfilter

# A node's value: an ndarray of its last rows, or a NumPy scalar for its last row alone.
Value = Any

_US_PER = {"Hour": 3_600_000_000, "Minute": 60_000_000, "Second": 1_000_000}
_HOUR_MOD = {"Hour": 24, "Minute": 60, "Second": 60}
_US_PER_DAY = 86_400_000_000
_ARITHMETIC = ("Plus", "Minus", "Multiply", "Modulus")
_INTEGER_DTYPES = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64")
_FLOAT_CASTS = ("Float64", "Float32", "UInt32", "Int64", "Int32", "UInt8", "Int8")


class NotEvaluable(Exception):
    """This window cannot be evaluated here (too few bars, or a null where a recursive mean reads)."""


class _Unsupported(Exception):
    """A node of Polars' expression form this module does not evaluate."""


def _null_mask(*values: Value) -> Any:
    """Where any operand is null (NaN), or False when none can be."""
    masks: list[Any] = [np.isnan(v) for v in values if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    masks += [math.isnan(v) for v in values if isinstance(v, float)]
    if not masks:
        return False
    out = masks[0]
    for mask in masks[1:]:
        out = out | mask
    return out


def _with_nulls(result: np.ndarray, *operands: Value) -> np.ndarray:
    """``result`` (0/1 as float) with NaN where an operand is null, as a Polars comparison gives."""
    mask = _null_mask(*operands)
    out = result.astype(np.float64)
    if mask is not False:
        out = np.where(mask, np.nan, out)
    return out


def _kleene_and(a: Value, b: Value) -> Value:
    false = (np.asarray(a) == 0) | (np.asarray(b) == 0)
    return np.where(false, 0.0, np.where(_null_mask(a, b), np.nan, 1.0))


def _kleene_or(a: Value, b: Value) -> Value:
    true = (np.asarray(a) == 1) | (np.asarray(b) == 1)
    return np.where(true, 1.0, np.where(_null_mask(a, b), np.nan, 0.0))


def _log_one(x: Value) -> Value:
    return np.float64(math.log(x)) if x > 0 else np.float64(-math.inf if x == 0 else math.nan)


def _sqrt_one(x: Value) -> Value:
    return np.float64(math.sqrt(x)) if x >= 0 else np.float64(math.nan)


def _exp_one(x: Value) -> Value:
    try:
        return np.float64(math.exp(x))
    except OverflowError:
        return np.float64(math.inf)


def _float32_one(x: Value) -> Value:
    return np.float64(np.float32(x))


def _clip_one(x: Value, low: float) -> Value:
    return np.float64(low) if x < low else x


# Comparisons as NumPy gives them (a null operand compares false): for ``when`` predicates only.
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "Eq": operator.eq,
    "NotEq": operator.ne,
    "Gt": operator.gt,
    "GtEq": operator.ge,
    "Lt": operator.lt,
    "LtEq": operator.le,
}


def _choose(predicate: Value, yes: Value, no: Value) -> Value:
    """``when(predicate).then(yes).otherwise(no)``: ``no`` where the predicate is false or null."""
    return np.where(predicate == 1, yes, no)


def _choose_one(predicate: Value, yes: Value, no: Value) -> Value:
    return np.float64(yes if predicate == 1 else no)


# Operators on arrays are NumPy's ufuncs; on NumPy scalars (one row) they keep NumPy's semantics (a
# division by zero gives inf, not an error) at a fraction of a ufunc call's cost.
_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "Plus": operator.add,
    "Minus": operator.sub,
    "Multiply": operator.mul,
    "TrueDivide": operator.truediv,
    "Modulus": operator.mod,
    "Eq": lambda a, b: _with_nulls(np.equal(a, b), a, b),
    "NotEq": lambda a, b: _with_nulls(np.not_equal(a, b), a, b),
    "Gt": lambda a, b: _with_nulls(np.greater(a, b), a, b),
    "GtEq": lambda a, b: _with_nulls(np.greater_equal(a, b), a, b),
    "Lt": lambda a, b: _with_nulls(np.less(a, b), a, b),
    "LtEq": lambda a, b: _with_nulls(np.less_equal(a, b), a, b),
    "And": _kleene_and,
    "LogicalAnd": _kleene_and,
    "Or": _kleene_or,
    "LogicalOr": _kleene_or,
}


_add = np.add.reduce


def _windows(x: np.ndarray, w: int) -> np.ndarray:
    return x[None, :] if x.size == w else sliding_window_view(x, w)


# Above this many window cells, sums over windows come from cumulative sums instead of each window.
_CUMULATIVE_CELLS = 4096


def _window_sums(x: np.ndarray, w: int, power: int = 1) -> np.ndarray | None:
    """Sums of ``(x - mean(x))**power`` over each window of ``w`` rows by cumulative sums, or None when
    ``x`` holds a null (a window without one must not be nulled) or the windows are few."""
    k = x.size - w + 1
    if k * w <= _CUMULATIVE_CELLS:
        return None
    centred = x - _add(x) / x.size
    if np.isnan(centred[0]):
        return None
    total = np.concatenate(([0.0], np.cumsum(centred**power)))
    return total[w:] - total[:-w]


def _rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    sums = _window_sums(x, w)
    return _add(_windows(x, w), axis=1) / w if sums is None else sums / w + _add(x) / x.size


def _rolling_sum(x: np.ndarray, w: int) -> np.ndarray:
    sums = _window_sums(x, w)
    return _add(_windows(x, w), axis=1) if sums is None else sums + w * (_add(x) / x.size)


def _rolling_var(x: np.ndarray, w: int, ddof: int) -> np.ndarray:
    first = _window_sums(x, w)
    if first is None:
        v = _windows(x, w)
        d = v - _add(v, axis=1, keepdims=True) / w
        return _add(d * d, axis=1) / (w - ddof)
    second = _window_sums(x, w, 2)
    assert second is not None
    return np.maximum(second - first**2 / w, 0.0) / (w - ddof)


def _rolling_skew(x: np.ndarray, w: int) -> np.ndarray:
    """Bias-corrected sample skewness ``G1 = g1 sqrt(n (n-1)) / (n - 2)``, ``g1 = m3 / m2^1.5``."""
    v = _windows(x, w)
    d = v - v.mean(axis=1, keepdims=True)
    m2, m3 = (d**2).mean(axis=1), (d**3).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return m3 / m2**1.5 * math.sqrt(w * (w - 1)) / (w - 2)


def _rolling_kurtosis(x: np.ndarray, w: int) -> np.ndarray:
    """Bias-corrected excess kurtosis ``((n+1) g2 + 6) (n-1) / ((n-2) (n-3))``, ``g2 = m4 / m2^2 - 3``."""
    v = _windows(x, w)
    d = v - v.mean(axis=1, keepdims=True)
    m2, m4 = (d**2).mean(axis=1), (d**4).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        g2 = m4 / m2**2 - 3
    return ((w + 1) * g2 + 6) * (w - 1) / ((w - 2) * (w - 3))


def _partial_sum(w: int, least: int) -> Callable[[np.ndarray], np.ndarray]:
    """Sums of the non-null values of each window of ``w`` rows; null when fewer than ``least``."""

    def sums(x: np.ndarray) -> np.ndarray:
        windows = _windows(x, w)
        present = _add(~np.isnan(windows), axis=1)
        return np.where(present >= least, _add(np.nan_to_num(windows, nan=0.0), axis=1), np.nan)

    return sums


def _rolling_one(function: str, w: int, params: Mapping[str, Any] | None) -> Callable[[np.ndarray], Value]:
    """The rolling statistic of the last row alone, over the ``w`` rows it is given."""
    if function == "Mean":
        return lambda x: _add(x) / w
    if function == "Sum":
        return _add
    if function == "Max":
        return lambda x: x.max()
    if function == "Min":
        return lambda x: x.min()
    if function in ("Var", "Std") and params is not None and "Var" in params:
        ddof = int(params["Var"]["ddof"])

        def variance(x: np.ndarray) -> Value:
            d = x - _add(x) / w
            return _add(d * d) / (w - ddof)

        return variance if function == "Var" else lambda x: _sqrt_one(variance(x))
    array = _rolling(function, w, params)
    return lambda x: array(x)[0]


def _rolling(function: str, w: int, params: Mapping[str, Any] | None) -> Callable[[np.ndarray], np.ndarray]:
    """The rolling statistic over full windows of ``w`` rows (a null in a window gives null)."""
    if function == "Mean":
        return lambda x: _rolling_mean(x, w)
    if function == "Sum":
        return lambda x: _rolling_sum(x, w)
    if function == "Max":
        return lambda x: _windows(x, w).max(axis=1)
    if function == "Min":
        return lambda x: _windows(x, w).min(axis=1)
    if function in ("Var", "Std") and params is not None and "Var" in params:
        ddof = int(params["Var"]["ddof"])
        if function == "Var":
            return lambda x: _rolling_var(x, w, ddof)
        return lambda x: np.sqrt(_rolling_var(x, w, ddof))
    if function == "Quantile" and params == {"Quantile": {"prob": 0.5, "method": "Linear"}}:
        return lambda x: np.median(_windows(x, w), axis=1)
    if function == "Skew" and params == {"Skew": {"bias": False}} and w > 2:
        return lambda x: _rolling_skew(x, w)
    if function == "Kurtosis" and params == {"Kurtosis": {"fisher": True, "bias": False}} and w > 3:
        return lambda x: _rolling_kurtosis(x, w)
    raise _Unsupported(f"rolling {function} {params}")


def _ewm(alpha: float, warm: int) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], Value]]:
    """``m_t = alpha x_t + (1 - alpha) m_(t-1)`` seeded with the first row (``adjust=False``), from the
    ``warm``-th row on (``min_samples``): the recursion over every row, and the last row alone as the
    weighted sum ``(1 - alpha)^(warm-1) x_0 + sum_j alpha (1 - alpha)^(warm-1-j) x_j``."""
    b, a = [alpha], [1.0, alpha - 1.0]
    weights = alpha * (1 - alpha) ** np.arange(warm - 1, -1, -1.0)
    weights[0] = (1 - alpha) ** (warm - 1)

    def rows(x: np.ndarray) -> np.ndarray:
        if np.isnan(x).any():
            raise NotEvaluable("a recursive mean reads a null")
        return lfilter(b, a, x, zi=[(1 - alpha) * x[0]])[0][warm - 1 :]

    def last(x: np.ndarray) -> Value:
        value = weights @ x
        if np.isnan(value):
            raise NotEvaluable("a recursive mean reads a null")
        return value

    return rows, last


@dataclass
class _Node:
    """A step: ``compute`` maps its input nodes' values (constants bound in) to this node's last rows."""

    compute: Callable[..., Value]
    inputs: list[int]
    grow: Callable[[int], int]  # rows needed of each input for this node's last k rows
    column: str | None = None
    integer: str | None = None  # Polars integers: "time" (Int64 microseconds), "part" (date parts)
    one: Callable[..., Value] | None = None  # the last row alone, from NumPy scalars (default: compute)


def _same(k: int) -> int:
    return k


def _bind(function: Callable[..., Value], constants: list[Any]) -> Callable[..., Value]:
    """``function`` with the operands that are constants (not None in ``constants``) bound."""
    if all(c is None for c in constants):
        return function
    if len(constants) == 2:
        left, right = constants
        if right is not None:
            return lambda x: function(x, right)
        if left is not None:
            return lambda y: function(left, y)

    if len(constants) == 3:
        first, second, third = constants
        if first is None and second is not None and third is None:
            return lambda x, z: function(x, second, z)
        if first is None and second is None and third is not None:
            return lambda x, y: function(x, y, third)

    def compute(*values: Value) -> Value:
        it = iter(values)
        return function(*(next(it) if c is None else c for c in constants))

    return compute


class _Compiler:
    """Polars expression trees (JSON form) -> a DAG of NumPy steps, repeated subtrees shared.

    Every node's value holds exactly its demanded number of trailing rows (see :class:`LastRowProgram`).
    """

    def __init__(self) -> None:
        self.nodes: list[_Node] = []
        self.ids: dict[str, int] = {}

    def add(self, tree: Any) -> int:
        key = json.dumps(tree, sort_keys=True)
        found = self.ids.get(key)
        if found is None:
            found = self._add(tree)
            self.ids[key] = found
        return found

    def _add(self, tree: Any) -> int:
        if not isinstance(tree, dict) or len(tree) != 1:
            raise _Unsupported(str(tree)[:80])
        kind, body = next(iter(tree.items()))
        if kind == "Alias":
            return self.add(body[0])
        if kind == "Cast":
            dtype = body["dtype"].get("Literal") if isinstance(body["dtype"], dict) else None
            if dtype not in _FLOAT_CASTS:
                raise _Unsupported(f"cast to {body['dtype']}")
            inner = self.add(body["expr"])
            if dtype == "Float32":
                return self._push(
                    _Node(lambda x: x.astype(np.float32).astype(np.float64), [inner], _same, one=_float32_one)
                )
            if dtype in _INTEGER_DTYPES:
                if self.nodes[inner].integer:
                    return inner
                # A float cast to integers truncates toward zero (null stays null), and is integer
                # arithmetic's operand from then on.
                return self._push(_Node(np.trunc, [inner], _same, integer="part"))
            if not self.nodes[inner].integer:
                return inner  # already float64 here
            return self._push(_Node(lambda x: x.astype(np.float64), [inner], _same, one=np.float64))
        return self._push(self._node(kind, body))

    def _predicate(self, tree: Any) -> Any:
        """A ``when`` predicate; a comparison becomes a plain NumPy one (a tree of its own). A null
        comparison picks the ``otherwise`` branch, as NaN compares false, so it needs no null mask."""
        if not (isinstance(tree, dict) and "BinaryExpr" in tree and tree["BinaryExpr"]["op"] in _COMPARE):
            return tree
        key = json.dumps({"Predicate": tree}, sort_keys=True)
        if key not in self.ids:
            body = tree["BinaryExpr"]
            self.ids[key] = self._push(self._apply(_COMPARE[body["op"]], [body["left"], body["right"]]))
        return {"Node": self.ids[key]}

    def _integer(self, tree: Any) -> str | None:
        """Whether an operand holds integers in Polars: "time" (timestamps, durations), "part" (date
        parts, integer literals), else None."""
        if isinstance(tree, dict) and "Literal" in tree:
            ((kind, value),) = tree["Literal"].items()
            if kind == "Dyn":
                return "part" if "Int" in value else None
            return "part" if kind == "Scalar" and next(iter(value)) in _INTEGER_DTYPES else None
        return self.nodes[self.add(tree)].integer

    def _push(self, node: _Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def _apply(
        self,
        function: Callable[..., Value],
        operands: Sequence[Any],
        grow: Callable[[int], int] = _same,
        integer: str | None = None,
        one: Callable[..., Value] | None = None,
    ) -> _Node:
        """A node applying ``function`` (``one`` on the last row alone, default ``function``) to its
        operands; literal operands are bound as constants."""
        constants: list[Any] = []
        ids: list[int] = []
        for tree in operands:
            if isinstance(tree, dict) and "Node" in tree:
                constants.append(None)
                ids.append(tree["Node"])
            elif isinstance(tree, dict) and "Literal" in tree:
                constants.append(_literal(tree["Literal"]))
            else:
                constants.append(None)
                ids.append(self.add(tree))
        if not ids:
            raise _Unsupported("an expression of constants")
        return _Node(
            _bind(function, constants),
            ids,
            grow,
            integer=integer,
            one=None if one is None else _bind(one, constants),
        )

    def _node(self, kind: str, body: Any) -> _Node:
        if kind == "Column":
            return _Node(lambda: None, [], _same, column=body, integer="time" if body == "ts" else None)
        if kind == "BinaryExpr":
            op = _BINARY.get(body["op"])
            if op is None:
                raise _Unsupported(f"binary {body['op']}")
            node = self._apply(op, [body["left"], body["right"]])
            integers = [self._integer(body["left"]), self._integer(body["right"])]
            if all(integers) and body["op"] in _ARITHMETIC:
                # Polars keeps integer dtypes (an Int8 date part times 60 wraps around); only the
                # difference of two timestamps or durations (Int64 microseconds here) is computed.
                if body["op"] != "Minus" or "time" not in integers:
                    raise _Unsupported(f"integer {body['op']}")
                node.integer = "time"
            return node
        if kind == "Ternary":
            operands = [self._predicate(body["predicate"]), body["truthy"], body["falsy"]]
            return self._apply(_choose, operands, one=_choose_one)
        if kind == "Function":
            return self._function(body["function"], body["input"])
        raise _Unsupported(kind)

    def _function(self, function: Any, operands: list[Any]) -> _Node:
        if isinstance(function, str):
            simple: dict[str, Callable[..., Value]] = {
                "Abs": operator.abs,
                "Negate": operator.neg,
                "Sign": np.sign,
                "MaxHorizontal": _horizontal(np.fmax),
                "MinHorizontal": _horizontal(np.fmin),
                "Coalesce": _coalesce,
                "FillNull": lambda x, fill: np.where(np.isnan(x), fill, x),
            }
            if function == "Exp":
                return self._apply(np.exp, operands, one=_exp_one)
            if function == "Log":
                return self._apply(
                    lambda x, base: np.log(x) / math.log(base),
                    operands,
                    one=lambda x, base: _log_one(x) / math.log(base),
                )
            if function == "Shift":
                bars = _literal_int(operands[1])
                if bars < 0:
                    raise _Unsupported("shift forwards")
                if bars == 0:
                    node = self._apply(lambda x: x, operands[:1])
                else:
                    node = self._apply(
                        lambda x: x[: x.size - bars],
                        operands[:1],
                        lambda k: k + bars,
                        one=lambda x: x[-1 - bars],
                    )
                node.integer = self.nodes[node.inputs[0]].integer
                return node
            if function in simple:
                return self._apply(simple[function], operands)
            raise _Unsupported(function)
        ((name, params),) = function.items()
        if name == "Pow" and params in ("Sqrt", "Generic"):
            if params == "Sqrt":
                return self._apply(np.sqrt, operands, one=_sqrt_one)
            return self._apply(operator.pow, operands)
        if name == "Clip" and params == {"has_min": True, "has_max": False}:
            return self._apply(
                lambda x, low: np.where(np.isnan(x), x, np.maximum(x, low)), operands, one=_clip_one
            )
        if name == "Trigonometry" and params in ("Sin", "Cos"):
            return self._apply(np.sin if params == "Sin" else np.cos, operands)
        if name == "Boolean" and params == "IsNull":
            return self._apply(lambda x: np.isnan(x).astype(np.float64), operands)
        if name == "TemporalExpr":
            node = self._apply(_temporal(params), operands)
            node.integer = "time" if params == {"TotalMicroseconds": {"fractional": False}} else "part"
            return node
        if name == "RollingExpr":
            options = params["options"]
            w = int(options["window_size"])
            if options["weights"] is not None or options["center"] or w < 1:
                raise _Unsupported(f"rolling {options}")
            least = int(options["min_periods"])
            function, fn_params = params["function"], options["fn_params"]
            if least < w:
                if function != "Sum" or least < 1:
                    raise _Unsupported(f"rolling {function} with min_samples {least} < window {w}")
                partial = _partial_sum(w, least)
                return self._apply(partial, operands, lambda k: k + w - 1, one=lambda x: partial(x)[0])
            return self._apply(
                _rolling(function, w, fn_params),
                operands,
                lambda k: k + w - 1,
                one=_rolling_one(function, w, fn_params),
            )
        if name == "EwmMean":
            options = params["options"]
            if options["adjust"] or options["ignore_nulls"]:
                raise _Unsupported(f"ewm {options}")
            warm = int(options["min_periods"])
            rows, last = _ewm(float(options["alpha"]), warm)
            return self._apply(rows, operands, lambda k: k + warm - 1, one=last)
        raise _Unsupported(name)


def _literal(body: Any) -> Any:
    ((kind, value),) = body.items()
    if kind == "Dyn":
        ((_, number),) = value.items()
        return float(number)
    if kind == "Scalar":
        ((dtype, number),) = value.items()
        if dtype == "Null":
            return math.nan
        if dtype in ("Float64", "Float32", "Int64", "Int32", "UInt32"):
            return float(number)
    raise _Unsupported(f"literal {body}")


def _literal_int(tree: Any) -> int:
    if not (isinstance(tree, dict) and "Literal" in tree):
        raise _Unsupported("non-literal shift")
    value = _literal(tree["Literal"])
    if not float(value).is_integer():
        raise _Unsupported("fractional shift")
    return int(value)


def _horizontal(function: Callable[[Any, Any], Any]) -> Callable[..., Value]:
    def combine(*values: Value) -> Value:
        out = values[0]
        for value in values[1:]:
            out = function(out, value)
        return out

    return combine


def _coalesce(*values: Value) -> Value:
    out = values[0]
    for value in values[1:]:
        out = np.where(np.isnan(out), value, out)
    return out


def _temporal(part: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Date parts of int64 microseconds since the epoch (UTC) and durations in microseconds."""
    if isinstance(part, str) and part in _US_PER:
        per, modulo = _US_PER[part], _HOUR_MOD[part]
        return lambda us: ((us // per) % modulo).astype(np.float64)
    if part == "WeekDay":  # Monday = 1; 1970-01-01 was a Thursday
        return lambda us: ((us // _US_PER_DAY + 3) % 7 + 1).astype(np.float64)
    if part == {"TotalMicroseconds": {"fractional": False}}:
        return lambda us: us
    raise _Unsupported(f"temporal {part}")


class LastRowProgram:
    """Compiled expressions: :meth:`run` gives each one's value on the last row of a window of bars.

    ``names`` are the compiled expressions' output names (in the order given), ``unsupported`` the
    others (a node this module does not evaluate), ``rows`` the trailing bars :meth:`run` needs and
    ``columns`` the bar columns it reads. Each node is computed on its demand: the most trailing rows
    any consumer reads of it (an output: 1).
    """

    def __init__(self, exprs: Sequence[pl.Expr], names: Sequence[str]) -> None:
        compiler = _Compiler()
        outputs: list[tuple[str, int]] = []
        self.unsupported: list[str] = []
        for expr, name in zip(exprs, names, strict=True):
            size = len(compiler.nodes)
            try:
                outputs.append((name, compiler.add(json.loads(expr.meta.serialize(format="json")))))
            except Exception:
                del compiler.nodes[size:]
                compiler.ids = {k: v for k, v in compiler.ids.items() if v < size}
                self.unsupported.append(name)
        self.names = [n for n, _ in outputs]
        nodes = compiler.nodes
        demand = [0] * len(nodes)
        for _, node in outputs:
            demand[node] = 1
        for i in range(len(nodes) - 1, -1, -1):  # consumers come after their inputs
            if demand[i]:
                for j in nodes[i].inputs:
                    demand[j] = max(demand[j], nodes[i].grow(demand[i]))
        live = [i for i in range(len(nodes)) if demand[i]]
        reads = [nodes[i].column for i in live if nodes[i].column is not None]
        self.rows = max((demand[i] for i in live if nodes[i].column is not None), default=1)
        self.columns = sorted({c for c in reads if c is not None})
        self._steps = [_step(i, nodes[i], demand) for i in live]
        self._size = len(nodes)
        self._outputs = [(i, demand[i] == 1) for _, i in outputs]

    def run(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Each compiled expression's last value (float64, NaN for null), in :attr:`names` order.

        ``columns`` holds, for at least :attr:`rows` trailing bars in time order, every column in
        :attr:`columns`: ts as int64 microseconds since the epoch (UTC), the others as float64 with NaN
        for null.
        """
        height = min((v.size for v in columns.values()), default=0)
        if height < self.rows:
            raise NotEvaluable(f"{height} bars, the expressions need {self.rows}")
        values: list[Any] = [None] * self._size
        with np.errstate(all="ignore"):
            for step in self._steps:
                step(values, columns)
        return np.array([values[i] if one else values[i][-1] for i, one in self._outputs], dtype=np.float64)


def _step(i: int, node: _Node, demand: list[int]) -> Callable[[list[Any], Mapping[str, np.ndarray]], None]:
    """Node ``i`` as a step that stores its last ``demand[i]`` rows in ``values[i]``: an array, or a
    NumPy scalar when the demand is one row."""
    rows = demand[i]
    if node.column is not None:
        name, at = node.column, -1 if rows == 1 else slice(-rows, None)

        def read(values: list[Any], columns: Mapping[str, np.ndarray]) -> None:
            values[i] = columns[name][at]

        return read
    compute = node.one if rows == 1 and node.one is not None else node.compute
    need = node.grow(rows)
    # Each input holds its own demand: read as is, its last row (a scalar), or its last ``need`` rows.
    wants = [(j, None if demand[j] == need else -1 if need == 1 else slice(-need, None)) for j in node.inputs]
    if len(wants) == 1:
        ((j, only),) = wants
        if only is None:

            def unary(values: list[Any], columns: Mapping[str, np.ndarray]) -> None:
                values[i] = compute(values[j])

            return unary

        def unary_at(values: list[Any], columns: Mapping[str, np.ndarray]) -> None:
            values[i] = compute(values[j][only])

        return unary_at
    if len(wants) == 2:
        (j, at_j), (m, at_m) = wants
        if at_j is None and at_m is None:

            def binary(values: list[Any], columns: Mapping[str, np.ndarray]) -> None:
                values[i] = compute(values[j], values[m])

            return binary

    def apply(values: list[Any], columns: Mapping[str, np.ndarray]) -> None:
        values[i] = compute(*[values[j] if at is None else values[j][at] for j, at in wants])

    return apply
