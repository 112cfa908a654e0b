"""Task callables for the runner's reuse tests: they read and write real lake tables and count their runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from spxcast.lake.tables import UTC_TS
from spxcast.pipeline.context import TaskContext


def count(ctx: TaskContext) -> int:
    marker = ctx.settings.home / "markers" / ctx.task
    marker.parent.mkdir(parents=True, exist_ok=True)
    runs = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(runs))
    return runs


def candles(instrument: str, start_minute: int, rows: int) -> pl.DataFrame:
    start = datetime(2024, 1, 2, 14, 30, tzinfo=UTC) + timedelta(minutes=start_minute)
    close = [100.0 + i for i in range(rows)]
    return pl.DataFrame(
        {
            "instrument": [instrument] * rows,
            "granularity": ["M1"] * rows,
            "ts": pl.Series([start + timedelta(minutes=i) for i in range(rows)], dtype=UTC_TS),
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": pl.Series([1] * rows, dtype=pl.Int64),
            "bid_close": close,
            "ask_close": close,
            "source": ["test"] * rows,
            "ingested_at": pl.Series([datetime(2024, 1, 3, tzinfo=UTC)] * rows, dtype=UTC_TS),
        }
    )


def silver_from_bronze(ctx: TaskContext) -> dict[str, Any]:
    lake = ctx.lake
    frame = lake.read("bronze.candles").select(
        "instrument", "granularity", "ts", (pl.col("close") * 2).alias("x")
    )
    return {"version": lake.write("silver.returns", frame), "runs": count(ctx)}


def artifact_from_silver(ctx: TaskContext) -> dict[str, Any]:
    """Reads silver.returns, and gold.features only when it exists (an optional input)."""
    lake = ctx.lake
    rows = lake.read("silver.returns").height + (
        lake.read("gold.features").height if lake.exists("gold.features") else 0
    )
    out = ctx.run_dir / "out"
    out.mkdir(exist_ok=True)
    (out / "result.txt").write_text(f"{rows} rows")
    return {"rows": rows, "runs": count(ctx)}


def external(ctx: TaskContext) -> dict[str, Any]:
    """Reads a lake table but stands for a task with external inputs (declared not reusable)."""
    ctx.lake.read("bronze.candles")
    return {"runs": count(ctx)}
