"""Reading rich tables back from captured CLI output (for tests of what the verbs print)."""

from __future__ import annotations

from typing import Any


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a boxed rich table as lists of stripped cells."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


def evaluation_cells(metrics: dict[str, Any]) -> list[str]:
    """The figures of one evaluation console-table row, formatted as the table does (4 significant digits)."""
    backtest = metrics.get("backtest", {})
    values = [metrics.get(k) for k in ("rmse", "r2_oos", "directional_accuracy", "ic", "icir", "dm_pvalue")]
    values += [backtest.get(k) for k in ("net_sharpe", "max_drawdown_pct", "turnover")]
    return ["–" if v is None else f"{v:.4g}" for v in values]
