"""Benchmark: one monitoring run over 30 days of served M1 predictions.

Input (built before timing, in a temporary home): a SQLite app database whose ``predictions`` table holds
30 trading days of M1 bars (``--bars``, default 40,000) served by the champion, each row with the
feature vector of every catalog feature (JSON, as the serving log writes it) and its realised return, plus
a shadow row per bar; a synthetic champion reference of 50,000 training rows (AR(1) features, φ = 0.5).
The performance window covers all 30 days (``performance_window_bars`` = bars). The lake is empty (the
freshness checks then alarm; the run still reads it).

Each configuration runs in a fresh subprocess with ``POLARS_MAX_THREADS=2``; it reports wall time and the
peak RSS of the process (sampled every 5 ms). ``cold``: the drift calibration is computed (first run
after a new champion); ``warm``: calibration cached (every later hourly run); ``report``: with
Evidently's HTML report. The table shows the median of ``--runs`` runs.

    python bench/monitoring.py [--bars 40000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from support.measure import peak_rss  # noqa: E402

GOALS = {"seconds": 10.0, "peak_rss_gb": 1.0}
NOW = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)


def _features() -> list[str]:
    from spxcast.features.catalog import default_catalog

    return list(default_catalog().names())


def build(home: Path, bars: int) -> None:
    """The prediction log of ``bars`` served M1 bars ending at NOW (on the CFD calendar's trading minutes)."""
    import numpy as np
    from sqlalchemy import MetaData, Table, insert

    from spxcast.config import Settings
    from spxcast.db import connect
    from spxcast.sources.market.calendar import CALENDAR_ANCHOR, is_trading_minute, minutes_since_anchor

    settings = Settings(home=home)
    engine = connect(settings.db_url())
    features = _features()
    rng = np.random.default_rng(0)
    end = minutes_since_anchor(NOW)
    minutes = np.arange(end - 60 * 24 * 45, end)
    minutes = minutes[is_trading_minute(minutes)][-bars:]
    values = rng.normal(size=(bars, len(features))).astype(np.float32)
    signal = 0.05 * rng.normal(size=bars)
    table = Table("predictions", MetaData(), autoload_with=engine)
    rows = []
    for i, minute in enumerate(minutes):
        bar = CALENDAR_ANCHOR + timedelta(minutes=float(minute))
        vector = json.dumps(dict(zip(features, values[i].tolist(), strict=True)))
        for role, predicted in (("served", signal[i]), ("shadow", 0.5 * signal[i])):
            rows.append(
                {
                    "prediction_id": f"{role}-{i}",
                    "created_at": bar + timedelta(minutes=1),
                    "instrument": "SPX500_USD",
                    "granularity": "M1",
                    "horizon_minutes": 30,
                    "bar_ts": bar,
                    "feature_as_of": bar + timedelta(minutes=1),
                    "model_name": "bench",
                    "model_version": 1,
                    "slot": "blue",
                    "role": role,
                    "predicted_pct": float(predicted),
                    "features": vector,
                    "realised_pct": float(signal[i] + 0.1 * rng.normal()),
                    "realised_at": bar + timedelta(minutes=31),
                }
            )
        if len(rows) >= 10_000:
            with engine.begin() as connection:
                connection.execute(insert(table), rows)
            rows = []
    if rows:
        with engine.begin() as connection:
            connection.execute(insert(table), rows)


def champion() -> Any:
    import numpy as np
    import polars as pl
    from scipy.signal import lfilter

    from spxcast.monitoring.checks import PREDICTION
    from spxcast.monitoring.service import ChampionReference

    features = _features()
    rng = np.random.default_rng(1)
    values = lfilter([1.0], [1.0, -0.5], rng.normal(size=(50_000, len(features))), axis=0).astype(np.float32)
    frame = pl.DataFrame(values, schema=features).with_columns(pl.Series(PREDICTION, 0.05 * values[:, 0]))
    return ChampionReference("bench", 1, tuple(features), frame, test_rmse=0.1)


def one_run(home: Path, bars: int, report: bool) -> dict[str, Any]:
    from spxcast.config import Settings
    from spxcast.monitoring.service import run_monitoring

    reference = champion()
    settings = Settings(home=home)
    settings = settings.model_copy(
        update={"monitoring": settings.monitoring.model_copy(update={"performance_window_bars": bars})}
    )
    with peak_rss() as peak:
        started = time.perf_counter()
        summary = run_monitoring(
            settings, now=NOW, send=False, report=report, champion_loader=lambda _: reference
        )
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_rss_gb": peak(),
        "realised_rows": summary["realised_rows"],
        "features": len(reference.features),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("HOME", "MODE", "BARS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        home, mode, bars = Path(args.child[0]), args.child[1], int(args.child[2])
        if mode == "cold":
            for cache in (home / "artifacts" / "monitoring" / "calibration").glob("*.json"):
                cache.unlink()
        print(json.dumps(one_run(home, bars, report=mode == "report")))
        return
    env = {**os.environ, "POLARS_MAX_THREADS": "2", "OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory(prefix="spxcast-bench-monitoring-") as scratch:
        home = Path(scratch)
        build(home, args.bars)
        results: dict[str, list[dict[str, Any]]] = {}
        for mode in ("cold", "warm", "report"):
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(home), mode, str(args.bars)],
                    check=True,
                    capture_output=True,
                    text=True,
                    env=env,
                )
                results.setdefault(mode, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; goal <= {GOALS['seconds']} s, "
        f"<= {GOALS['peak_rss_gb']} GB"
    )
    print(f"{'run':8} {'seconds':>8} {'peak GB':>8} {'rows':>7} {'features':>8}")
    for mode, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        rss = statistics.median(r["peak_rss_gb"] for r in runs)
        print(f"{mode:8} {seconds:8.2f} {rss:8.2f} {runs[0]['realised_rows']:7d} {runs[0]['features']:8d}")


if __name__ == "__main__":
    main()
