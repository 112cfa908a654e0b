"""The team-scale roles of deploy/compose.yaml on loopback, without containers, configured only through the
``SPXCAST_*`` variables a team deployment sets:

- the machine's PostgreSQL: a fresh app database, MLflow backend store and Optuna storage;
- Redis: the Feast online store and the live loop's fan-out (its own database number and channel);
- a real ``mlflow server`` process (artifacts served by it, in a temporary folder);
- two ``spxcast serve`` replicas behind Debian's nginx (deploy/nginx), and ``spxcast live`` in its own
  process publishing through Redis.

The ingest and training DAGs run with the local runner on a small synthetic home with the planted signal,
Optuna trials from two processes per model sharing one PostgreSQL study; the registered version is promoted
and deployed to both replicas through nginx's admin route; a replay streams through nginx to WebSocket
clients; then PostgreSQL is checked: one prediction per bar and slot with its realised return, the slot
audit, and the alerts of a ``spxcast monitor run``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import optuna
import pytest
from sqlalchemy import create_engine, text

from nginx_proxy import nginx_binary, nginx_proxy
from pg_cluster import free_port
from services import REDIS_HOST, REDIS_PORT, fresh_postgres_database, require_port, unavailable
from serving_factories import wait_for_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REDIS_DB = 11
"""The Redis database of this test (keys of its Feast project are deleted afterwards)."""
REPLAY_BARS = 120
DAYS = 13  # through Friday 2024-01-19: the replay ends at the week's close


def _mlflow_cli() -> str:
    """The ``mlflow`` executable of this environment; skips (fails under SPXCAST_REQUIRE_SERVICES=1)."""
    found = Path(sys.executable).with_name("mlflow")
    if not found.exists():
        unavailable(f"the mlflow CLI is not installed next to {sys.executable}")
    return str(found)


def _popen(command: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """A server in its own process group (``mlflow server`` starts uvicorn workers: all are stopped)."""
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group this test started, SIGKILL after 30 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@contextmanager
def _server(name: str, command: list[str], env: dict[str, str], logs: Path) -> Iterator[Any]:
    """A server process for the test's duration; its output goes to ``logs/NAME.log``."""
    with (logs / f"{name}.log").open("wb") as handle:
        process = _popen(command, env, handle)
        try:
            yield process
        finally:
            _stop(process)


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``spxcast ARGS`` in a new process with ``env`` (the settings travel only as SPXCAST_* variables)."""
    done = subprocess.run(
        [sys.executable, "-m", "spxcast.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (
        f"spxcast {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done


class _StreamClient:
    """A WebSocket client of the market stream through nginx, reading in a thread until it holds
    ``bars`` bar frames and the stream has then been quiet for ``QUIET_S`` (the outcome frames of the last
    commits follow the last bar frames), or the deadline passes."""

    QUIET_S = 3.0

    def __init__(self, stack: ExitStack, url: str, bars: int, deadline_s: float) -> None:
        from websockets.sync.client import connect

        self.socket = stack.enter_context(connect(url, open_timeout=10))
        assert json.loads(self.socket.recv(timeout=10))["type"] == "subscribed"
        self.bars: list[dict[str, Any]] = []
        self.outcomes: list[dict[str, Any]] = []
        self.wanted = bars
        self.deadline = time.monotonic() + deadline_s
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        last = time.monotonic()
        while time.monotonic() < self.deadline:
            if len(self.bars) >= self.wanted and time.monotonic() - last >= self.QUIET_S:
                return
            try:
                frame = json.loads(self.socket.recv(timeout=0.5))
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            last = time.monotonic()
            (self.bars if frame["type"] == "bar" else self.outcomes).append(frame)

    def close(self) -> None:
        """Wait for the reader (it ends with every bar read, or at the deadline)."""
        self.thread.join(max(0.0, self.deadline - time.monotonic()))


@pytest.mark.timeout(900)
def test_team_scale_roles_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nginx_binary()
    mlflow_cli = _mlflow_cli()
    require_port("Redis", REDIS_HOST, REDIS_PORT)
    logs = tmp_path / "logs"
    logs.mkdir()
    with ExitStack() as stack:
        app_db = stack.enter_context(fresh_postgres_database())
        mlflow_db = stack.enter_context(fresh_postgres_database())
        optuna_db = stack.enter_context(fresh_postgres_database())
        app = create_engine(app_db)  # the test's own reads of the app database
        stack.callback(app.dispose)
        mlflow_port, replica_ports = free_port(), [free_port(), free_port()]
        admin_key = secrets.token_urlsafe(16)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            "SPXCAST_HOME": str(tmp_path / "home"),
            "SPXCAST_DB__URL": app_db,
            "SPXCAST_REGISTRY__TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            "SPXCAST_TRAINING__OPTUNA_STORAGE": optuna_db,
            "SPXCAST_TRAINING__TRIAL_WORKERS": "2",
            "SPXCAST_LIVE__REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
            "SPXCAST_LIVE__CHANNEL": f"spxcast-e2e-{secrets.token_hex(4)}",
            "SPXCAST_LIVE__FEATURE_STORE": "redis",
            "SPXCAST_SERVING__ADMIN_KEY": admin_key,
            # a small synthetic home with the planted signal; few trials
            "SPXCAST_MARKET__SYNTHETIC__START": "2024-01-08",
            "SPXCAST_MARKET__SYNTHETIC__DAYS": str(DAYS),
            "SPXCAST_MARKET__SYNTHETIC__PLANTED_SIGNAL": "true",
            "SPXCAST_MARKET__SYNTHETIC__PLANTED_STRENGTH": "4.0",
            "SPXCAST_TRAINING__TRIALS_COARSE": "2",
            "SPXCAST_TRAINING__TRIALS_FINE": "1",
            "SPXCAST_TRAINING__MAX_ROUNDS": "40",
            "SPXCAST_TRAINING__OOT2_ROWS": "1000",
            "SPXCAST_PIPELINE__WORKERS": "2",
        }
        for name, value in env.items():  # this process reads the same settings as the servers
            if name.startswith("SPXCAST_"):
                monkeypatch.setenv(name, value)
        from spxcast.config import load_settings
        from spxcast.featurestore import FeatureStoreClient

        settings = load_settings()
        project = FeatureStoreClient(settings).project
        stack.callback(_clean_redis, project)

        # MLflow tracking server on PostgreSQL (its own database), artifacts served from a temporary folder.
        mlflow = stack.enter_context(
            _server(
                "mlflow",
                [
                    mlflow_cli,
                    "server",
                    "--host=127.0.0.1",
                    f"--port={mlflow_port}",
                    f"--backend-store-uri={mlflow_db}",
                    f"--artifacts-destination={tmp_path / 'mlartifacts'}",
                    "--serve-artifacts",
                    "--workers=1",
                ],
                env,
                logs,
            )
        )
        # Two API replicas relaying the stream from Redis (no model yet: they follow the slot audit).
        replicas = [
            stack.enter_context(
                _server(
                    f"replica{i}",
                    [sys.executable, "-m", "spxcast.cli.main", "serve", "--port", str(port)],
                    {**env, "SPXCAST_SERVING__SPOOL_PATH": str(tmp_path / f"spool{i}.ndjson")},
                    logs,
                )
            )
            for i, port in enumerate(replica_ports)
        ]
        listen, proxy = stack.enter_context(nginx_proxy(tmp_path / "nginx", replica_ports))
        base = f"http://127.0.0.1:{listen}"

        _cli(env, "pipeline", "run", "ingest")
        wait_for_http(f"http://127.0.0.1:{mlflow_port}/health", mlflow, logs / "mlflow.log", timeout=180)
        started = time.monotonic()
        trained = _cli(env, "pipeline", "run", "training", timeout=600)
        training_s = time.monotonic() - started
        # stdout holds spxcast's own summary only (MLflow prints run URLs there for tracking servers)
        printed = [line for line in trained.stdout.splitlines() if line.strip()]
        assert len(printed) == 1 and printed[0].startswith("run "), trained.stdout
        with app.connect() as db:
            [(run_id,)] = db.execute(text("SELECT id FROM pipeline_runs WHERE dag = 'training'")).all()

        # Optuna: each boosting model's studies were shared by two processes.
        for model in ("lightgbm", "xgboost"):
            workers = set()
            for stage, wanted in (("coarse", 2), ("fine", 1)):
                study = optuna.load_study(study_name=f"{run_id}-{model}-{stage}", storage=optuna_db)
                trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
                assert wanted <= len(trials) <= wanted + 1, (model, stage, len(trials))
                workers |= {t.user_attrs["worker"] for t in trials}
            assert len(workers) == 2, f"{model}: trials from two processes, got {workers}"

        # The registry lives on the MLflow server: the version, and its artifacts in the server's store.
        with app.connect() as db:
            tasks = db.execute(
                text("SELECT task, status FROM task_runs WHERE run_id = :r"), {"r": run_id}
            ).all()
            assert tasks and all(status == "succeeded" for _, status in tasks), tasks
            [(outputs,)] = db.execute(
                text("SELECT outputs FROM task_runs WHERE run_id = :r AND task = 'register_model'"),
                {"r": run_id},
            ).all()
        version = json.loads(outputs)["version"]
        assert version is not None, f"the planted signal must be found and registered: {outputs}"
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=env["SPXCAST_REGISTRY__TRACKING_URI"])
        experiment = client.get_experiment_by_name(settings.registry.experiment)
        assert experiment is not None and experiment.artifact_location.startswith("mlflow-artifacts:")
        assert any((tmp_path / "mlartifacts").rglob("model.json")), "artifacts stored by the server"
        assert not (tmp_path / "home" / "mlartifacts").exists(), "no artifacts in the client's home"

        # Champion, then deployed to both replicas through nginx's admin route.
        _cli(env, "models", "promote", str(version), "--force", "--reason", "team-scale e2e")
        for i, (port, replica) in enumerate(zip(replica_ports, replicas, strict=True)):
            wait_for_http(f"http://127.0.0.1:{port}/health", replica, logs / f"replica{i}.log")
        wait_for_http(f"{base}/health", proxy)
        deployed = httpx.post(
            f"{base}/admin/deploy",
            json={"version": version, "reason": "team-scale e2e: champion"},
            headers={"X-Admin-Key": admin_key, "X-Actor": "e2e"},
            timeout=120,
        )
        assert deployed.status_code == 200, deployed.text
        for i, (port, replica) in enumerate(zip(replica_ports, replicas, strict=True)):
            wait_for_http(f"http://127.0.0.1:{port}/ready", replica, logs / f"replica{i}.log", timeout=120)
            slots = httpx.get(f"http://127.0.0.1:{port}/models", timeout=10).json()
            assert [s["version"] for s in slots["slots"] if s["live"]] == [version], slots
            assert slots["champion"] == version, slots

        # A replay of the last bars in `spxcast live`, streamed through Redis and nginx to two clients.
        from spxcast.lake import Lake

        bars = (
            Lake.from_settings(settings)
            .series("bronze.candles", settings.instrument, settings.granularity)
            .select("ts")
            .collect()["ts"]
            .sort()
        )
        replayed = bars[-REPLAY_BARS:]
        start, end = replayed[0], replayed[-1] + timedelta(minutes=1)
        ws = f"ws://127.0.0.1:{listen}/ws/market-stream?instruments={settings.instrument}"
        clients = [_StreamClient(stack, ws, REPLAY_BARS, deadline_s=240) for _ in range(2)]
        replay = ("--replay", start.isoformat(), end.isoformat(), "--speed", "max", "--no-verify", "--json")
        summary = json.loads(_cli(env, "live", *replay, timeout=300).stdout)
        for c in clients:
            c.close()
        assert summary["bars"] == REPLAY_BARS and summary["predictions"] == REPLAY_BARS, summary
        # Backtest equals live, to float32 precision: the news decay features are float32 and may round to
        # the neighbouring value online (their recursion starts at the window, not at the first article),
        # which `spxcast live verify` (relative 1e-12) counts as a difference.
        window = ("--from", start.isoformat(), "--to", end.isoformat(), "--json")
        verified = subprocess.run(
            [sys.executable, "-m", "spxcast.cli.main", "live", "verify", *window],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        parity = json.loads(verified.stdout)
        [served] = parity["versions"]
        assert served["version"] == version and served["predictions"] == REPLAY_BARS, parity
        assert served["missing_bars"] == 0 and served["max_abs_diff"] < 1e-6, parity
        assert parity["realised"] == parity["realised_equal"] > 0 and parity["realised_pending"] == 0, parity
        expected = [t.isoformat() for t in replayed]
        for c in clients:
            assert [f["ts"] for f in c.bars] == expected, "every bar, in order, through Redis and nginx"
            assert c.bars[0]["predictions"][0]["model_version"] == version
            assert c.outcomes and len(c.outcomes) == summary["outcomes"], "every realised outcome is streamed"

        # PostgreSQL: one prediction per bar and slot, realised returns attached, the slot audit.
        horizon = timedelta(minutes=settings.horizon_minutes)
        stamps = set(replayed.to_list())
        realisable = sum(1 for t in stamps if t + horizon in stamps)
        with app.connect() as db:
            rows = db.execute(
                text(
                    "SELECT COUNT(*), COUNT(DISTINCT (bar_ts, slot, role)), COUNT(realised_pct), "
                    "MIN(model_version), MAX(model_version) FROM predictions "
                    "WHERE bar_ts >= :s AND bar_ts < :e"
                ),
                {"s": start, "e": end},
            ).one()
            audit = db.execute(
                text("SELECT action, actor, reason, state FROM serving_slot_changes ORDER BY id")
            ).all()
            promoted = db.execute(
                text("SELECT action, version, forced FROM model_transitions WHERE action = 'promote'")
            ).all()
        assert tuple(rows) == (REPLAY_BARS, REPLAY_BARS, realisable, version, version), rows
        assert realisable > REPLAY_BARS // 2
        deploys = [a for a in audit if a.action.startswith("deploy")]
        assert [(a.actor, a.reason) for a in deploys] == [("e2e", "team-scale e2e: champion")], audit
        state = json.loads(deploys[0].state)
        assert state["versions"][state["live"]] == version
        assert [(p.version, p.forced) for p in promoted] == [(version, True)]

        # The Feast online store in Redis holds the series (materialised, then pushed by the loop).
        import redis

        keys = list(redis.Redis(REDIS_HOST, REDIS_PORT, db=REDIS_DB).scan_iter(match=f"*{project}*"))
        assert keys, "the Feast online store in Redis holds the series"

        # Monitoring against the same app database: freshness alerts (the synthetic bars are old).
        monitored = json.loads(_cli(env, "monitor", "run", "--json", "--no-send", "--no-report").stdout)
        assert monitored["champion"]["version"] == version
        with app.connect() as db:
            alerts = db.execute(
                text('SELECT "check", status, severity FROM alerts WHERE run_id = :r'),
                {"r": monitored["run_id"]},
            ).all()
        assert ("bar_age", "open", "critical") in [tuple(a) for a in alerts], alerts
        print(f"team-scale e2e: training DAG {training_s:.0f} s")


def _clean_redis(project: str) -> None:
    import redis

    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=REDIS_DB)
    for key in client.scan_iter(match=f"*{project}*"):
        client.delete(key)
    client.close()
