"""The evaluation report of one candidate: ``index.html`` with PNG plots, in a directory it is given.

This is the only module of :mod:`spxcast.evaluation` that writes files. Plots (matplotlib, Agg backend):
predicted vs actual, cumulative gross and net PnL of the sign backtest, feature importance, residuals,
IC by day. The HTML holds every metric of the candidate next to the baselines for every split.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from spxcast.evaluation.backtest import backtest
from spxcast.evaluation.evaluate import ACTUAL, daily_ic

REPORT_FILE = "index.html"
PLOTS = {
    "pred_vs_actual": "Predicted vs actual (test)",
    "pnl": "Cumulative PnL of the sign strategy, gross and net of costs",
    "importance": "Feature importance",
    "residuals": "Residuals (test)",
    "ic_by_day": "IC by day",
}
METRIC_COLUMNS = (
    "rows",
    "rmse",
    "mae",
    "r2_oos",
    "directional_accuracy",
    "ic",
    "rank_ic",
    "icir",
    "dm_statistic",
    "dm_pvalue",
)
BACKTEST_COLUMNS = (
    "gross_sharpe",
    "net_sharpe",
    "max_drawdown_pct",
    "turnover",
    "hit_rate",
    "net_return_pct",
)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)


def _split_rows(predictions: pl.DataFrame, split: str) -> pl.DataFrame:
    rows = predictions.filter(pl.col("split") == split)
    return rows if rows.height else predictions


def plot_pred_vs_actual(predictions: pl.DataFrame, model: str, path: Path) -> None:
    plt = _pyplot()
    rows = _split_rows(predictions, "test")
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.hexbin(rows[model].to_numpy(), rows[ACTUAL].to_numpy(), gridsize=40, bins="log", mincnt=1)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel(f"{model} forecast (%)")
    ax.set_ylabel("actual forward return (%)")
    _save(fig, path)


def plot_pnl(
    predictions: pl.DataFrame, model: str, horizon_minutes: int, cost_bps: float, path: Path
) -> None:
    plt = _pyplot()
    rows = predictions.sort("ts")
    minutes = rows["ts"].dt.epoch("us").to_numpy() / 60e6
    result = backtest(minutes, rows[ACTUAL].to_numpy(), rows[model].to_numpy(), horizon_minutes, cost_bps)
    when = rows["ts"].to_numpy()[result.entry_index]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(when, np.cumsum(result.gross), label="gross")
    ax.plot(when, np.cumsum(result.net), label=f"net of {cost_bps:g} bps round trip")
    for split, first in rows.group_by("split", maintain_order=True).agg(pl.col("ts").min()).iter_rows():
        ax.axvline(first, color="grey", lw=0.6, ls=":")
        ax.annotate(split, (first, 0), xycoords=("data", "axes fraction"), fontsize=8, color="grey")
    ax.set_ylabel("cumulative return (%)")
    ax.legend()
    fig.autofmt_xdate()
    _save(fig, path)


def plot_importance(importance: Mapping[str, float], path: Path, top: int = 25) -> None:
    plt = _pyplot()
    ranked = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.28 * len(ranked) + 1)))
    if ranked:
        ax.barh([k for k, _ in ranked], [v for _, v in ranked])
    else:
        ax.text(0.5, 0.5, "no feature importance for this model", ha="center", va="center")
    _save(fig, path)


def plot_residuals(predictions: pl.DataFrame, model: str, path: Path) -> None:
    plt = _pyplot()
    rows = _split_rows(predictions, "test")
    fig, ax = plt.subplots(figsize=(7, 4))
    residuals = rows[ACTUAL].to_numpy() - rows[model].to_numpy()
    ax.hist(residuals, bins=80, alpha=0.7, label=model)
    ax.hist(rows[ACTUAL].to_numpy(), bins=80, alpha=0.4, label="zero forecast")
    ax.set_xlabel("actual - forecast (%)")
    ax.legend()
    _save(fig, path)


def plot_ic_by_day(predictions: pl.DataFrame, model: str, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for split in dict.fromkeys(predictions["split"].to_list()):
        rows = predictions.filter(pl.col("split") == split).sort("ts")
        daily = daily_ic(rows["ts"], rows[ACTUAL].to_numpy(), rows[model].to_numpy()).drop_nulls("ic")
        ax.bar(daily["day"].to_numpy(), daily["ic"].to_numpy(), label=split, alpha=0.75)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("daily IC (Pearson)")
    ax.legend()
    fig.autofmt_xdate()
    _save(fig, path)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _metrics_html(evaluation: Mapping[str, Mapping[str, Mapping[str, Any]]], candidate: str) -> str:
    splits = list(dict.fromkeys(s for m in evaluation.values() for s in m))
    header = "".join(f"<th>{c}</th>" for c in ("model", *METRIC_COLUMNS, *BACKTEST_COLUMNS))
    parts = []
    for split in splits:
        body = []
        for model, by_split in evaluation.items():
            metrics = by_split.get(split, {})
            values = [metrics.get(c) for c in METRIC_COLUMNS]
            values += [metrics.get("backtest", {}).get(c) for c in BACKTEST_COLUMNS]
            style = ' class="candidate"' if model == candidate else ""
            body.append(
                f"<tr{style}><td>{model}</td>" + "".join(f"<td>{_cell(v)}</td>" for v in values) + "</tr>"
            )
        parts.append(f"<h3>{split}</h3><table><tr>{header}</tr>{''.join(body)}</table>")
    return "".join(parts)


def write_report(
    directory: str | Path,
    candidate: str,
    evaluation: Mapping[str, Mapping[str, Mapping[str, Any]]],
    predictions: pl.DataFrame,
    importance: Mapping[str, float],
    horizon_minutes: int,
    cost_bps: float,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``index.html`` and its PNGs into ``directory`` (created); returns the HTML path."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    plot_pred_vs_actual(predictions, candidate, path / "pred_vs_actual.png")
    plot_pnl(predictions, candidate, horizon_minutes, cost_bps, path / "pnl.png")
    plot_importance(importance, path / "importance.png")
    plot_residuals(predictions, candidate, path / "residuals.png")
    plot_ic_by_day(predictions, candidate, path / "ic_by_day.png")
    images = "".join(f"<h3>{title}</h3><img src='{name}.png' alt='{title}'>" for name, title in PLOTS.items())
    details = html.escape(json.dumps(dict(extra or {}), indent=2, default=str))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>spxcast evaluation: {candidate}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
tr.candidate{{font-weight:bold;background:#eef}}
img{{max-width:900px;display:block}}</style></head><body>
<h1>{candidate}: evaluation against the baselines</h1>
<p>Horizon {horizon_minutes} min; returns in percent; R²_OOS is against the zero forecast; DM p-value is
one-sided (model better than zero), Newey–West variance; backtest holds sign(forecast) for the horizon on
non-overlapping entries at {cost_bps:g} bps per round trip; Sharpe annualised from entries per year.</p>
{_metrics_html(evaluation, candidate)}
{images}
<h2>Run details</h2><pre>{details}</pre>
</body></html>"""
    report = path / REPORT_FILE
    report.write_text(page)
    return report


def console_table(
    evaluation: Mapping[str, Mapping[str, Mapping[str, Any]]], splits: Sequence[str], title: str
) -> Any:
    """A compact rich table: one row per (model, split) with the headline metrics."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    columns = (
        "model",
        "split",
        "rmse",
        "r2_oos",
        "dir_acc",
        "ic",
        "icir",
        "dm_p",
        "net_sharpe",
        "max_dd",
        "turnover",
    )
    # Model and split names are never squeezed, whatever the terminal width.
    names = {"model": [*evaluation, "model"], "split": [*splits, "split"]}
    for column in columns:
        if column in names:
            table.add_column(column, no_wrap=True, min_width=max(map(len, names[column])))
        else:
            table.add_column(column, justify="right")
    for model, by_split in evaluation.items():
        for split in splits:
            m = by_split.get(split)
            if m is None:
                continue
            bt = m.get("backtest", {})
            values = (
                m.get("rmse"),
                m.get("r2_oos"),
                m.get("directional_accuracy"),
                m.get("ic"),
                m.get("icir"),
                m.get("dm_pvalue"),
                bt.get("net_sharpe"),
                bt.get("max_drawdown_pct"),
                bt.get("turnover"),
            )
            table.add_row(model, split, *(_cell(v) for v in values))
    return table
