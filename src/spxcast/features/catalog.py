"""The feature catalog: every feature declared once.

A :class:`FeatureSpec` names a feature, its family (group), a description with formula, unit and time
semantics, and the history it needs. Market features carry a Polars expression over one series of bars
(one instrument and granularity, sorted by ``ts``, gaps not filled) that uses only the current and earlier
rows; the same expression serves the full-history batch build and the online computation on the trailing
``lookback`` bars. Frame-built features carry no expression: news features are computed by
:mod:`spxcast.features.news` from articles as of each bar's close, horizon lags by
:mod:`spxcast.features.lags` from the bars by time; both declare the time span they need
(``span_minutes``) besides their bars.

The catalog drives the batch build, the online path, the validation of gold, the feature list stored with
each model (with :meth:`Catalog.fingerprint`) and ``docs/features.md``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from spxcast.errors import SchemaError
from spxcast.sources.market.calendar import resolve_calendar_name

if TYPE_CHECKING:
    from spxcast.config import Settings

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
# Families computed from whole frames by their module, not by a per-feature expression.
NEWS_GROUP = "news"
LAGS_GROUP = "lags"
FRAME_GROUPS: tuple[str, ...] = (NEWS_GROUP, LAGS_GROUP)
# Every family module: market first, then news (owned by the news engineer), then the horizon lags.
FAMILY_MODULES: tuple[str, ...] = (*MARKET_FAMILIES, NEWS_GROUP, LAGS_GROUP)

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
    """What feature definitions may depend on (never on data).

    ``granularity`` is the bar size, ``horizon_minutes`` the forecast horizon H, ``horizon_lags`` how many
    lagged horizon returns the catalog holds (the largest AR order), ``label_tolerance_minutes`` how far
    from ``ts + H`` the bar ending a horizon return may start (the labels' rule, reused by the lags).
    ``horizon_bars`` N, when set, puts the horizon in bars on the trading ``calendar`` (a resolved name such
    as ``cfd``): labels and lags then step N bar positions instead of H minutes.
    """

    granularity: str = "M1"
    horizon_minutes: int = 30
    horizon_lags: int = 6
    label_tolerance_minutes: float = 0.0
    horizon_bars: int | None = None
    calendar: str = "cfd"


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
    expr : Polars expression computing it from bar columns; ``None`` for frame-built features
        (groups in :data:`FRAME_GROUPS`).
    silver : the silver table that holds it (``silver.technical``); ``None`` for frame-built features.
    dtype : dtype in gold.
    span_minutes : time span, in minutes, of history the value needs besides ``lookback`` bars: for news
        features the articles with ``received_at`` in ``(close - span, close]``; for horizon lags the bars
        with ``ts >= ts_t - span``. 0 for market features.
    """

    name: str
    group: str
    description: str
    unit: str
    lookback: int
    expr: pl.Expr | None = None
    silver: str | None = None
    dtype: pl.DataType = field(default_factory=pl.Float32)
    span_minutes: float = 0.0

    def entry(self) -> dict[str, object]:
        """What identifies the feature's definition in :meth:`Catalog.fingerprint`."""
        return {
            "name": self.name,
            "group": self.group,
            "unit": self.unit,
            "lookback": self.lookback,
            "span_minutes": self.span_minutes,
            "dtype": str(self.dtype),
            "description": self.description,
        }


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
            if (spec.expr is None) != (spec.group in FRAME_GROUPS):
                raise SchemaError(
                    f"feature {spec.name!r}: market features need an expression, those of "
                    f"{', '.join(FRAME_GROUPS)} none"
                )
            if spec.span_minutes < 0:
                raise SchemaError(f"feature {spec.name!r} has span {spec.span_minutes} min; it must be >= 0")
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

    def entries(self) -> list[dict[str, object]]:
        """Every spec's identifying entry, in catalog order."""
        return [s.entry() for s in self._specs.values()]

    def fingerprint(self) -> str:
        """SHA-256 of the entries (name, group, unit, lookback, span, dtype, description), in order.

        Saved with every model; every model load compares it with the running catalog's.
        """
        return entries_fingerprint(self.entries())


def entries_fingerprint(entries: Iterable[dict[str, object]]) -> str:
    """SHA-256 of catalog entries (JSON with sorted keys, in the given order)."""
    payload = json.dumps([dict(e) for e in entries], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def entry_differences(
    saved: Iterable[dict[str, object]], running: Catalog, names: Iterable[str]
) -> list[str]:
    """The features among ``names`` whose saved entry differs from the running catalog's (or is absent).

    Each item reads ``name: what differs``; empty when every named feature is defined the same way.
    """
    by_name = {str(e["name"]): e for e in saved}
    out: list[str] = []
    for name in names:
        old = by_name.get(name)
        if name not in running:
            out.append(f"{name}: not in the running catalog")
        elif old is None:
            out.append(f"{name}: not recorded with the model")
        else:
            new = running.get(name).entry()
            fields = [k for k in new if str(old.get(k)) != str(new[k])]
            if fields:
                out.append(f"{name}: {', '.join(fields)} changed")
    return out


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
    """Every feature of every family module (market, news, then horizon lags), in family order."""
    return Catalog(_family_specs(FAMILY_MODULES, context or FeatureContext()))


def feature_context(settings: Settings) -> FeatureContext:
    """The one place that says which settings shape the catalog: bar size, horizon, lags, label tolerance."""
    return FeatureContext(
        granularity=settings.granularity,
        horizon_minutes=settings.horizon_minutes,
        horizon_lags=settings.training.ar_max_lags,
        label_tolerance_minutes=settings.features.label_tolerance_minutes,
        horizon_bars=settings.horizon_bars,
        calendar=resolve_calendar_name(settings.instrument, settings.calendar),
    )


def feature_catalog(settings: Settings) -> Catalog:
    """The running catalog of ``settings``: what gold holds and what every model load is checked against."""
    return default_catalog(feature_context(settings))
