"""Ingestion benchmarks: synthetic generation + bronze write, and a files import of an OANDA NDJSON dump.

Each measurement runs in a fresh Python process (so peak RSS is that run's own) against a fresh lake;
the table reports the median of ``--runs`` runs (default 3).

    python bench/ingest.py [--runs 3] [--years 5]

Cases:

- ``synthetic, chunked``: ``ingest_market`` with the default ``market.chunk_days = 30`` (one atomic commit
  per 30 days), generation + validation + bronze writes, planted signal off;
- ``synthetic, one commit``: the same range with ``chunk_days`` covering it all (one commit);
- ``files, OANDA NDJSON``: import of the same bars written as an OANDA-style NDJSON dump (one candle JSON
  per line, mid prices as strings, bid/ask closes). Writing the dump is not timed.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spxcast.config import Settings

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))


def _settings(home: Path, years: int, chunk_days: int) -> Settings:
    from spxcast.config import load_settings

    return load_settings(
        home=home,
        **{
            "market.synthetic.start": "2019-01-01",
            "market.synthetic.days": 365 * years + years // 4,
            "market.chunk_days": chunk_days,
        },
    )


def worker(case: str, home: Path, years: int, dump: Path) -> dict[str, float]:
    """One measured run in this process; returns seconds, rows and peak RSS (MiB)."""
    from spxcast.ingest.market import ingest_market
    from spxcast.lake import Lake

    chunk_days = 30 if case == "synthetic_chunked" else 366 * years
    settings = _settings(home, years, chunk_days)
    began = time.perf_counter()
    if case == "files":
        report = ingest_market(settings, Lake.from_settings(settings), source="files", file=dump)
    else:
        report = ingest_market(settings, Lake.from_settings(settings), source="synthetic")
    seconds = time.perf_counter() - began
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "rows": report.accepted_rows,
        "peak_rss_mib": peak_mib,
        "chunks": report.chunks,
    }


def write_dump(path: Path, years: int) -> int:
    """Write the synthetic bars of ``years`` years as an OANDA NDJSON dump (not timed)."""
    import polars as pl

    from spxcast.sources.market.synthetic import SyntheticCandleSource
    from spxcast.timeutil import parse_utc

    settings = _settings(path.parent / "dump_home", years, 30)
    start = parse_utc(settings.market.synthetic.start)
    end = start + timedelta(days=settings.market.synthetic.days)
    source = SyntheticCandleSource(settings.market.synthetic, settings.seed, settings.horizon_minutes)
    candles = source.generate(settings.instrument, "M1", start, end).candles
    text = lambda c: pl.col(c).round(2).cast(pl.Utf8)  # noqa: E731
    lines = candles.select(
        complete=pl.lit(True),
        volume=pl.col("volume"),
        time=pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S.000000000Z"),
        mid=pl.struct(o=text("open"), h=text("high"), l=text("low"), c=text("close")),
        bid=pl.struct(c=text("bid_close")),
        ask=pl.struct(c=text("ask_close")),
    )
    lines.write_ndjson(path)
    return lines.height


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "HOME"), help=argparse.SUPPRESS)
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        case, home = args.worker
        print(json.dumps(worker(case, Path(home), args.years, args.dump)))
        return
    cases = ("synthetic_chunked", "synthetic_one_commit", "files")
    results: dict[str, list[dict[str, float]]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory(prefix="spxcast-bench-") as scratch:
        root = Path(scratch)
        dump = root / "oanda_m1.ndjson"
        lines = write_dump(dump, args.years)
        print(
            f"wrote {lines:,} OANDA NDJSON lines ({dump.stat().st_size / 2**20:.0f} MiB), not timed",
            flush=True,
        )
        for run in range(args.runs):
            for case in cases:
                home = root / f"{case}_{run}"
                command = [
                    sys.executable,
                    __file__,
                    "--years",
                    str(args.years),
                    "--dump",
                    str(dump),
                    "--worker",
                    case,
                    str(home),
                ]
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                results[case].append(json.loads(out.strip().splitlines()[-1]))
                print(f"run {run + 1} {case}: {results[case][-1]}", flush=True)
    print()
    print(f"{'case':<24} {'rows':>10} {'commits':>8} {'median s':>9} {'rows/s':>11} {'peak RSS MiB':>13}")
    for case, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        rss = statistics.median(r["peak_rss_mib"] for r in runs)
        rows, commits = int(runs[0]["rows"]), int(runs[0]["chunks"])
        print(f"{case:<24} {rows:>10,} {commits:>8} {seconds:>9.2f} {rows / seconds:>11,.0f} {rss:>13,.0f}")


if __name__ == "__main__":
    main()
