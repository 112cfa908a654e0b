"""Market ingestion end to end: idempotency, kill -9 and resume, the CLI verbs and the validation gate."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import spxcast
from spxcast.cli.main import app
from spxcast.config import Settings
from spxcast.errors import DataQualityError
from spxcast.ingest.market import ingest_market, windows
from spxcast.lake import Lake, frame_checksum
from spxcast.lake.tables import TABLES
from spxcast.pipeline.context import TaskContext
from spxcast.pipeline.tasks.market import ingest_market as ingest_task
from spxcast.pipeline.tasks.market import validate_market
from spxcast.timeutil import parse_utc

SRC = str(Path(spxcast.__file__).resolve().parents[1])
PLANTED = {"SPXCAST_MARKET__SYNTHETIC__PLANTED_SIGNAL": "true"}


def content(lake: Lake, name: str) -> str:
    """Checksum of a table's content, ignoring when it was ingested."""
    spec = TABLES[name]
    frame = lake.read(name).drop(list(spec.audit_columns))
    return frame_checksum(frame, spec.key)


def test_ingesting_the_same_range_twice_changes_nothing(settings: Settings) -> None:
    settings.market.synthetic.planted_signal = True
    settings.market.chunk_days = 4
    lake = Lake.from_settings(settings)
    first = ingest_market(settings, lake, start="2024-01-01", end="2024-01-10")
    table = lake.read("bronze.candles")
    checksum = frame_checksum(table, TABLES["bronze.candles"].key)
    second = ingest_market(settings, lake, start="2024-01-01", end="2024-01-10")
    again = lake.read("bronze.candles")
    assert again.height == table.height == first.accepted_rows == second.accepted_rows
    assert frame_checksum(again, TABLES["bronze.candles"].key) == checksum
    assert second.table_versions == first.table_versions, "identical data commits nothing new"
    assert first.chunks == 3
    assert first.event_rows > 0
    assert first.oracle_rows == table.height


def _cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "spxcast.cli.main", "--home", str(home), "ingest", "market", *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPXCAST_")}
    return {**env, **PLANTED, "PYTHONPATH": SRC}


def test_kill_9_mid_run_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    args = ("--start", "2024-01-01", "--end", "2024-02-01", "--chunk-days", "2")
    crashed, clean = tmp_path / "crashed", tmp_path / "clean"
    process = subprocess.Popen(
        _cli(crashed, *args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    candles_log = crashed / "lake" / "bronze" / "candles" / "_delta_log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        candles_log.exists() and len(list(candles_log.glob("*.json"))) >= 2
    ):
        time.sleep(0.02)
    still_running = process.poll() is None
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert still_running, "the ingestion must be killed mid-run for this test to mean anything"
    assert process.returncode == -signal.SIGKILL
    partial = Lake(crashed / "lake").read("bronze.candles").height

    subprocess.run(_cli(crashed, *args), env=_env(), check=True, capture_output=True)
    subprocess.run(_cli(clean, *args), env=_env(), check=True, capture_output=True)
    resumed, reference = Lake(crashed / "lake"), Lake(clean / "lake")
    assert 0 < partial < reference.read("bronze.candles").height
    for name in ("bronze.candles", "bronze.synthetic_events", "bronze.synthetic_oracle"):
        frame = resumed.read(name)
        key = list(TABLES[name].key)
        assert frame.select(key).n_unique() == frame.height, f"no duplicate keys in {name}"
        assert content(resumed, name) == content(reference, name), f"{name} equals the uninterrupted run"


def test_cli_ingest_and_health(tmp_path: Path) -> None:
    runner = CliRunner()
    home = str(tmp_path / "home")
    result = runner.invoke(
        app, ["--home", home, "ingest", "market", "--start", "2024-01-02", "--end", "2024-01-04"]
    )
    assert result.exit_code == 0, result.output
    assert "2,760 accepted" in result.output
    health = runner.invoke(app, ["--home", home, "data", "health"])
    assert health.exit_code == 0, health.output
    assert "2,760" in health.output
    assert "daily breaks" in health.output
    as_json = runner.invoke(app, ["--home", home, "data", "health", "--json"])
    assert '"rows": 2760' in as_json.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "bloomberg"], "unknown market source"),
        (["--start", "2024-02-01", "--end", "2024-01-01"], "bad date range"),
        (["--source", "files", "--file", "/nonexistent/candles.csv"], "does not exist"),
        (["--source", "oanda", "--start", "2024-01-01"], "SPXCAST_OANDA__TOKEN"),
        (["--source", "files", "--file", "x.csv", "--map", "ts"], "bronze_column=file_column"),
    ],
)
def test_cli_bad_input_is_a_one_line_error(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "ingest", "market", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_pipeline_tasks_ingest_then_gate(settings: Settings, tmp_path: Path) -> None:
    settings.market.synthetic.days = 3
    settings.market.synthetic.start = "2024-01-02"
    ctx = TaskContext(settings, "run-1", "ingest_market")
    with pytest.raises(DataQualityError, match="does not exist"):
        validate_market(ctx)
    output = ingest_task(ctx)
    assert output["accepted_rows"] == 3 * 1380
    assert output["table_versions"]["bronze.candles"] == 0
    report = validate_market(ctx)
    assert report["rows"] == 3 * 1380
    assert report["quarantine_fraction"] == 0
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("ts,open,high,low,close\n" + "2024-01-02T10:00:00Z,x,1,1,1\n" * 400)
    ingest_market(settings, ctx.lake, source="files", file=garbage)
    with pytest.raises(DataQualityError, match="max_quarantine_fraction"):
        validate_market(ctx)


def test_windows_cover_the_range_without_overlap() -> None:
    start, end = parse_utc("2024-01-01"), parse_utc("2024-01-10T12:00")
    parts = windows(start, end, 3)
    assert parts[0][0] == start
    assert parts[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert len(parts) == 4
    assert pl.Series([p[1] - p[0] for p in parts]).max().days == 3  # type: ignore[union-attr]
