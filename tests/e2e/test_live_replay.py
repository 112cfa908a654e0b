"""The live loop end to end on a synthetic week with news (tests/live_factories.py):

- a replay of the last hours: every live prediction equals the batch prediction of the same model on the
  same gold row, every realised return equals the gold label, and the conformal interval adapted;
- a WebSocket client receives every bar in order, with its prediction, and the realised outcomes;
- ``kill -9`` of a real ``spxcast live --replay`` process mid-way, then a restart: no bar skipped, none
  predicted twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import create_engine, text

from live_factories import LiveHome, build_live_home
from spxcast.serving.live.hub import StreamHub
from spxcast.serving.live.loop import LiveLoop
from spxcast.serving.live.news import StoredArticles
from spxcast.serving.live.runtime import LoopThread, build_live_service
from spxcast.serving.live.sources import ReplaySource
from spxcast.serving.live.verify import verify_live


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> LiveHome:
    return build_live_home(tmp_path_factory.mktemp("live"))


def _replayed(home: LiveHome) -> pl.DataFrame:
    return home.gold.filter((pl.col("ts") >= home.replay_start) & (pl.col("ts") < home.replay_end))


def _loop(home: LiveHome, settings, service, hub: StreamHub) -> LiveLoop:  # type: ignore[no-untyped-def]
    from spxcast.sentiment import scorer_id

    lake = service.source.lake
    source = ReplaySource(
        lake, settings.instrument, settings.granularity, home.replay_start, home.replay_end, None
    )
    articles = StoredArticles(
        lake, scorer_id(settings.sentiment), home.replay_start - timedelta(days=30), home.replay_end
    )
    return LiveLoop(settings, service, source, hub, articles=articles)


def test_replay_equals_batch_and_realised_equals_labels(home: LiveHome, tmp_path: Path) -> None:
    settings = home.app_settings(tmp_path)
    service = build_live_service(settings).start(background=False)
    try:
        model = service.slots().models[service.slots().state.live]
        assert model is not None and model.conformal is not None
        offsets_before = model.conformal.offsets
        loop = _loop(home, settings, service, StreamHub())
        loop.start()
        stats = loop.run()
        report = verify_live(settings, service.engine, home.replay_start, home.replay_end)
    finally:
        service.close()
    bars = _replayed(home).height
    assert stats.bars == bars and stats.predictions == bars
    [parity] = report.versions
    assert parity.predictions == bars and parity.missing_bars == 0
    assert parity.equal == bars, parity.first_difference
    assert report.realised > bars // 2, "most replayed bars had their horizon pass within the replay"
    assert report.realised_equal == report.realised, report.first_realised_difference
    assert report.realised_pending == 0 and report.ok
    assert stats.outcomes == report.realised
    assert model.conformal.offsets != offsets_before, "realised outcomes adapt the interval (ACI)"


def test_websocket_client_receives_every_bar_in_order(home: LiveHome, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from spxcast.serving.app import create_app

    settings = home.app_settings(tmp_path)
    service = build_live_service(settings)
    app = create_app(settings, service)
    expected = [t.isoformat() for t in _replayed(home)["ts"]]
    with (
        TestClient(app) as client,
        client.websocket_connect(f"/ws/market-stream?instruments={settings.instrument}") as ws,
    ):
        assert json.loads(ws.receive_text())["type"] == "subscribed"
        runner = LoopThread(_loop(home, settings, service, app.state.hub), until_finished=True).start()
        bars, outcomes = [], []
        while len(bars) < len(expected):
            frame = json.loads(ws.receive_text())
            (bars if frame["type"] == "bar" else outcomes).append(frame)
        runner.join(60)
        assert runner.error is None
    assert [f["ts"] for f in bars] == expected, "every bar, once, in order"
    first = bars[0]
    [prediction] = first["predictions"]
    assert prediction["model_version"] == home.version and prediction["role"] == "served"
    assert prediction["lower_pct"] < prediction["predicted_pct"] < prediction["upper_pct"]
    assert outcomes and all(o["type"] == "outcome" for o in outcomes)
    assert [o["ts"] for o in outcomes] == sorted(o["ts"] for o in outcomes)


def _position(db: Path) -> tuple[str | None, int]:
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as c:
            row = c.execute(text("SELECT bar_ts, bars FROM live_positions")).first()
    except Exception:  # the table does not exist until the process migrated the database
        return None, 0
    finally:
        engine.dispose()
    return (None, 0) if row is None else (str(row[0]), int(row[1]))


@pytest.fixture
def live_env(home: LiveHome, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SPXCAST_HOME": str(home.settings.home),
        "SPXCAST_DB__URL": f"sqlite:///{tmp_path / 'app.db'}",
        "SPXCAST_SERVING__SPOOL_PATH": str(tmp_path / "spool.ndjson"),
        "SPXCAST_LIVE__FEATURE_STORE": "none",
        "SPXCAST_MARKET__START": "2024-01-08",
        "SPXCAST_MARKET__END": "2024-01-13",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }


def test_kill_9_mid_replay_then_restart_skips_nothing_and_predicts_nothing_twice(
    home: LiveHome, tmp_path: Path, live_env: dict[str, str]
) -> None:
    command = [
        sys.executable, "-m", "spxcast.cli.main", "live", "--replay",
        home.replay_start.isoformat(), home.replay_end.isoformat(), "--speed", "max",
    ]  # fmt: skip
    db = tmp_path / "app.db"
    bars = _replayed(home).height
    victim = subprocess.Popen(
        [*command, "--no-verify"], env=live_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while _position(db)[1] < bars // 3:
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "the loop made no progress"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = _position(db)[1]
    assert 0 < killed_at < bars, "killed mid-replay"

    finished = subprocess.run([*command, "--json"], env=live_env, capture_output=True, text=True, timeout=180)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    summary = json.loads(finished.stdout)
    assert summary["bars"] == bars - killed_at, "the restart resumed at the next unprocessed bar"
    assert _position(db)[1] == bars, "each bar processed exactly once over both runs"
    assert summary["parity"]["ok"], summary["parity"]
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as c:
        rows = c.execute(text("SELECT COUNT(*), COUNT(DISTINCT bar_ts) FROM predictions")).one()
    engine.dispose()
    assert tuple(rows) == (bars, bars), "one prediction per bar and slot, none twice"
