"""A real API on loopback for the dashboard tests, on demo data.

A served home (``serving_factories.build_home``: gold + registered LightGBM and XGBoost versions) gets
candles for its bars (gold's labels rewritten to follow them) and a few scored articles; the LightGBM version
is promoted champion; ``spxcast serve`` runs as a uvicorn subprocess on a free loopback port (the champion is
deployed at start), the XGBoost version is deployed into the idle slot as the shadow challenger, and the last
bars are forecast through ``POST /predict``. The server attaches realised outcomes itself (its background
sync), exactly as in production.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

from serving_factories import ServedHome, build_home
from spxcast.lake import Lake
from training_factories import HORIZON, TARGET

KEY = "dashboard-test-admin-key"
FORECAST_BARS = 150
"""Bars forecast through POST /predict (the newest ones, so the chart's last 120 bars are covered)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_candles(home: ServedHome, seed: int = 5) -> None:
    """OHLC bars (a random walk around 5000) for every bar of the home's gold table, and gold's labels made
    consistent with them (the return from a bar's close to the close 30 minutes later), so a realised
    outcome lands on the close of the bar it was forecast for. Written after training: the models keep the
    factory's planted signal, the realised outcomes are those of the random walk."""
    rng = np.random.default_rng(seed)
    n = home.gold.height
    close = 5000 * np.exp(np.cumsum(rng.standard_normal(n) * 2e-4))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.standard_normal(n)) * 0.6
    candles = pl.DataFrame(
        {
            "instrument": home.gold["instrument"],
            "granularity": home.gold["granularity"],
            "ts": home.gold["ts"],
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.integers(10, 200, n),
            "bid_close": pl.Series([None] * n, dtype=pl.Float64),
            "ask_close": pl.Series([None] * n, dtype=pl.Float64),
            "source": "tests",
            "ingested_at": datetime.now(UTC),
        }
    ).with_columns(pl.col("ingested_at").dt.cast_time_unit("us"))
    lake = Lake.from_settings(home.settings)
    lake.write("bronze.candles", candles)
    ahead = candles.select(
        (pl.col("ts") - timedelta(minutes=HORIZON)).alias("ts"), pl.col("close").alias("ahead")
    )
    labelled = (
        home.gold.join(candles.select("ts", "close"), on="ts", how="left")
        .join(ahead, on="ts", how="left")
        .with_columns(((pl.col("ahead") / pl.col("close") - 1) * 100).alias(TARGET))
        .with_columns(
            pl.col(TARGET).sign().cast(pl.Int8).alias(f"target_dir_{HORIZON}m"),
            pl.col(TARGET).is_not_null().alias("label_ok"),
        )
        .select(home.gold.columns)
    )
    lake.write("gold.features", labelled)


def write_news(home: ServedHome) -> None:
    """Three scored articles received during the last session."""
    last = home.gold["ts"][-1]
    titles = ["Stocks rally as inflation cools", "Earnings miss weighs on tech", "Fed holds rates steady"]
    scores = [0.72, -0.55, 0.05]
    hashes = [hashlib.sha256(t.encode()).hexdigest() for t in titles]
    received = [last - timedelta(minutes=m) for m in (90, 45, 10)]
    now = datetime.now(UTC)
    news = pl.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(3)],
            "url": [f"https://news.example/{i}" for i in range(3)],
            "title": titles,
            "summary": [None] * 3,
            "domain": ["news.example"] * 3,
            "language": ["en"] * 3,
            "published_at": received,
            "crawled_at": received,
            "received_at": received,
            "provider": ["tests"] * 3,
            "title_key": hashes,
            "text_hash": hashes,
            "ingested_at": [now] * 3,
        },
        schema_overrides={"summary": pl.Utf8},
    ).with_columns(pl.col(pl.Datetime).dt.cast_time_unit("us").dt.convert_time_zone("UTC"))
    scored = pl.DataFrame(
        {
            "text_hash": hashes,
            "scorer_id": ["lexicon-lm"] * 3,
            "p_pos": [max(s, 0.0) for s in scores],
            "p_neg": [max(-s, 0.0) for s in scores],
            "p_neu": [1 - abs(s) for s in scores],
            "score": scores,
            "confidence": [0.9] * 3,
            "scored_at": [now] * 3,
        }
    ).with_columns(
        pl.col("p_pos", "p_neg", "p_neu", "score", "confidence").cast(pl.Float32),
        pl.col("scored_at").dt.cast_time_unit("us"),
    )
    lake = Lake.from_settings(home.settings)
    lake.write("bronze.news", news)
    lake.write("silver.news_scores", scored)


@dataclass(frozen=True)
class RunningApi:
    base: str
    home: ServedHome
    champion: int
    challenger: int
    env: dict[str, str]


def wait_healthy(base: str, server: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the API server exited"
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the API server did not start")


def _admin(base: str, path: str, body: dict[str, Any]) -> None:
    response = httpx.post(f"{base}/admin/{path}", json=body, headers={"X-Admin-Key": KEY}, timeout=60)
    assert response.status_code == 200, response.text


def monitor(home: ServedHome, app_db: Path) -> dict[str, Any]:
    """One monitoring run over the served home's prediction log (no messages, no HTML report), as the
    monitoring DAG would: its summary is what GET /monitoring/latest returns."""
    from spxcast.monitoring.service import run_monitoring

    db = home.settings.db.model_copy(update={"url": f"sqlite:///{app_db}"})
    return run_monitoring(home.settings.model_copy(update={"db": db}), send=False, report=False)


@contextmanager
def running_api(root: Path) -> Iterator[RunningApi]:
    """The API on demo data with forecasts (some realised) of the last bars; stopped on exit."""
    from spxcast.registry import ModelRegistry

    home = build_home(root / "served", ("lightgbm", "xgboost"))  # no AR: its lags are labels, rewritten
    write_candles(home)
    write_news(home)
    champion, challenger = home.versions["lightgbm"], home.versions["xgboost"]
    app_db = home.settings.db.model_copy(update={"url": f"sqlite:///{root / 'app.db'}"})
    registry = ModelRegistry(home.settings.model_copy(update={"db": app_db}))  # audited where the API reads
    registry.promote(champion, force=True, reason="dashboard tests", actor="tests")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SPXCAST_HOME": str(home.settings.home),
        "SPXCAST_DB__URL": f"sqlite:///{root / 'app.db'}",
        "SPXCAST_SERVING__ADMIN_KEY": KEY,
        "SPXCAST_SERVING__SPOOL_PATH": str(root / "spool.ndjson"),
        "SPXCAST_SERVING__FEATURE_REFRESH_S": "0.5",
    }
    log = (root / "api.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "spxcast.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_healthy(base, server)
        _admin(base, "deploy", {"version": challenger, "reason": "shadow challenger", "swap": False})
        _admin(base, "shadow", {"enabled": True, "reason": "score the challenger in shadow"})
        with httpx.Client(base_url=base, timeout=30) as http:
            for ts in home.gold["ts"].tail(FORECAST_BARS):
                response = http.post("/predict", json={"instrument": "SPX500_USD", "ts": ts.isoformat()})
                assert response.status_code == 200, response.text
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # the server's background sync attaches outcomes
                rows = http.get(
                    "/predictions/history", params={"instrument": "SPX500_USD", "limit": 10000}
                ).json()["rows"]
                if sum(r["realised_return_pct"] is not None for r in rows) >= FORECAST_BARS - 40:
                    break
                time.sleep(0.3)
        monitor(home, root / "app.db")
        yield RunningApi(base, home, champion, challenger, env)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
