"""Two ``spxcast serve`` replicas behind Debian's nginx with deploy/nginx's config, all on loopback: a deploy
through nginx reaches every replica (the others follow the audited slot state), traffic is spread over both,
and stopping one replica mid-traffic fails no request."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from nginx_proxy import nginx_binary, nginx_proxy
from pg_cluster import free_port
from serving_factories import build_home, wait_for_http

KEY = "nginx-admin-key"


def _predictions(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("spxcast_predictions_total{")
    )


@pytest.mark.slow
def test_two_replicas_behind_nginx(tmp_path: Path) -> None:
    nginx_binary()  # skip before training when nginx is missing
    home = build_home(tmp_path / "served", ("lightgbm",))
    ports = [free_port(), free_port()]
    env = {
        **os.environ,
        "SPXCAST_HOME": str(home.settings.home),
        "SPXCAST_DB__URL": f"sqlite:///{tmp_path / 'app.db'}",
        "SPXCAST_SERVING__ADMIN_KEY": KEY,
        "SPXCAST_SERVING__FEATURE_REFRESH_S": "0.5",
    }
    replicas = []
    logs = []
    with ExitStack() as stack:
        for i, port in enumerate(ports):
            replica_env = {**env, "SPXCAST_SERVING__SPOOL_PATH": str(tmp_path / f"spool{i}.ndjson")}
            logs.append(stack.enter_context((tmp_path / f"replica{i}.log").open("wb")))
            replica = subprocess.Popen(
                [sys.executable, "-m", "spxcast.cli.main", "serve", "--port", str(port)],
                env=replica_env,
                stdout=subprocess.DEVNULL,
                stderr=logs[-1],
            )
            stack.callback(_stop, replica)
            replicas.append(replica)
        listen, proxy = stack.enter_context(nginx_proxy(tmp_path / "nginx", ports))
        for i, (port, replica) in enumerate(zip(ports, replicas, strict=True)):
            wait_for_http(f"http://127.0.0.1:{port}/health", replica, tmp_path / f"replica{i}.log")
        base = f"http://127.0.0.1:{listen}"
        wait_for_http(f"{base}/health", proxy)
        deployed = httpx.post(
            f"{base}/admin/deploy",
            json={"version": home.versions["lightgbm"], "reason": "behind nginx"},
            headers={"X-Admin-Key": KEY},
            timeout=60,
        )
        assert deployed.status_code == 200, deployed.text
        for i, (port, replica) in enumerate(zip(ports, replicas, strict=True)):  # the other follows the audit
            wait_for_http(f"http://127.0.0.1:{port}/ready", replica, tmp_path / f"replica{i}.log")
        statuses = []
        with httpx.Client(base_url=base, timeout=30) as http:
            for i in range(300):
                response = http.post("/predict", json={"instrument": "SPX500_USD"})
                statuses.append(response.status_code)
                assert response.status_code == 200, (i, response.status_code, response.text[:300])
                if i == 150:
                    served = [_predictions(p) for p in ports]
                    assert min(served) > 0, f"predictions per replica {served}"  # both served
                    replicas[1].terminate()  # one replica goes away mid-traffic
                    replicas[1].wait(30)
        assert statuses == [200] * 300


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(30)
