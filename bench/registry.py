"""Benchmark: the training DAG through the local runner, first run versus a second run that reuses every
task whose inputs are unchanged (what a second ``make demo`` does), and the registry operations.

Each run uses a fresh home with a synthetic market of ``--days`` days (planted signal on) and prints per
stage the wall time; the table shows the median of ``--runs`` runs.

    python bench/registry.py [--days 60] [--runs 1] [--trials-coarse 5] [--trials-fine 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

GOALS = {"second_run_vs_first": "faster (issue 6: a second make demo reuses what exists)"}


def one_run(days: int, coarse: int, fine: int) -> dict[str, float]:
    from spxcast.config import load_settings
    from spxcast.pipeline.runner import TaskEvent, run_dag
    from spxcast.registry import CHALLENGER, ModelRegistry, PromotionRefused

    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(
            home=Path(home),
            **{
                "market.synthetic.days": days,
                "market.synthetic.planted_signal": True,
                "training.trials_coarse": coarse,
                "training.trials_fine": fine,
            },
        )
        seconds: dict[str, float] = {}

        def on_event(event: TaskEvent) -> None:
            if event.task == "register_model" and event.status == "succeeded":
                seconds["register_model task"] = event.seconds

        started = time.perf_counter()
        first = run_dag(settings, "full", on_event=on_event)
        seconds["first full DAG"] = time.perf_counter() - started
        if first.status != "succeeded":
            raise SystemExit(f"first run failed: {first.errors}")
        started = time.perf_counter()
        second = run_dag(settings, "full")
        seconds["second full DAG (reuse)"] = time.perf_counter() - started
        reused = sum(1 for out in second.outputs.values() if "reused_from" in out)
        print(f"  second run reused {reused} of {len(second.outputs)} tasks", flush=True)

        registry = ModelRegistry(settings)
        challenger = registry.by_alias(CHALLENGER)
        if challenger is None:
            print("  nothing registered (no skill found): registry operations not timed", flush=True)
            return seconds
        started = time.perf_counter()
        try:
            registry.promote(actor="bench")
        except PromotionRefused:
            registry.promote(force=True, reason="benchmark", actor="bench")
        seconds["promote (gates, no champion)"] = time.perf_counter() - started
        started = time.perf_counter()
        comparison = registry.compare_on_shared_window(challenger.version, challenger.version)
        label = f"shared-window comparison ({comparison.rows} rows, 2 model loads)"
        seconds[label] = time.perf_counter() - started
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--trials-coarse", type=int, default=5)
    parser.add_argument("--trials-fine", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    for run in range(args.runs):
        print(f"run {run + 1}/{args.runs}", flush=True)
        for stage, value in one_run(args.days, args.trials_coarse, args.trials_fine).items():
            results.setdefault(stage, []).append(value)
    print(f"\n{'stage':<58} {'median s':>9}")
    for stage, values in results.items():
        print(f"{stage:<58} {statistics.median(values):>9.1f}")
    first, second = results["first full DAG"], results["second full DAG (reuse)"]
    ratio = statistics.median(second) / statistics.median(first)
    print(f"\nsecond / first: {ratio:.2f} (goal: {GOALS['second_run_vs_first']})")


if __name__ == "__main__":
    main()
