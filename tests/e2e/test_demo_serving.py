"""``spxcast demo serving`` (the serving part of ``make demo``) as a user runs it, on the live-loop test home
(tests/live_factories.py: a synthetic week, a champion): the API starts on a free loopback port replaying
the newest whole session, served predictions with intervals and realised outcomes are printed from the
market stream, the API stops, and a monitoring pass judges the logged rows."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from live_factories import build_live_home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_demo_serving_streams_predictions_and_outcomes_then_monitors(tmp_path: Path) -> None:
    home = build_live_home(tmp_path)
    settings = home.settings
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SPXCAST_")},
        "SPXCAST_HOME": str(settings.home),
        "SPXCAST_LIVE__FEATURE_STORE": "none",
        "SPXCAST_SERVING__FEATURE_REFRESH_S": "3600",
        "COLUMNS": "200",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "spxcast.cli.main", "demo", "serving", "--show", "6", "--timeout", "300"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=560,
        check=False,
    )
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output

    # The newest whole session of the home: Thursday 22:00 to Friday 21:00 UTC, 1,380 M1 bars.
    assert "--replay 2024-01-11T22:00Z 2024-01-12T21:00Z --speed 3000x" in output
    bars = [line for line in output.splitlines() if line.startswith("  bar ")]
    outcomes = [line for line in output.splitlines() if line.startswith("      outcome of ")]
    assert 1 <= len(bars) <= 6 and outcomes, output
    assert re.search(
        r"predicted [+-]\d\.\d{3}% in 30 min, interval \[[+-]\d\.\d{3}%, [+-]\d\.\d{3}%\] at 90%", bars[0]
    )
    assert re.search(
        r"realised [+-]\d\.\d{3}% vs predicted [+-]\d\.\d{3}%  (inside|OUTSIDE) the interval", outcomes[0]
    )
    streamed = re.search(
        r"streamed (\d+) of 1380 bars with a served prediction and (\d+) realised outcomes", output
    )
    assert streamed is not None, output[-3000:]
    assert int(streamed[1]) > 1000 and int(streamed[2]) > 1000

    # The API is gone (stopped, its log flushed): every replayed bar is logged with its realised return.
    port = int(re.search(r"--port (\d+)", output)[1])  # type: ignore[index]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the demo left the API running"
    engine = create_engine(settings.db_url())
    with engine.connect() as connection:
        logged, realised = connection.execute(
            text("SELECT count(*), count(realised_pct) FROM predictions WHERE role = 'served'")
        ).one()
    assert logged == 1380 and realised >= 1350

    assert "$ spxcast monitor run --at 2024-01-12T21:00Z" in output
    summary = json.loads((settings.artifacts_dir() / "monitoring" / "latest.json").read_text())
    assert summary["at"].startswith("2024-01-12T21:00") and summary["champion"]["version"] == home.version
    assert summary["realised_rows"] >= 1350 and summary["served_rows"] > 0
    assert "make up   the API" in output and "streams stored bars after 2024-01-12T21:00Z" in output
    print(f"demo serving: {seconds:.0f}s wall")
