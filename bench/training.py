"""Benchmark of the training stage: gold -> three candidates (tuned) -> selection.

Default: a GOLD-SHAPED SYNTHETIC frame (1.7M M1 bars x 110 Float32 features, a planted signal on a few of
them, weekend-like halts), because this branch has no real gold build; with ``--home DIR`` it runs the real
tasks on that home's ``gold.features`` (the lake and feature catalog of a full install) instead.

The three candidates run concurrently in ``--workers`` processes (as the runner runs train_lightgbm,
train_xgboost and train_ar), each boosting model with 1 thread, then ``select_model`` runs. Printed: wall
time per stage and candidate, total, and peak RSS (largest single process, and the sum of the workers).

    PYTHONPATH=src python bench/training.py [--rows 1700000] [--features 110] [--coarse 20] [--fine 30]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table
from scipy.signal import lfilter

HORIZON = 30
TARGET = f"target_ret_{HORIZON}m_pct"


def synthetic_gold(rows: int, n_features: int, seed: int = 0) -> pl.DataFrame:
    """Gold-shaped frame: bar key, persistent Float32 features, planted signal, labels, label_ok.

    Bars are 1 minute apart in 5-day weeks (7200 bars, then a 2-day halt); the forward return is a random
    walk's 30-minute return (16 %/year) plus 0.03 * (0.6 f0 + 0.5 tanh(2 f1) + 0.4 ([f2 > 0.5] - 0.3085)) %.
    """
    rng = np.random.default_rng(seed)
    week = 5 * 1440
    minute = np.arange(rows, dtype=np.int64)
    minute = minute + (minute // week) * 2 * 1440
    ts = np.datetime64("2021-01-04T00:00", "us") + minute.astype("timedelta64[m]")
    phi = 0.95
    features = lfilter([np.sqrt(1 - phi**2)], [1, -phi], rng.standard_normal((rows, n_features)), axis=0)
    features = features.astype(np.float32)
    above = (features[:, 2] > 0.5) - 0.3085  # zero-mean step
    signal = 0.03 * (0.6 * features[:, 0] + 0.5 * np.tanh(2 * features[:, 1]) + 0.4 * above)
    log_price = np.cumsum(rng.standard_normal(rows) * 0.0105 / 100)
    frame = pl.DataFrame(
        {
            "instrument": "SPX500_USD",
            "granularity": "M1",
            "ts": pl.Series(ts).dt.replace_time_zone("UTC"),
            "_lp": log_price,
            "_signal": signal,
        }
    ).with_columns(pl.Series(f"feat_{i:03d}", features[:, i]) for i in range(n_features))
    ahead = frame.select(
        (pl.col("ts") - timedelta(minutes=HORIZON)).alias("ts"), pl.col("_lp").alias("_ahead")
    )
    frame = frame.join(ahead, on="ts", how="left", maintain_order="left")
    target = ((pl.col("_ahead") - pl.col("_lp")).exp() - 1) * 100 + pl.col("_signal")
    return (
        frame.with_columns(target.alias(TARGET))
        .with_columns(
            pl.col(TARGET).sign().cast(pl.Int8).alias(f"target_dir_{HORIZON}m"),
            pl.col(TARGET).is_not_null().alias("label_ok"),
        )
        .drop("_lp", "_ahead", "_signal")
    )


def _peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _train_synthetic(
    gold_path: str, run_dir: str, model: str, coarse: int, fine: int, seed: int
) -> dict[str, Any]:
    from spxcast.config import load_settings
    from spxcast.models.train import TrainingSpec, train_candidate
    from spxcast.pipeline.tasks.training import candidate_dir, write_candidate

    started, cpu_start = time.perf_counter(), _cpu_s()
    gold = pl.read_parquet(gold_path)
    read_s = time.perf_counter() - started
    features = [c for c in gold.columns if c.startswith("feat_")]
    settings = load_settings(seed=seed, **{"training.trials_coarse": coarse, "training.trials_fine": fine})
    spec = TrainingSpec.from_settings(settings, model, features, study_prefix="bench")
    run = train_candidate(gold, spec)
    trained = time.perf_counter()
    lineage = {
        "run_id": "bench",
        "instrument": "SPX500_USD",
        "granularity": "M1",
        "lake_versions": {"gold.features": None},
        "seed": seed,
    }
    write_candidate(candidate_dir(Path(run_dir), model), run, spec, lineage, catalog="synthetic-bench")
    return {
        "model": model,
        "read_s": read_s,
        "fit_s": run.fit_seconds,
        "evaluate_s": trained - started - read_s - run.fit_seconds,
        "write_report_s": time.perf_counter() - trained,
        "total_s": time.perf_counter() - started,
        "valid_rmse": run.evaluation[model]["valid"]["rmse"],
        "zero_valid_rmse": run.evaluation["zero"]["valid"]["rmse"],
        "peak_rss_mb": _peak_rss_mb(resource.RUSAGE_SELF),
        "cpu_s": _cpu_s() - cpu_start,
    }


def _train_real(home: str, run_id: str, model: str, coarse: int, fine: int) -> dict[str, Any]:
    from spxcast.config import load_settings
    from spxcast.pipeline.runner import execute_task
    from spxcast.pipeline.spec import find_task

    settings = load_settings(
        home=Path(home), **{"training.trials_coarse": coarse, "training.trials_fine": fine}
    )
    started, cpu_start = time.perf_counter(), _cpu_s()
    status, payload = execute_task(settings, run_id, find_task(f"train_{model}"))
    if status != "succeeded":
        raise RuntimeError(f"train_{model} failed: {payload}")
    assert isinstance(payload, dict)
    return {
        "model": model,
        "fit_s": payload["fit_seconds"],
        "total_s": time.perf_counter() - started,
        "valid_rmse": payload["valid_rmse"],
        "peak_rss_mb": _peak_rss_mb(resource.RUSAGE_SELF),
        "cpu_s": _cpu_s() - cpu_start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_700_000)
    parser.add_argument("--features", type=int, default=110)
    parser.add_argument("--coarse", type=int, default=20)
    parser.add_argument("--fine", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--home", help="Use this home's real gold.features and catalog instead of synthetic gold"
    )
    parser.add_argument("--json", help="Also write the figures to this JSON file")
    args = parser.parse_args()
    models = ["lightgbm", "xgboost", "ar"]
    console = Console()
    with tempfile.TemporaryDirectory(prefix="spxcast-bench-") as scratch:
        setup = time.perf_counter()
        if args.home:
            from spxcast.config import load_settings

            settings = load_settings(home=Path(args.home))
            run_id = f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}"
            run_dir = settings.artifacts_dir() / "runs" / run_id
            source = f"real gold.features in {args.home}"
        else:
            gold_path = str(Path(scratch) / "gold.parquet")
            gold = synthetic_gold(args.rows, args.features, args.seed)
            gold.write_parquet(gold_path)
            source = f"synthetic gold-shaped frame {gold.height:,} rows x {args.features} features"
            del gold
            run_dir = Path(scratch) / "run"
        setup_s = time.perf_counter() - setup
        started = time.perf_counter()
        with ProcessPoolExecutor(
            max_workers=args.workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            if args.home:
                futures = [
                    pool.submit(_train_real, args.home, run_id, m, args.coarse, args.fine) for m in models
                ]
            else:
                futures = [
                    pool.submit(
                        _train_synthetic, gold_path, str(run_dir), m, args.coarse, args.fine, args.seed
                    )
                    for m in models
                ]
            results = [f.result() for f in futures]
        candidates_s = time.perf_counter() - started
        from spxcast.pipeline.tasks.training import SELECTION_FILE, build_selection, write_json_atomically

        selection = build_selection(run_dir, 0.05)
        write_json_atomically(run_dir / SELECTION_FILE, selection)
        total_s = time.perf_counter() - started
    console.width = max(console.width, 120)
    table = Table(title=f"training stage: {source}; {args.coarse}+{args.fine} trials; {args.workers} workers")
    for column in ("stage", "wall s", "CPU s", "fit s", "valid RMSE", "peak RSS MB"):
        table.add_column(column, justify="right" if column != "stage" else "left")
    table.add_row("setup (not in total)", f"{setup_s:.1f}", "", "", "", "")
    for r in results:
        table.add_row(
            f"train_{r['model']}",
            f"{r['total_s']:.1f}",
            f"{r['cpu_s']:.1f}",
            f"{r['fit_s']:.1f}",
            f"{r['valid_rmse']:.5f}",
            f"{r['peak_rss_mb']:.0f}",
        )
    table.add_row("candidates (concurrent)", f"{candidates_s:.1f}", "", "", "", "")
    table.add_row("select_model", f"{total_s - candidates_s:.2f}", "", "", "", "")
    worker_sum = sum(r["peak_rss_mb"] for r in results[: args.workers])
    table.add_row(
        "TOTAL training stage",
        f"{total_s:.1f}",
        f"{sum(r['cpu_s'] for r in results):.1f}",
        "",
        f"selected: {selection['selected']}",
        f"{max(r['peak_rss_mb'] for r in results):.0f} (max), ~{worker_sum:.0f} (workers)",
    )
    console.print(table)
    console.print(f"load average at the end (1, 5, 15 min): {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "source": source,
                    "setup_s": setup_s,
                    "candidates": results,
                    "candidates_s": candidates_s,
                    "total_s": total_s,
                    "selected": selection["selected"],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
