"""The live loop end to end on a synthetic week with news (tests/live_factories.py):

- a replay of the last hours: every live prediction equals the batch prediction of the same model on the
  same gold row, every realised return equals the gold label, and the conformal interval adapted;
- a WebSocket client receives every bar in order, with its prediction, and the realised outcomes;
- ``kill -9`` of a real ``spxcast live --replay`` process mid-way, then a restart: no bar skipped, none
  predicted twice;
- bars arriving while no model is deployed: recorded as not predicted, with the reason, and the position
  moves on; once a model is deployed every later bar is predicted once;
- a restart: outcomes that became due while the loop was down are attached and published, each once over
  both runs;
- the service's background thread running beside the loop: each realised outcome updates the adaptive
  conformal interval exactly once, when it is due, in bar order (the same state as feeding the log's
  outcomes one by one to a fresh interval).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sqlalchemy import create_engine, text

from live_factories import LiveHome, build_live_home
from spxcast.errors import LakeError
from spxcast.serving.live import position
from spxcast.serving.live.loop import BackgroundSink, LiveLoop
from spxcast.serving.live.news import StoredArticles
from spxcast.serving.live.runtime import LoopThread, build_live_service
from spxcast.serving.live.sources import ReplaySource
from spxcast.serving.live.verify import verify_live


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> LiveHome:
    return build_live_home(tmp_path_factory.mktemp("live"))


def _replayed(home: LiveHome) -> pl.DataFrame:
    return home.gold.filter((pl.col("ts") >= home.replay_start) & (pl.col("ts") < home.replay_end))


class Frames:
    """A publisher keeping every frame (and, optionally, calling back on each)."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def publish(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]


class ClosingFrames(Frames):
    """Frames that records its close (the loop owns the publisher it is given)."""

    def __init__(self) -> None:
        super().__init__()
        self.closed_after: int | None = None

    def close(self) -> None:
        assert self.closed_after is None, "closed once"
        self.closed_after = len(self.frames)


class Pushed:
    """A feature store target keeping every pushed batch."""

    def __init__(self) -> None:
        self.batches: list[pl.DataFrame] = []

    def push(self, instrument: str, granularity: str, vectors: pl.DataFrame) -> None:
        self.batches.append(vectors)


def _loop(home: LiveHome, settings, service, hub: Any, **options: Any) -> LiveLoop:  # type: ignore[no-untyped-def]
    from spxcast.sentiment import scorer_id

    lake = service.source.lake
    source = ReplaySource(
        lake, settings.instrument, settings.granularity, home.replay_start, home.replay_end, None
    )
    articles = StoredArticles(
        lake, scorer_id(settings.sentiment), home.replay_start - timedelta(days=30), home.replay_end
    )
    return LiveLoop(settings, service, source, hub, articles=articles, **options)


def test_replay_equals_batch_and_realised_equals_labels(home: LiveHome, tmp_path: Path) -> None:
    settings = home.app_settings(tmp_path)
    service = build_live_service(settings).start(background=False)
    try:
        model = service.slots().models[service.slots().state.live]
        assert model is not None and model.conformal is not None
        offsets_before = model.conformal.offsets
        frames, pushed = ClosingFrames(), Pushed()
        lake = service.source.lake
        bronze_before = lake.version("bronze.candles")
        loop = _loop(home, settings, service, frames, sink=BackgroundSink(pushed))
        loop.start()
        stats = loop.run()
        loop.close()
        assert lake.version("bronze.candles") == bronze_before, (
            "a replay stores nothing: its bars are bronze's own (their source and ingested_at stay)"
        )
        report = verify_live(settings, service.engine, home.replay_start, home.replay_end)
    finally:
        service.close()
    bars = _replayed(home).height
    assert frames.closed_after == len(frames.frames) and len(frames.of("bar")) == bars, (
        "close comes after every frame"
    )
    vectors = pl.concat(pushed.batches)
    assert vectors["ts"].to_list() == _replayed(home)["ts"].to_list(), "every bar's vector reached the sink"
    assert set(vectors.columns) == {"ts", *model.features}
    names = list(model.features)
    gold = _replayed(home).select(names).cast(pl.Float64).to_numpy()
    online = vectors.select(names).cast(pl.Float64).to_numpy()  # null -> NaN
    assert np.allclose(online, gold, rtol=1e-5, atol=1e-7, equal_nan=True), "the pushed vectors are gold's"
    with pytest.raises(RuntimeError):  # the commit thread is shut down
        loop._committer.submit(print)
    assert stats.bars == bars and stats.predictions == bars
    [parity] = report.versions
    assert parity.predictions == bars and parity.missing_bars == 0
    assert parity.equal == bars, parity.first_difference
    assert report.unaccounted_bars == report.unpredicted_recorded == 0
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


def test_bars_while_no_model_is_deployed_are_recorded_with_the_reason_and_the_loop_moves_on(
    home: LiveHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = home.app_settings(tmp_path)
    service = build_live_service(settings)
    monkeypatch.setattr(service.loader, "champion", lambda: None)  # the registry has no champion yet
    service.start(background=False)
    frames = Frames()
    try:
        assert all(m is None for m in service.slots().models.values())
        loop = _loop(home, settings, service, frames).start()
        assert loop.step() + loop.step() == 128  # two polls of 64 bars, no model to predict them
        dark = list(_replayed(home)["ts"][:128])
        assert loop.position == dark[-1], "the position moves on"
        service.deploy(home.version, "tests", "a model arrives mid-replay")
        stats = loop.run()
        report = verify_live(settings, service.engine, home.replay_start, home.replay_end)
        [episode] = position.unpredicted(service.engine, settings.instrument, settings.granularity)
        engine = service.engine
        with engine.connect() as c:
            logged = c.execute(
                text("SELECT COUNT(*), COUNT(DISTINCT bar_ts), MIN(bar_ts) FROM predictions")
            ).one()
    finally:
        service.close()
    bars = _replayed(home).height
    assert stats.bars == bars and stats.unpredicted == 128 and stats.predictions == bars - 128
    assert episode.count == 128 and episode.status == "resolved", "every bar without a model, counted"
    assert position._utc(episode.raised_at) == dark[0] + timedelta(minutes=1)  # close of the first
    assert position._utc(episode.last_seen) == dark[-1] + timedelta(minutes=1)  # close of the last
    assert "no model loaded in any serving slot" in episode.message and "no champion" in episode.message
    assert tuple(logged[:2]) == (bars - 128, bars - 128), "every later bar predicted once"
    assert position._utc(datetime.fromisoformat(str(logged[2]))) == dark[-1] + timedelta(minutes=1)
    bar_frames = frames.of("bar")
    assert [f["ts"] for f in bar_frames] == [t.isoformat() for t in _replayed(home)["ts"]]
    assert all(f["predictions"] == [] and "no champion" in f["not_predicted"] for f in bar_frames[:128])
    assert all(len(f["predictions"]) == 1 and f["not_predicted"] is None for f in bar_frames[128:])
    [parity] = report.versions
    assert parity.equal == parity.predictions == bars - 128 and parity.missing_bars == 128
    assert report.unpredicted_recorded == 128 and report.unaccounted_bars == 0 and report.ok


def test_outcomes_due_while_the_loop_was_down_are_attached_and_published_once_on_restart(
    home: LiveHome, tmp_path: Path
) -> None:
    settings = home.app_settings(tmp_path)
    published: dict[str, list[str]] = {}
    for run in ("before the crash", "after the restart"):
        service = build_live_service(settings).start(background=False)
        frames = Frames()
        try:
            loop = _loop(home, settings, service, frames).start()
            if run == "before the crash":
                for _ in range(2):
                    loop.step()  # 128 bars, then the process stops: the next bars' outcomes fall due
                loop.flush()
            else:
                loop.run()
                report = verify_live(settings, service.engine, home.replay_start, home.replay_end)
        finally:
            service.close()
        published[run] = [f["ts"] for f in frames.of("outcome")]
    outcomes = published["before the crash"] + published["after the restart"]
    assert len(outcomes) == len(set(outcomes)), "no outcome published twice"
    assert report.ok and report.realised_pending == 0
    assert len(outcomes) == report.realised, "every attached outcome published once over both runs"
    crashed_at = _replayed(home)["ts"][127].isoformat()
    assert any(ts <= crashed_at for ts in published["after the restart"]), (
        "outcomes of bars predicted before the crash, due while it was down, published after the restart"
    )


def test_each_realised_outcome_updates_the_interval_once_when_due_with_the_background_thread_running(
    home: LiveHome, tmp_path: Path
) -> None:
    settings = home.app_settings(tmp_path)
    settings = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"feature_refresh_s": 0.05})}
    )
    service = build_live_service(settings).start(background=True)  # its sync thread runs beside the loop
    frames = Frames()
    seen: list[tuple[str, int]] = []
    try:
        model = service.slots().models[service.slots().state.live]
        assert model is not None and model.conformal is not None
        conformal = model.conformal
        loop = _loop(
            home, settings, service, frames, on_bar=lambda f: seen.append((f["ts"], conformal.observed))
        ).start()
        for _ in range(40):
            if loop.step() == 0:
                break
            time.sleep(0.06)  # the background thread gets its turns
        loop.run()
        with service.engine.connect() as c:
            outcomes = c.execute(
                text(
                    "SELECT predicted_pct, realised_pct FROM predictions "
                    "WHERE realised_pct IS NOT NULL ORDER BY bar_ts"
                )
            ).all()
        fresh = service.loader.load(model.version).conformal
    finally:
        service.close()
    horizon = timedelta(minutes=settings.horizon_minutes)
    predicted = [t.isoformat() for t in _replayed(home)["ts"]]
    for ts, observed in seen:  # when bar ts is published, only bars a horizon before it can be realised
        due = sum(1 for s in predicted if datetime.fromisoformat(s) + horizon <= datetime.fromisoformat(ts))
        assert observed <= due, f"at {ts} the interval had learnt {observed} outcomes, {due} were due"
    assert conformal.observed == len(outcomes) == len(frames.of("outcome")) > 0, "each outcome once"
    assert fresh is not None
    for p, r in outcomes:
        fresh.observe(p, r)
    assert conformal.offsets == fresh.offsets, "the same recursion, in bar order"


class _Forgetful(ReplaySource):
    """A replay posing as a source that may not deliver a bar again (like a directory of files)."""

    redelivers = False


@pytest.mark.parametrize("redelivers", [True, False])
def test_a_frame_goes_out_before_its_commit_only_when_the_source_delivers_the_bar_again(
    home: LiveHome, tmp_path: Path, redelivers: bool
) -> None:
    settings = home.app_settings(tmp_path)
    service = build_live_service(settings).start(background=False)
    stored: list[tuple[str, str | None]] = []  # (frame ts, stored position when the frame went out)

    def on_bar(frame: dict[str, Any]) -> None:
        at = position.load(service.engine, settings.instrument, settings.granularity)
        stored.append((frame["ts"], None if at is None else at.isoformat()))

    try:
        loop = _loop(home, settings, service, Frames(), on_bar=on_bar)
        if not redelivers:
            source = loop.source
            loop.source = _Forgetful(
                service.source.lake,
                settings.instrument,
                settings.granularity,
                source.start,
                source.end,  # type: ignore[attr-defined]
            )
        loop.start()
        for _ in range(3):
            loop.step()
        loop.flush()
    finally:
        service.close()
    assert len(stored) == 3 * 64
    committed_first = [at is not None and at >= ts for ts, at in stored]
    if redelivers:
        assert not any(committed_first), "published as soon as predicted, committed behind"
    else:
        assert all(committed_first), "a bar that could not be fetched again is published after its commit"


class _CompactionLake:
    """The loop's lake as far as compaction goes: records the calls, fails when told to."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.calls: list[str] = []

    def compact(self, name: str) -> dict[str, Any]:
        self.calls.append(name)
        if self.fail:
            raise LakeError("disk full (test)")
        return {"numFilesRemoved": 3}


@pytest.mark.parametrize("fail", [False, True])
def test_the_loop_compacts_bronze_every_n_stores_and_goes_on_when_that_fails(
    home: LiveHome, tmp_path: Path, fail: bool
) -> None:
    live = home.settings.live.model_copy(update={"compact_every": 3})
    settings = home.app_settings(tmp_path, live=live)
    service = build_live_service(settings)
    loop = _loop(home, settings, service, Frames())
    lake = _CompactionLake(fail)
    loop.lake = lake  # type: ignore[assignment]
    for _ in range(7):
        loop._compact_now_and_then()
    assert lake.calls == ["bronze.candles", "bronze.candles"], "after the 3rd and the 6th store"
