"""Every route and error of the prediction API through FastAPI's TestClient, on real registered versions.

One home per module (gold + LightGBM, XGBoost, AR and two broken versions, trained in seconds); each test
has its own app database, so slot state starts empty unless the test deploys.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from serving_factories import FEATURES, ServedHome, app_settings, build_home, client
from spxcast.features.catalog import feature_catalog
from spxcast.models.io import load_model
from spxcast.registry import ModelRegistry
from spxcast.serving.slots import SlotState, route

KEY = "correct-horse-battery-staple"
ADMIN = {"X-Admin-Key": KEY, "X-Actor": "alice"}
SPX = "SPX500_USD"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> ServedHome:
    return build_home(
        tmp_path_factory.mktemp("served"), ("lightgbm", "ar", "xgboost", "tampered", "other-catalog")
    )


@pytest.fixture
def api(home: ServedHome, tmp_path: Path) -> Any:
    with client(app_settings(home, tmp_path, serving={"admin_key": KEY})) as c:
        yield c


def deploy(api: Any, version: int, swap: bool = True, reason: str = "test") -> Any:
    return api.post("/admin/deploy", json={"version": version, "reason": reason, "swap": swap}, headers=ADMIN)


def wait_logged(api: Any, n: int, shadow: bool = False) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        rows = api.get(
            "/predictions/history", params={"instrument": SPX, "limit": 10000, "shadow": shadow}
        ).json()["rows"]
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_no_model_is_503_with_the_reason_and_not_ready(api: Any) -> None:
    response = api.post("/predict", json={"instrument": SPX})
    assert response.status_code == 503
    assert "no champion" in response.json()["detail"]
    ready = api.get("/ready")
    assert ready.status_code == 503 and ready.json()["problems"]
    assert api.get("/health").json() == {"status": "ok"}


def test_predict_for_a_historical_bar_equals_the_batch_prediction(api: Any, home: ServedHome) -> None:
    for name in ("lightgbm", "xgboost", "ar"):
        version = home.versions[name]
        deployed = deploy(api, version)
        assert deployed.status_code == 200, deployed.json()
        registry = ModelRegistry(home.settings)
        downloaded = registry.download(version, Path(api.app.state.settings.home) / f"dl{version}")
        model = load_model(downloaded, catalog=feature_catalog(home.settings))
        gold = home.gold  # the horizon lags are gold columns
        picks = gold[[100, 1234, 2500, gold.height - 1]]
        batch = model.predict(picks)
        for ts, expected in zip(picks["ts"], batch, strict=True):
            body = api.post("/predict", json={"instrument": SPX, "ts": ts.isoformat()}).json()
            assert body["model"]["version"] == version and body["model"]["kind"] == name
            exact = expected if name != "ar" else pytest.approx(expected, rel=1e-12)  # BLAS summation order
            assert body["predicted_return_pct"] == exact
            assert body["bar_ts"] == ts.isoformat().replace("+00:00", "Z")
            assert body["feature_as_of"] > body["bar_ts"]
            assert body["direction"] == ("up" if expected > 0 else "down")
            interval = body["interval"]
            assert interval["level"] == 0.9 and interval["lower_pct"] < expected < interval["upper_pct"]
        latest = api.post("/predict", json={"instrument": SPX}).json()
        assert latest["bar_ts"] == picks["ts"][-1].isoformat().replace("+00:00", "Z")
        assert latest["predicted_return_pct"] == pytest.approx(batch[-1], rel=1e-12)


def test_explain_contributions_sum_to_the_prediction(api: Any, home: ServedHome) -> None:
    for name in ("lightgbm", "xgboost", "ar"):
        deploy(api, home.versions[name])
        body = api.post("/predict", json={"instrument": SPX, "explain": True}).json()
        explanation = body["explanation"]
        total = explanation["base_pct"] + sum(explanation["contributions_pct"].values())
        assert total == pytest.approx(body["predicted_return_pct"], abs=1e-6), name
        again = api.get("/explain", params={"prediction_id": body["prediction_id"]}).json()
        assert again["explanation"] == explanation
    assert api.get("/explain", params={"prediction_id": "nope"}).status_code == 404


def test_explicit_features_and_their_errors(api: Any, home: ServedHome) -> None:
    deploy(api, home.versions["lightgbm"])
    row = home.gold.row(500, named=True)
    features = {name: row[name] for name in FEATURES}
    body = api.post("/predict", json={"instrument": SPX, "features": features}).json()
    by_bar = api.post("/predict", json={"instrument": SPX, "ts": row["ts"].isoformat()}).json()
    assert body["predicted_return_pct"] == by_bar["predicted_return_pct"]
    assert body["bar_ts"] is None
    wrong = api.post("/predict", json={"instrument": SPX, "features": {FEATURES[0]: 1.0, "zzz": 2.0}})
    assert wrong.status_code == 422
    assert f"missing {list(FEATURES[1:])}" in wrong.json()["detail"] and "zzz" in wrong.json()["detail"]
    both = api.post("/predict", json={"instrument": SPX, "features": features, "ts": row["ts"].isoformat()})
    assert both.status_code == 422 and "not both" in both.json()["detail"]
    assert api.post("/predict", json={"instrument": "DAX"}).status_code == 404
    missing_bar = api.post("/predict", json={"instrument": SPX, "ts": "1999-01-01T00:00:00Z"})
    assert missing_bar.status_code == 404 and "bars run from" in missing_bar.json()["detail"]
    bad = api.post("/predict", json={"instrument": SPX, "surprise": 1})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "surprise"]
    assert "Traceback" not in bad.text
    huge = api.post(
        "/predict", content=b"{" + b" " * 100_000 + b"}", headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413


def test_failed_replay_or_catalog_is_refused_and_the_live_slot_untouched(api: Any, home: ServedHome) -> None:
    deploy(api, home.versions["lightgbm"])
    before = api.get("/models").json()
    refused = deploy(api, home.versions["tampered"])
    assert refused.status_code == 409 and "replay of 200 recorded predictions" in refused.json()["detail"]
    other = deploy(api, home.versions["other-catalog"])
    assert other.status_code == 409 and "another feature catalog" in other.json()["detail"]
    assert "ret_log_w1: description changed" in other.json()["detail"]
    assert api.get("/models").json()["slots"] == before["slots"]
    assert (
        api.post("/predict", json={"instrument": SPX}).json()["model"]["version"] == home.versions["lightgbm"]
    )


def test_rollback_restores_the_previous_version_and_state_survives_restart(
    home: ServedHome, tmp_path: Path
) -> None:
    settings = app_settings(home, tmp_path, serving={"admin_key": KEY})
    with client(settings) as api:
        deploy(api, home.versions["lightgbm"])
        deploy(api, home.versions["ar"])
        assert api.post("/predict", json={"instrument": SPX}).json()["model"]["kind"] == "ar"
        assert api.post("/admin/rollback", json={"reason": "bad"}, headers=ADMIN).status_code == 200
        assert api.post("/predict", json={"instrument": SPX}).json()["model"]["kind"] == "lightgbm"
    with client(settings) as api:  # a restart resumes the newest audited state
        models = api.get("/models").json()
        assert models["slots"][0]["version"] == home.versions["ar"]
        assert api.post("/predict", json={"instrument": SPX}).json()["model"]["kind"] == "lightgbm"
        from spxcast.db import connect
        from spxcast.serving.slots import history

        changes = history(connect(settings.db_url()))
        assert [(c.action, c.actor, c.reason) for c in changes][:2] == [
            ("rollback", "alice", "bad"),
            ("deploy+swap", "alice", "test"),
        ]


def test_ab_weights_are_sticky_and_within_three_points(api: Any, home: ServedHome) -> None:
    state = SlotState(live="blue", versions={"blue": 1, "green": 2}, weights={"blue": 0.8, "green": 0.2})
    picks = [route(state, f"user-{i}") for i in range(10_000)]
    assert abs(picks.count("green") / 10_000 - 0.2) <= 0.03
    assert all(route(state, f"user-{i}") == picks[i] for i in range(100))  # sticky
    deploy(api, home.versions["lightgbm"])
    deploy(api, home.versions["ar"])
    live = api.get("/models").json()["live"]
    idle = "blue" if live == "green" else "green"
    response = api.post(
        "/admin/weights", json={"weights": {live: 0.7, idle: 0.3}, "reason": "ab"}, headers=ADMIN
    )
    assert response.status_code == 200
    slots = [
        api.post("/predict", json={"instrument": SPX, "client_key": f"c{i}"}).json()["slot"]
        for i in range(400)
    ]
    assert abs(slots.count(idle) / 400 - 0.3) <= 0.07
    again = api.post("/predict", json={"instrument": SPX, "client_key": "c7"}).json()["slot"]
    assert again == slots[7]


def test_shadow_rows_are_logged_and_never_returned(api: Any, home: ServedHome) -> None:
    deploy(api, home.versions["lightgbm"])
    deploy(api, home.versions["ar"])
    assert (
        api.post("/admin/shadow", json={"enabled": True, "reason": "try ar"}, headers=ADMIN).status_code
        == 200
    )
    served = [api.post("/predict", json={"instrument": SPX}).json() for _ in range(20)]
    assert {s["model"]["kind"] for s in served} == {"ar"}
    shadow = wait_logged(api, 20, shadow=True)
    assert len(shadow) == 20 and {r["model_version"] for r in shadow} == {home.versions["lightgbm"]}
    assert not {r["prediction_id"] for r in shadow} & {s["prediction_id"] for s in served}
    assert len(wait_logged(api, 20)) == 20


def test_admin_needs_the_key_and_never_logs_it(
    home: ServedHome, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with client(app_settings(home, tmp_path, serving={"admin_key": KEY})) as api:
        body = {"version": home.versions["lightgbm"], "reason": "x"}
        assert api.post("/admin/deploy", json=body).status_code == 401
        assert api.post("/admin/deploy", json=body, headers={"X-Admin-Key": "wrong"}).status_code == 403
        assert api.post("/admin/deploy", json=body, headers=ADMIN).status_code == 200
        assert api.post("/admin/rollback", json={"reason": "r"}).status_code == 401
    with client(app_settings(home, tmp_path / "nokey")) as api:
        disabled = api.post("/admin/deploy", json=body, headers=ADMIN)
        assert disabled.status_code == 403 and "disabled" in disabled.json()["detail"]
    assert KEY not in caplog.text


def test_history_news_models_metrics(api: Any, home: ServedHome) -> None:
    deploy(api, home.versions["lightgbm"])
    ts = home.gold["ts"][1000]
    body = api.post("/predict", json={"instrument": SPX, "ts": ts.isoformat()}).json()
    [row] = wait_logged(api, 1)
    assert row["prediction_id"] == body["prediction_id"] and row["realised_return_pct"] is None
    service = api.app.state.service
    assert service.attach_realised() >= 1
    [row] = api.get("/predictions/history", params={"instrument": SPX, "from": ts.isoformat()}).json()["rows"]
    expected = home.gold.filter(pl.col("ts") == ts)["target_ret_30m_pct"][0]
    assert row["realised_return_pct"] == pytest.approx(expected)
    assert api.get("/predictions/history", params={"instrument": "DAX"}).status_code == 404
    assert api.get("/predictions/history", params={"instrument": SPX, "limit": 0}).status_code == 422
    models = api.get("/models").json()
    assert models["challenger"] == max(home.versions.values())  # the newest registered version
    assert [s["version"] for s in models["slots"] if s["live"]] == [home.versions["lightgbm"]]
    metrics = api.get("/metrics").text
    assert 'spxcast_predictions_total{role="served",slot=' in metrics
    assert "spxcast_request_seconds_bucket" in metrics and "spxcast_prediction_log_queue_depth" in metrics
    written = re.search(r"^spxcast_prediction_rows_written_total (\S+)$", metrics, re.MULTILINE)
    assert written is not None and float(written[1]) >= 1


def test_news_recent_lists_the_newest_scored_articles(api: Any, home: ServedHome) -> None:
    from datetime import UTC, datetime, timedelta

    from spxcast.lake import Lake

    lake = Lake.from_settings(home.settings)
    start = datetime(2024, 1, 2, 14, 0, tzinfo=UTC)
    news = pl.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(3)],
            "url": [f"https://example.com/{i}" for i in range(3)],
            "title": ["Stocks rise", "Fed holds rates", "Earnings beat"],
            "summary": pl.Series([None, None, None], dtype=pl.Utf8),
            "domain": ["example.com"] * 3,
            "language": ["en"] * 3,
            "published_at": [start + timedelta(minutes=i) for i in range(3)],
            "crawled_at": [start + timedelta(minutes=i) for i in range(3)],
            "received_at": [start + timedelta(minutes=i, seconds=30) for i in range(3)],
            "provider": ["files"] * 3,
            "title_key": [f"k{i}" for i in range(3)],
            "text_hash": [f"h{i}" for i in range(3)],
            "ingested_at": [start + timedelta(hours=1)] * 3,
        }
    )
    scores = pl.DataFrame(
        {
            "text_hash": ["h0", "h1", "h2"],
            "scorer_id": ["lexicon-v1"] * 3,
            "p_pos": [0.7, 0.2, 0.6],
            "p_neg": [0.1, 0.3, 0.2],
            "p_neu": [0.2, 0.5, 0.2],
            "score": [0.6, -0.1, 0.4],
            "confidence": [0.7, 0.5, 0.6],
            "scored_at": [start + timedelta(hours=1)] * 3,
        }
    ).with_columns(pl.col(["p_pos", "p_neg", "p_neu", "score", "confidence"]).cast(pl.Float32))
    lake.write("bronze.news", news)
    lake.write("silver.news_scores", scores)
    items = api.get("/news/recent", params={"limit": 2}).json()["items"]
    assert [i["title"] for i in items] == ["Earnings beat", "Fed holds rates"]
    assert items[0]["score"] == pytest.approx(0.4) and items[0]["scorer"] == "lexicon-v1"
    assert api.get("/news/recent", params={"limit": 0}).status_code == 422


def test_a_frozen_heap_holds_no_garbage_from_resuming_the_slots(home: ServedHome, tmp_path: Path) -> None:
    """A dedicated server freezes its long-lived heap at start: garbage made before (or while loading the
    resumed models) is collected first, not frozen for the life of the process."""
    import gc
    import weakref

    from spxcast.serving.app import build_service

    settings = app_settings(home, tmp_path, serving={"admin_key": KEY})
    with client(settings) as api:
        deploy(api, home.versions["lightgbm"])
    service = build_service(settings)
    service.freeze_heap = True

    class Cycle:
        pass

    gc.disable()  # no automatic pass may collect the cycle before the service freezes the heap
    try:
        cycle = Cycle()
        cycle.me = cycle  # type: ignore[attr-defined]
        dead = weakref.ref(cycle)
        del cycle
        service.start(background=False)
        try:
            assert service.slots().models[service.slots().state.live] is not None  # resumed: a model loaded
            assert dead() is None, "a reference cycle that was garbage at start was frozen, never freed"
        finally:
            service.close()
    finally:
        gc.unfreeze()
        gc.enable()
