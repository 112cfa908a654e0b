"""Pure data preparation for the dashboard pages: wire documents of the API in, frames and figures out.

No I/O and no clock: the current time is passed in. Returns are in percent, prices in the instrument's
quote units, timestamps UTC. A forecast made at the close of bar ``ts`` is for the return from that close to
the close ``horizon`` later, i.e. the close of the bar starting at ``ts + horizon``: it is drawn at that bar
(x = ``ts + horizon`` on a chart whose x is the bar start), where the realised outcome appears too.
Skill figures use the same definitions as training's evaluation (``spxcast.evaluation``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from spxcast.evaluation import metrics
from spxcast.evaluation.backtest import backtest
from spxcast.evaluation.evaluate import daily_ic, ic_period

NEWS_PREFIX = "news_"
"""Prefix of the news features' names (``spxcast.features.news``)."""

_TS: pl.DataType = pl.Datetime("us", "UTC")
_BAR_SCHEMA: dict[str, pl.DataType] = {
    "ts": _TS,
    **{c: pl.Float64() for c in ("open", "high", "low", "close")},
}
_FORECAST_SCHEMA: dict[str, pl.DataType] = {
    "prediction_id": pl.String(),
    "bar_ts": _TS,
    "target_ts": _TS,
    "model_version": pl.Int64(),
    "slot": pl.String(),
    "price": pl.Float64(),
    "predicted_pct": pl.Float64(),
    "lower_pct": pl.Float64(),
    "upper_pct": pl.Float64(),
    "realised_pct": pl.Float64(),
    "predicted_price": pl.Float64(),
    "lower_price": pl.Float64(),
    "upper_price": pl.Float64(),
    "realised_price": pl.Float64(),
    "interval_note": pl.String(),
}


def parse_ts(value: str | datetime) -> datetime:
    """An ISO timestamp of the API as an aware UTC datetime (naive values are UTC)."""
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def bars_frame(bars: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Bars (ts = bar start, UTC; OHLC) of the ``/bars`` document, sorted by ts, one row per bar."""
    rows = [{"ts": parse_ts(b["ts"]), **{k: b[k] for k in ("open", "high", "low", "close")}} for b in bars]
    return pl.DataFrame(rows, schema=_BAR_SCHEMA).unique("ts", keep="last").sort("ts")


def latest_session(
    bars: pl.DataFrame, bar: timedelta, max_gap_bars: int = 5, window: int = 0
) -> pl.DataFrame:
    """The bars after the last gap longer than ``max_gap_bars`` bar lengths (a session break: a weekend,
    a daily halt), at most the last ``window`` of them (0: all)."""
    if bars.height == 0:
        return bars
    gaps = bars["ts"].diff() > bar * max_gap_bars
    starts = np.flatnonzero(gaps.fill_null(False).to_numpy())
    session = bars.slice(int(starts[-1])) if len(starts) else bars
    return session.tail(window) if window else session


def forecast_frame(rows: Sequence[Mapping[str, Any]], horizon_minutes: int) -> pl.DataFrame:
    """One row per logged forecast (``/predictions/history`` rows with a bar): the bar it was made at,
    ``target_ts`` = bar start + horizon (where it is drawn), and its forecast, interval and realised
    outcome as returns and as prices (close of the bar it was made at × (1 + return / 100)).

    A bound the API could not give is null, and ``interval_note`` says why (the API's note; an older API's
    rows without one get a generic note)."""
    horizon = timedelta(minutes=horizon_minutes)
    out = []
    for r in rows:
        if r.get("bar_ts") is None:
            continue
        bar_ts = parse_ts(r["bar_ts"])
        price = r.get("price")

        def at(pct: float | None, price: float | None = price) -> float | None:
            return None if price is None or pct is None else price * (1 + pct / 100)

        out.append(
            {
                "prediction_id": r["prediction_id"],
                "bar_ts": bar_ts,
                "target_ts": bar_ts + horizon,
                "model_version": r["model_version"],
                "slot": r["slot"],
                "price": price,
                "predicted_pct": r["predicted_return_pct"],
                "lower_pct": r.get("lower_pct"),
                "upper_pct": r.get("upper_pct"),
                "realised_pct": r.get("realised_return_pct"),
                "predicted_price": at(r["predicted_return_pct"]),
                "lower_price": at(r.get("lower_pct")),
                "upper_price": at(r.get("upper_pct")),
                "realised_price": at(r.get("realised_return_pct")),
                "interval_note": _interval_note(r),
            }
        )
    # Built by columns: from rows, polars infers types from the first rows and may null later values.
    columns = {name: [row[name] for row in out] for name in _FORECAST_SCHEMA}
    frame = pl.DataFrame(columns, schema=_FORECAST_SCHEMA)
    # several forecasts of one bar (repeated requests): the newest one is drawn
    return frame.unique("bar_ts", keep="last", maintain_order=True).sort("bar_ts")


def as_of(forecasts: pl.DataFrame, newest_bar: datetime) -> pl.DataFrame:
    """The forecasts (:func:`forecast_frame`) as of the bars on the chart, whose newest starts at
    ``newest_bar``: those made at a bar up to it, with the realised outcome only where the bar it is the close
    of is on the chart (bars and forecasts are read one after the other while a loop runs: a newer forecast
    or outcome waits for the next refresh, with its bar)."""
    known = pl.col("target_ts") <= newest_bar
    return forecasts.filter(pl.col("bar_ts") <= newest_bar).with_columns(
        pl.when(known).then(pl.col(c)).alias(c) for c in ("realised_pct", "realised_price")
    )


def band(forecasts: pl.DataFrame) -> tuple[list[datetime | None], list[float | None]]:
    """The prediction-interval band of the forecasts (:func:`forecast_frame`, sorted by bar) as one
    ``fill="toself"`` trace: each run of consecutive forecasts with both bounds is a closed shape (upper
    bounds forward, lower bounds back) at their ``target_ts``; runs are separated by a null point, so no
    band is drawn across a forecast without a finite interval."""
    xs: list[datetime | None] = []
    ys: list[float | None] = []
    run: list[tuple[datetime, float, float]] = []

    def close() -> None:
        if run:
            xs.extend([x for x, _, _ in run] + [x for x, _, _ in reversed(run)] + [None])
            ys.extend([u for _, _, u in run] + [lo for _, lo, _ in reversed(run)] + [None])
            run.clear()

    for x, lower, upper in forecasts.select("target_ts", "lower_price", "upper_price").iter_rows():
        if lower is None or upper is None:
            close()
        else:
            run.append((x, lower, upper))
    close()
    return xs[:-1], ys[:-1]


def _interval_note(row: Mapping[str, Any]) -> str | None:
    if row.get("lower_pct") is not None and row.get("upper_pct") is not None:
        return None
    return row.get("interval_note") or "no interval in the API's log for this forecast"


@dataclass(frozen=True)
class MarketState:
    """Whether bars are arriving: ``open`` when the newest bar closed within ``stale`` of now."""

    open: bool
    newest_close: datetime | None
    age: timedelta | None
    message: str


def market_state(
    newest_bar: datetime | None, now: datetime, bar: timedelta, stale_bars: int = 3
) -> MarketState:
    """From the newest bar's start: closed (no bar for more than ``stale_bars`` bars, at least 5 minutes)
    with a sentence saying what it means and what to do."""
    if newest_bar is None:
        return MarketState(
            False,
            None,
            None,
            "No bars stored yet: ingest market data (spxcast ingest market) or start the live loop.",
        )
    close = newest_bar + bar
    age = now - close
    if age <= max(bar * stale_bars, timedelta(minutes=5)):
        return MarketState(True, close, age, f"Bars are arriving; the newest closed {ago(age)} ago.")
    return MarketState(
        False,
        close,
        age,
        f"No new bar since {close:%Y-%m-%d %H:%M} UTC ({ago(age)} ago): the market is closed (weekend, "
        "holiday or daily break) or the feed has stopped. The chart shows the last session; forecasts resume "
        "with the next bar. If the market should be open, check the live loop and the Health page.",
    )


def following(
    newest: Mapping[str, Any] | None,
    newest_bar: datetime | None,
    now: datetime,
    bar: timedelta,
    fresh: timedelta = timedelta(minutes=5),
) -> datetime | None:
    """Where the live chart ends when forecasts are being made now for stored bars older than the newest
    one: a replay (``spxcast serve --live --replay`` over a range the lake holds) or a loop catching up.

    From the newest logged forecast (a ``/predictions/history`` row) and the newest stored bar's start: the
    end (exclusive: the start of the bar after the forecast's bar) when the forecast was logged within
    ``fresh`` of ``now``, its bar closed more than ``fresh`` before ``now``, and newer bars are stored;
    None otherwise (the chart shows the newest stored bars)."""
    if newest is None or newest.get("bar_ts") is None or newest_bar is None:
        return None
    bar_ts = parse_ts(newest["bar_ts"])
    logged = parse_ts(newest["created_at"])
    if now - logged <= fresh and now - (bar_ts + bar) > fresh and bar_ts < newest_bar:
        return bar_ts + bar
    return None


def ago(age: timedelta) -> str:
    """A duration for reading: seconds, minutes, hours or days (whole, rounded down)."""
    seconds = max(0, int(age.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} days"


def contributions(explanation: Mapping[str, Any], top: int = 10, prefix: str | None = None) -> pl.DataFrame:
    """The ``top`` feature contributions (percent) by size, of features starting with ``prefix`` if given."""
    items = [
        (name, float(value))
        for name, value in explanation["contributions_pct"].items()
        if prefix is None or name.startswith(prefix)
    ]
    items.sort(key=lambda item: abs(item[1]), reverse=True)
    schema = {"feature": pl.String, "contribution_pct": pl.Float64}
    return pl.DataFrame(items[:top], schema=schema, orient="row")


def realised(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """History rows whose outcome is known: bar_ts, model_version, predicted_pct, realised_pct (one per bar
    and version, the first logged), sorted by bar."""
    frame = pl.DataFrame(
        [
            {
                "bar_ts": parse_ts(r["bar_ts"]),
                "model_version": r["model_version"],
                "predicted_pct": r["predicted_return_pct"],
                "realised_pct": r["realised_return_pct"],
            }
            for r in rows
            if r.get("bar_ts") is not None and r.get("realised_return_pct") is not None
        ],
        schema={
            "bar_ts": _TS,
            "model_version": pl.Int64,
            "predicted_pct": pl.Float64,
            "realised_pct": pl.Float64,
        },
    )
    return frame.unique(["bar_ts", "model_version"], keep="first").sort("bar_ts")


@dataclass(frozen=True)
class Skill:
    """Realised skill of one version's forecasts (returns in percent).

    ``r2_oos`` is against the zero forecast (positive = beats zero); ``hit_rate`` the share of moves whose
    sign was right; ``mean_ic`` the mean of the per-period ICs, ``pooled_ic`` the IC over all rows (the
    ``ic`` of training's evaluation); ``ic_by`` the IC period (day, or week/month when days hold too few
    rows); ``pnl`` the cumulative net return of holding sign(forecast) for the horizon on non-overlapping
    entries at ``cost_bps`` round trip.
    """

    rows: int
    rmse: float
    rmse_zero: float
    r2_oos: float
    hit_rate: float
    mean_ic: float
    pooled_ic: float
    ic_by: str
    ic: pl.DataFrame
    net_return_pct: float
    pnl: pl.DataFrame


def skill(frame: pl.DataFrame, horizon_minutes: int, cost_bps: float) -> Skill | None:
    """Skill of the realised rows of one version (:func:`realised`, filtered); None without rows."""
    if frame.height == 0:
        return None
    y = frame["realised_pct"].to_numpy()
    pred = frame["predicted_pct"].to_numpy()
    period = ic_period(frame["bar_ts"])
    ic = daily_ic(frame["bar_ts"], y, pred, period)
    minutes = frame["bar_ts"].dt.epoch("us").to_numpy() / 60e6
    result = backtest(minutes, y, pred, horizon_minutes, cost_bps)
    entries = frame["bar_ts"].gather(result.entry_index)
    pnl = pl.DataFrame({"bar_ts": entries, "cumulative_net_pct": np.cumsum(result.net)})
    ics = ic["ic"].drop_nulls().to_numpy()
    return Skill(
        rows=frame.height,
        rmse=metrics.rmse(y, pred),
        rmse_zero=metrics.rmse(y, np.zeros_like(y)),
        r2_oos=metrics.r2_oos(y, pred),
        hit_rate=metrics.directional_accuracy(y, pred),
        mean_ic=float(np.mean(ics)) if len(ics) else math.nan,
        pooled_ic=metrics.ic(y, pred),
        ic_by=period,
        ic=ic,
        net_return_pct=float(result.net.sum()),
        pnl=pnl,
    )


SKILL_METRICS = {
    "rows": "realised forecasts",
    "rmse": "RMSE (%)",
    "rmse_zero": "RMSE of the zero forecast (%)",
    "r2_oos": "R²_OOS vs zero",
    "hit_rate": "hit rate",
    "mean_ic": "mean IC",
    "pooled_ic": "IC (all rows)",
    "net_return_pct": "cumulative net PnL (%)",
}
"""The rows of the skill table: :class:`Skill` attribute -> label."""

_LOGGED = {
    "rows": ("model", "rows"),
    "rmse": ("model", "rmse"),
    "rmse_zero": ("zero", "rmse"),
    "r2_oos": ("model", "r2_oos"),
    "hit_rate": ("model", "directional_accuracy"),
    "pooled_ic": ("model", "ic"),
    "net_return_pct": ("model", "backtest_net_return_pct"),
}
"""Where each skill figure is in training's logged metrics (``metrics[split][predictor][metric]``): the same
definitions (``spxcast.evaluation``). The mean of per-period ICs is not logged."""


def promoted_figures(metrics: Mapping[str, Any], split: str) -> dict[str, float | None]:
    """The skill figures a version was evaluated (and promoted) on, from its logged metrics
    (``GET /models/{version}/metrics``) on ``split`` (``test``, ``oot``); None where not logged."""
    by_predictor = metrics.get(split) or {}
    out: dict[str, float | None] = {}
    for key in SKILL_METRICS:
        predictor, name = _LOGGED.get(key, ("", ""))
        value = (by_predictor.get(predictor) or {}).get(name)
        out[key] = _finite(value) if isinstance(value, int | float) else None
    return out


def skill_table(
    named: Mapping[str, Skill | None], promoted: Mapping[str, Mapping[str, float | None]] | None = None
) -> pl.DataFrame:
    """Side-by-side figures: one column per name (e.g. champion, shadow challenger), then one per figures
    the champion was promoted on (:func:`promoted_figures`), one row per metric (:data:`SKILL_METRICS`)."""
    table: dict[str, list[Any]] = {"metric": list(SKILL_METRICS.values())}
    for name, value in named.items():
        table[name] = [None if value is None else _finite(getattr(value, key)) for key in SKILL_METRICS]
    for name, figures in (promoted or {}).items():
        table[name] = [figures.get(key) for key in SKILL_METRICS]
    return pl.DataFrame(table, strict=False)


def _finite(value: float | int | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def promotion_of(history: Mapping[str, Any], version: int) -> Mapping[str, Any] | None:
    """The newest ``promote`` transition of ``version`` in a ``GET /models/history`` document (None when it
    was never promoted through the registry)."""
    return next(
        (t for t in history["transitions"] if t["version"] == version and t["action"] == "promote"), None
    )


def gates_frame(gates: Sequence[Mapping[str, Any]] | None) -> pl.DataFrame:
    """One row per promotion gate: name, passed (yes/NO), figure."""
    rows = [(g["name"], "yes" if g["passed"] else "NO", g["figure"]) for g in gates or []]
    return pl.DataFrame(rows, schema=["gate", "passed", "figure"], orient="row")


def transitions_frame(history: Mapping[str, Any]) -> pl.DataFrame:
    """The registry steps of a ``GET /models/history`` document, newest first, for reading: when (UTC),
    version, action, from → to, by, why, forced, and the gates in one cell (``n/m passed`` and the
    failures)."""
    rows = []
    for t in history["transitions"]:
        gates = t.get("gates")
        if gates is None:
            verdict = ""
        else:
            failed = [g["name"] for g in gates if not g["passed"]]
            verdict = f"{len(gates) - len(failed)}/{len(gates)} passed" + (
                f"; failed: {', '.join(failed)}" if failed else ""
            )
        rows.append(
            {
                "when (UTC)": f"{parse_ts(t['at']):%Y-%m-%d %H:%M:%S}",
                "version": t["version"],
                "action": t["action"],
                "state": f"{t['from_state']} → {t['to_state']}",
                "by": t["actor"],
                "why": t["reason"],
                "forced": "yes" if t["forced"] else "",
                "gates": verdict,
            }
        )
    schema = ["when (UTC)", "version", "action", "state", "by", "why", "forced", "gates"]
    return pl.DataFrame(rows, schema={c: pl.Int64 if c == "version" else pl.String for c in schema})


def slot_changes_frame(history: Mapping[str, Any]) -> pl.DataFrame:
    """The serving slots' changes of a ``GET /models/history`` document, newest first: when (UTC), action,
    the live slot and version after it, the versions and weights of both slots, shadow, by, why."""
    rows = []
    for c in history["slot_changes"]:
        slots = ", ".join(
            f"{slot} v{version if version is not None else '-'} ({c['weights'].get(slot, 0.0):.0%})"
            for slot, version in c["versions"].items()
        )
        rows.append(
            {
                "when (UTC)": f"{parse_ts(c['at']):%Y-%m-%d %H:%M:%S}",
                "action": c["action"],
                "live": f"{c['live']} v{c['versions'].get(c['live'])}",
                "slots (traffic)": slots,
                "shadow": "on" if c["shadow"] else "off",
                "by": c["actor"],
                "why": c["reason"],
            }
        )
    schema = ["when (UTC)", "action", "live", "slots (traffic)", "shadow", "by", "why"]
    return pl.DataFrame(rows, schema=dict.fromkeys(schema, pl.String))


def drift_figures(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The headline figures of a monitoring summary: when it ran, the share of drifted features, the age
    of the newest bar and article (minutes on the trading calendar), the quarantine rate."""
    figures: list[tuple[str, str]] = []
    if summary.get("at"):
        figures.append(("run at (UTC)", f"{parse_ts(summary['at']):%Y-%m-%d %H:%M}"))
    for key, label, form in (
        ("drift_share", "drifted features", "{:.0%}"),
        ("bar_age_minutes", "bar age (min)", "{:.0f}"),
        ("article_age_minutes", "article age (min)", "{:.0f}"),
        ("quarantine_rate", "quarantine rate", "{:.2%}"),
    ):
        value = summary.get(key)
        figures.append((label, "n/a" if value is None else form.format(value)))
    return figures
