"""`/predict` for the newest closed bar is answered from the online path when bronze is ahead of gold.

After the deploy (replayed on the factory's gold), gold is rebuilt by the batch features DAG from real
bronze candles; then three more bars arrive in bronze (the live loop's append path) without a gold
rebuild. The latest prediction must be the model's prediction on ``online_row`` of the newest bar; a
historical bar stays the batch row; after the gold rebuild the same bar is served from gold with the same
prediction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from features_factory import random_candles
from serving_factories import FEATURES, ServedHome, app_settings, build_home, client
from spxcast.features.catalog import feature_catalog, feature_context
from spxcast.features.online import history_need, online_row
from spxcast.ingest.market import append_bars
from spxcast.lake import Lake
from spxcast.lake.online import online_inputs
from spxcast.models.io import load_model
from spxcast.pipeline.tasks.features import build_features
from spxcast.registry import ModelRegistry
from spxcast.sentiment import scorer_id

KEY = "online-admin-key"
ADMIN = {"X-Admin-Key": KEY, "X-Actor": "tests"}
SPX = "SPX500_USD"
NEW_BARS = 3


def _append(home: ServedHome, bars: pl.DataFrame) -> None:
    settings = home.settings
    result = append_bars(
        Lake.from_settings(settings),
        bars.drop("instrument", "granularity"),
        instrument=settings.instrument,
        granularity=settings.granularity,
        source="tests",
        now=datetime(2030, 1, 1, tzinfo=UTC),
        quality=settings.quality,
    )
    assert result.quarantined.is_empty()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[ServedHome, pl.DataFrame]:
    return build_home(tmp_path_factory.mktemp("online-served"), ("lightgbm",)), random_candles(900, seed=11)


def _model(home: ServedHome, tmp_path: Path) -> Any:
    downloaded = ModelRegistry(home.settings).download(home.versions["lightgbm"], tmp_path / "model")
    return load_model(downloaded, catalog=feature_catalog(home.settings))


def test_latest_bar_ahead_of_gold_is_the_online_row_and_equals_gold_once_rebuilt(
    home: tuple[ServedHome, pl.DataFrame], tmp_path: Path
) -> None:
    served, candles = home
    settings = served.settings
    lake = Lake.from_settings(settings)
    model = _model(served, tmp_path)
    with client(app_settings(served, tmp_path, serving={"admin_key": KEY})) as api:
        deployed = api.post(
            "/admin/deploy", json={"version": served.versions["lightgbm"], "reason": "t"}, headers=ADMIN
        )
        assert deployed.status_code == 200, deployed.json()  # replayed on the factory's gold
        service = api.app.state.service
        # Gold rebuilt by the batch DAG from real bronze candles, all but the newest bars.
        _append(served, candles.head(candles.height - NEW_BARS))
        build_features(settings, "online-gold", include_news=False)
        service.sync()  # the background refresh, run now
        gold = lake.read("gold.features").sort("ts")
        old = gold[[gold.height // 2]]
        historical = api.post("/predict", json={"instrument": SPX, "ts": old["ts"][0].isoformat()}).json()
        assert historical["predicted_return_pct"] == model.predict(old)[0]

        _append(served, candles.tail(NEW_BARS))  # bronze is now 3 bars ahead of gold
        service.sync()
        newest = candles["ts"][-1]
        catalog = feature_catalog(settings)
        bars, articles = online_inputs(
            lake,
            SPX,
            settings.granularity,
            newest,
            history_need(catalog, FEATURES),
            scorer_id(settings.sentiment),
        )
        online = online_row(bars, articles, catalog, feature_context(settings), FEATURES)
        latest = api.post("/predict", json={"instrument": SPX}).json()
        assert datetime.fromisoformat(latest["bar_ts"]) == newest
        assert latest["predicted_return_pct"] == model.predict(online)[0]
        assert latest["price"] == pytest.approx(candles["close"][-1])
        # The historical bar is still the batch row.
        again = api.post("/predict", json={"instrument": SPX, "ts": old["ts"][0].isoformat()}).json()
        assert again["predicted_return_pct"] == historical["predicted_return_pct"]

        build_features(settings, "online-gold-2", include_news=False)  # gold catches up
        service.sync()
        rebuilt = lake.read("gold.features").sort("ts").tail(1)
        assert rebuilt["ts"][0] == newest
        assert rebuilt.select(FEATURES).rows() == online.select(FEATURES).rows()
        from_gold = api.post("/predict", json={"instrument": SPX}).json()
        assert datetime.fromisoformat(from_gold["bar_ts"]) == newest
        assert from_gold["predicted_return_pct"] == model.predict(rebuilt)[0]
        assert from_gold["predicted_return_pct"] == latest["predicted_return_pct"]
