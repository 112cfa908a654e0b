"""The Feast feature store defined from the catalog: historical retrieval (point-in-time join at each
bar's close) equals gold.features; an online read after a push equals the vector the online path computed;
with the SQLite online store and with a real Redis on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest

from live_factories import gold_home
from services import REDIS_HOST, REDIS_PORT, require_port
from spxcast.config import Settings
from spxcast.lake import Lake
from spxcast.lake.tables import GOLD_FEATURES


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return gold_home(tmp_path_factory.mktemp("feast"), "2024-01-08", "2024-01-10")


def _client(settings: Settings, kind: str) -> Iterator[object]:
    from spxcast.featurestore import FeatureStoreClient

    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0" if kind == "redis" else None
    live = settings.live.model_copy(update={"feature_store": kind, "redis_url": url})
    client = FeatureStoreClient(settings.model_copy(update={"live": live}))
    try:
        yield client
    finally:
        if client._store is not None:
            client.store.teardown()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, home: Settings) -> Iterator[object]:
    if request.param == "redis":
        require_port("Redis", REDIS_HOST, REDIS_PORT)
    yield from _client(home, request.param)


def _equal(left: np.ndarray, right: np.ndarray) -> bool:
    return bool(np.array_equal(left.astype(np.float32), right.astype(np.float32), equal_nan=True))


def test_historical_retrieval_equals_gold_and_online_read_equals_pushed_vector(
    home: Settings, store: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from spxcast.features.catalog import feature_catalog, feature_context
    from spxcast.features.online import history_need, online_row
    from spxcast.lake.online import online_inputs
    from spxcast.sentiment import scorer_id

    client = store
    assert client.materialize()["rows"] > 0  # type: ignore[attr-defined]
    assert capsys.readouterr().out == "", "Feast's progress stays off stdout (spxcast's output)"
    lake = Lake.from_settings(home)
    gold = lake.series(GOLD_FEATURES.name, home.instrument, home.granularity).collect()
    rng = np.random.default_rng(3)
    picks = sorted({0, gold.height - 1, *rng.choice(gold.height, 60, replace=False).tolist()})
    sample = gold[picks]
    found = client.historical(home.instrument, home.granularity, sample["ts"].to_list())  # type: ignore[attr-defined]
    names = list(client.columns.all)  # type: ignore[attr-defined]
    assert found["ts"].to_list() == sample["ts"].to_list()
    assert _equal(found.select(names).to_numpy(), sample.select(pl.col(names).cast(pl.Float32)).to_numpy())

    newest = client.online_vector(home.instrument, home.granularity)  # type: ignore[attr-defined]
    assert newest is not None and newest[0] == gold["ts"][-1], "materialize loaded the newest gold row"

    catalog, context = feature_catalog(home), feature_context(home)
    at = gold["ts"][-1]
    bars, articles = online_inputs(
        lake, home.instrument, home.granularity, at, history_need(catalog), scorer_id(home.sentiment)
    )
    later = bars.with_columns(pl.col("ts") + (bars["ts"][-1] - bars["ts"][-2]))  # a new bar after gold's end
    vector = online_row(later, articles, catalog, context)
    client.push(home.instrument, home.granularity, vector)  # type: ignore[attr-defined]
    bar_ts, values = client.online_vector(home.instrument, home.granularity)  # type: ignore[attr-defined]
    assert bar_ts == vector["ts"][0]
    read = np.array([np.nan if values[n] is None else values[n] for n in names], np.float32)
    assert _equal(read, vector.select(names).to_numpy()[0]), "online read after push = the online vector"

    from spxcast.serving.live.features import LiveFeatureSource
    from spxcast.serving.live.runtime import load_newest_vector

    replica = LiveFeatureSource(client.settings)  # type: ignore[attr-defined]
    load_newest_vector(client.settings, replica)  # type: ignore[attr-defined]
    started = replica.row(home.instrument)
    assert started.bar_ts == bar_ts, "a replica starts from the online store's newest vector"
    assert _equal(started.vector(names), read)
