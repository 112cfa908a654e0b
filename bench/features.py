"""Benchmark: 1.7M synthetic M1 bars through every silver group, gold and labels.

Input: the first 1.7M M1 bars from 2019-01-01 of the embedded synthetic market
(:class:`spxcast.sources.market.synthetic.SyntheticCandleSource`, default settings, seed 1: OANDA CFD
calendar, stochastic volatility, intraday profile, bid/ask). Each run is a fresh subprocess with
``POLARS_MAX_THREADS`` = 2; per stage it reports wall time and the peak RSS of the process sampled
every 5 ms during the stage (the process holds the candles and earlier stages' outputs, as a build
does). The table shows the median of the runs.

    python bench/features.py [--bars 1700000] [--runs 3] [--lake]

``--lake`` times the pipeline tasks themselves (read bronze.candles, compute, write Delta tables).
Each stage also reports the CPU seconds (user + system, all threads) the process spent in it, a figure
that other work on a shared machine disturbs much less than wall time, and the output starts and ends
with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from support.measure import peak_rss  # noqa: E402

# In memory: the feature computation alone; --lake: the tasks with their Delta reads and writes.
GOALS = {False: {"total_s": 20.0, "peak_rss_gb": 4.0}, True: {"total_s": 10.0, "peak_rss_gb": 3.0}}


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    return "load average " + " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"


def _timed(records: list[dict[str, Any]], name: str, function: Callable[[], Any]) -> Any:
    """Run ``function`` as one stage; append its wall seconds, CPU seconds and peak RSS to ``records``."""
    with peak_rss() as peak:
        start, cpu = time.perf_counter(), _cpu_seconds()
        result = function()
        records.append(
            {
                "stage": name,
                "seconds": time.perf_counter() - start,
                "cpu_s": _cpu_seconds() - cpu,
                "peak_rss_gb": peak(),
            }
        )
    return result


def synthetic_candles(n_bars: int) -> Any:
    """The first ``n_bars`` M1 bars of the embedded synthetic market from 2019-01-01, as bronze columns."""
    import polars as pl

    from spxcast.config import SyntheticMarketSettings
    from spxcast.sources.market.synthetic import SyntheticCandleSource

    source = SyntheticCandleSource(SyntheticMarketSettings(), seed=1, horizon_minutes=30)
    days = int(n_bars / (115 * 60) * 7) + 14  # 115 trading hours a week
    end = datetime(2019, 1, 1, tzinfo=UTC) + timedelta(days=days)
    candles = source.generate("SPX500_USD", "M1", datetime(2019, 1, 1, tzinfo=UTC), end).candles.head(n_bars)
    return candles.with_columns(instrument=pl.lit("SPX500_USD"), granularity=pl.lit("M1"))


def one_run(n_bars: int) -> list[dict[str, Any]]:
    """Build everything once; returns one record per stage."""
    from spxcast.features.build import gold_features_frame, gold_market_frame, silver_frame
    from spxcast.features.catalog import SILVER_FAMILIES, FeatureContext, market_catalog
    from spxcast.features.labels import label_schema, make_labels
    from spxcast.lake.tables import BAR_KEY

    candles = synthetic_candles(n_bars)
    catalog = market_catalog(FeatureContext("M1", 30))
    records: list[dict[str, Any]] = []

    def stage(name: str, function: Callable[[], Any]) -> Any:
        return _timed(records, name, function)

    silver = [stage(table, lambda t=table: silver_frame(candles, catalog, t)) for table in SILVER_FAMILIES]
    market = stage("gold.market_features", lambda s=silver: gold_market_frame(s, catalog))
    del silver
    labels = stage("labels", lambda: make_labels(candles, 30, 0.0))
    no_news = market.select(BAR_KEY)  # gold.news_signals (the news pipeline's) is not part of this benchmark
    gold = stage(
        "gold.features", lambda: gold_features_frame(market, no_news, labels, catalog, label_schema(30))
    )
    assert gold.shape == (n_bars, len(BAR_KEY) + len(catalog) + 3)
    return records


def one_lake_run(n_bars: int) -> list[dict[str, Any]]:
    """The pipeline tasks themselves on a temporary lake: read bronze, compute, write Delta tables.

    gold.features is built by the library function behind ``gold_labels`` with the market catalog:
    gold.news_signals (the news pipeline's output) is not part of this benchmark, so no news columns.
    """
    import tempfile

    import polars as pl

    from spxcast.config import load_settings
    from spxcast.features.catalog import feature_context, market_catalog
    from spxcast.lake import Lake
    from spxcast.pipeline.context import TaskContext
    from spxcast.pipeline.runner import resolve_callable
    from spxcast.pipeline.spec import NEWS_FEATURE_TASKS, get_dag
    from spxcast.pipeline.tasks.features import build_gold_features

    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home=Path(home))
        lake = Lake.from_settings(settings)
        candles = synthetic_candles(n_bars)
        lake.write(
            "bronze.candles",
            candles.with_columns(
                pl.lit("bench").alias("source"), pl.lit(datetime.now(UTC)).alias("ingested_at")
            ),
        )
        del candles
        records: list[dict[str, Any]] = []

        def stage(name: str, function: Callable[[], Any]) -> None:
            _timed(records, name, function)

        dag = get_dag("features")
        for name in dag.order():
            if name != "gold_labels" and name not in NEWS_FEATURE_TASKS:
                task = resolve_callable(dag.task(name).callable)
                stage(name, lambda t=task, n=name: t(TaskContext(settings, "bench", n)))
        catalog = market_catalog(feature_context(settings))
        stage(
            "gold_labels (market)",
            lambda: lake.write("gold.features", build_gold_features(settings, lake, catalog)),
        )
        return records


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=1_700_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lake", action="store_true", help="Run the pipeline tasks with Delta reads/writes")
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        print(json.dumps((one_lake_run if args.lake else one_run)(args.bars)))
        return
    env = {**os.environ, "POLARS_MAX_THREADS": "2"}
    goals = GOALS[args.lake]
    print(f"start: {_load()}")
    runs = []
    for _ in range(args.runs):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one-run",
                "--bars",
                str(args.bars),
                *(["--lake"] if args.lake else []),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    stages = [r["stage"] for r in runs[0]]
    mode = "pipeline tasks with Delta I/O" if args.lake else "pure builders in memory"
    print(
        f"features benchmark ({mode}): {args.bars:,} M1 bars, {args.runs} runs (median), POLARS_MAX_THREADS=2"
    )
    print(f"{'stage':<24}{'wall s':>10}{'CPU s':>10}{'peak RSS GB':>14}")
    totals = [sum(r["seconds"] for r in run) for run in runs]
    cpus = [sum(r["cpu_s"] for r in run) for run in runs]
    peaks = [max(r["peak_rss_gb"] for r in run) for run in runs]
    for i, name in enumerate(stages):
        seconds = statistics.median(run[i]["seconds"] for run in runs)
        cpu = statistics.median(run[i]["cpu_s"] for run in runs)
        rss = statistics.median(run[i]["peak_rss_gb"] for run in runs)
        print(f"{name:<24}{seconds:>10.2f}{cpu:>10.2f}{rss:>14.2f}")
    total, cpu, peak = statistics.median(totals), statistics.median(cpus), statistics.median(peaks)
    print(f"{'total':<24}{total:>10.2f}{cpu:>10.2f}{peak:>14.2f}")
    print(
        f"goals: total <= {goals['total_s']:.0f} s ({'met' if total <= goals['total_s'] else 'NOT met'}), "
        f"peak RSS <= {goals['peak_rss_gb']:.0f} GB ({'met' if peak <= goals['peak_rss_gb'] else 'NOT met'})"
    )
    print("runs (total wall s): " + ", ".join(f"{t:.2f}" for t in totals))
    print("runs (total CPU s): " + ", ".join(f"{t:.2f}" for t in cpus))
    print(f"end: {_load()}")
    print("the online row of the newest bar is benchmarked by bench/online.py")


if __name__ == "__main__":
    main()
