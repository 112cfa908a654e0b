"""End to end: ``spxcast serve`` as a real uvicorn process on loopback, its app database a throwaway
PostgreSQL cluster. Under continuous load: two deploys (swaps) and a rollback fail no request; the database is
stopped and restarted mid-load and every prediction answered is in the log exactly once afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from pg_cluster import free_port, throwaway_cluster
from serving_factories import build_home, wait_for_http
from spxcast.db import PredictionRecord

KEY = "e2e-admin-key-7f3a"
SPX = "SPX500_USD"


class Load:
    """Threads posting /predict until stopped; records answered prediction ids and failures."""

    def __init__(self, base: str, threads: int = 3) -> None:
        self.base = base
        self.ids: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, n: int) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    response = http.post("/predict", json={"instrument": SPX, "client_key": f"t{n}-{i}"})
                    if response.status_code == 200:
                        self.ids.append(response.json()["prediction_id"])
                    else:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def admin(base: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{base}/admin/{path}", json=body, headers={"X-Admin-Key": KEY}, timeout=60)


@pytest.mark.slow
def test_swaps_and_a_database_outage_under_load_lose_and_double_nothing(tmp_path: Path) -> None:
    home = build_home(tmp_path / "served", ("lightgbm", "ar"))
    with throwaway_cluster() as cluster:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "SPXCAST_HOME": str(home.settings.home),
            "SPXCAST_DB__URL": cluster.url,
            "SPXCAST_SERVING__ADMIN_KEY": KEY,
            "SPXCAST_SERVING__SPOOL_PATH": str(tmp_path / "spool.ndjson"),
            "SPXCAST_SERVING__FEATURE_REFRESH_S": "3600",
        }
        log = (tmp_path / "server.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "spxcast.cli.main", "-v", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_http(f"{base}/health", server, tmp_path / "server.log")
            assert (
                admin(base, "deploy", {"version": home.versions["lightgbm"], "reason": "first"}).status_code
                == 200
            )
            with Load(base) as load:
                time.sleep(1.0)
                assert (
                    admin(base, "deploy", {"version": home.versions["ar"], "reason": "swap"}).status_code
                    == 200
                )
                time.sleep(0.5)
                assert admin(base, "rollback", {"reason": "back"}).status_code == 200
                time.sleep(0.5)
                cluster.stop()  # the app database goes away mid-load
                time.sleep(1.5)
                cluster.start()
                time.sleep(1.0)
            assert load.failures == []
            assert len(load.ids) > 50
            engine = create_engine(cluster.url.replace("?connect_timeout=2", ""))
            deadline = time.monotonic() + 30
            while True:
                with engine.connect() as connection:
                    logged = connection.execute(select(PredictionRecord.prediction_id)).scalars().all()
                if len(logged) >= len(load.ids) or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert len(logged) == len(set(logged))  # no duplicates
            assert set(load.ids) <= set(logged) and len(logged) == len(load.ids)  # none lost
            with engine.connect() as connection:
                versions = connection.execute(
                    select(PredictionRecord.model_version, func.count()).group_by(
                        PredictionRecord.model_version
                    )
                ).all()
            assert {v for v, _ in versions} == {home.versions["lightgbm"], home.versions["ar"]}
        finally:
            server.terminate()
            server.wait(30)
            log.close()
        text = (tmp_path / "server.log").read_text()
        assert "spooling predictions" in text and "replayed" in text
        assert KEY not in text
