"""End to end: ``spxcast serve --workers 2`` on loopback. Both workers answer; a deploy made through one is
followed by the other (the audited slot state); every answered prediction is logged exactly once (each
worker has its own queue and spool file); ``/metrics``, whichever worker answers it, counts every worker's
predictions (prometheus_client multiprocess mode)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from sqlalchemy import create_engine, func, select

from pg_cluster import free_port
from serving_factories import build_home, wait_for_http
from spxcast.db import PredictionRecord

KEY = "workers-admin-key"
SPX = "SPX500_USD"


def _predict(base: str) -> dict[str, object]:
    """One answer, on a fresh connection (so that both workers accept some)."""
    response = httpx.post(f"{base}/predict", json={"instrument": SPX}, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _per_worker_predictions(directory: Path) -> dict[str, float]:
    """Predictions per worker pid, read from each worker's multiprocess counter file."""
    counts = {}
    for file in directory.glob("counter_*.db"):
        counts[file.stem.split("_", 1)[1]] = sum(
            value
            for key, value, _, _ in MmapedDict.read_all_values_from_file(str(file))
            if json.loads(key)[0] == "spxcast_predictions"
        )
    return counts


def _live_versions(directory: Path) -> dict[str, float]:
    """The live slot's model version per worker pid, from each worker's multiprocess gauge file."""
    found = {}
    for file in directory.glob("gauge_livemostrecent_*.db"):
        gauges: dict[tuple[str, str], float] = {}
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(file)):
            name, _, labels, _ = json.loads(key)  # prometheus_client's key: metric, sample, labels, help
            if "slot" in labels:
                gauges[name, labels["slot"]] = value
        live = [slot for (name, slot), value in gauges.items() if name == "spxcast_slot_live" and value == 1]
        if live:
            found[file.stem.rsplit("_", 1)[1]] = gauges.get(("spxcast_slot_model_version", live[0]), 0.0)
    return found


def _metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


@pytest.mark.slow
def test_two_workers_share_slot_state_log_and_metrics(tmp_path: Path) -> None:
    home = build_home(tmp_path / "served", ("lightgbm", "ar"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    metrics = tmp_path / "metrics"
    db = tmp_path / "app.db"
    env = {
        **os.environ,
        "SPXCAST_HOME": str(home.settings.home),
        "SPXCAST_DB__URL": f"sqlite:///{db}",
        "SPXCAST_SERVING__ADMIN_KEY": KEY,
        "SPXCAST_SERVING__FEATURE_REFRESH_S": "0.5",
        "SPXCAST_SERVING__SPOOL_PATH": str(tmp_path / "spool.ndjson"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "spxcast.cli.main", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"{base}/health", server, tmp_path / "server.log")
        answered: list[dict[str, object]] = []
        with ThreadPoolExecutor(8) as pool:
            for name in ("lightgbm", "ar"):
                version = home.versions[name]
                deployed = httpx.post(
                    f"{base}/admin/deploy",
                    json={"version": version, "reason": f"workers {name}"},
                    headers={"X-Admin-Key": KEY},
                    timeout=120,
                )
                assert deployed.status_code == 200, deployed.text
                deadline = time.monotonic() + 60
                # The worker that took the deploy swapped at once; the other follows the audited state.
                while list(_live_versions(metrics).values()) != [version, version]:
                    assert time.monotonic() < deadline, f"workers did not follow: {_live_versions(metrics)}"
                    time.sleep(0.2)
                steady = list(pool.map(lambda _: _predict(base), range(200)))
                assert all(b["model"]["version"] == version for b in steady)  # type: ignore[index]
                answered += steady

        per_worker = _per_worker_predictions(metrics)
        assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values()), per_worker
        served = _metric(base, "spxcast_predictions_total")
        assert served == sum(per_worker.values()) == len(answered)

        ids = {str(b["prediction_id"]) for b in answered}
        engine = create_engine(f"sqlite:///{db}")
        deadline = time.monotonic() + 30
        while True:
            with engine.connect() as connection:
                total, distinct = connection.execute(
                    select(func.count(), func.count(func.distinct(PredictionRecord.prediction_id)))
                ).one()
                logged = set(connection.execute(select(PredictionRecord.prediction_id)).scalars())
            if ids <= logged or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert ids <= logged and total == distinct == served  # every prediction once, none twice
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert "Traceback" not in (tmp_path / "server.log").read_text()
