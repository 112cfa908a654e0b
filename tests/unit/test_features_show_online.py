"""`spxcast features show --at TS --online --json` equals `features show --at TS --json` on every feature.

The synthetic market and its news go through the real tasks (ingest, validate, score with the lexicon
scorer, news signals, the features DAG); the online row is then computed from bronze candles and scored
news alone, for bars with articles in the last hour, the first bar after the daily break and the last bar.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from spxcast.cli.main import app
from spxcast.config import Settings, load_settings
from spxcast.features.catalog import feature_catalog
from spxcast.lake import Lake
from spxcast.pipeline.runner import run_task
from spxcast.pipeline.tasks.features import build_features

UPSTREAM = ("ingest_market", "validate_market", "ingest_news", "validate_news")
ULPS = 4


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("online-cli") / "home"
    settings = _settings(home)
    for task in UPSTREAM:
        status, payload = run_task(settings, task, "online-cli")
        assert status == "succeeded", (task, payload)
    build_features(settings, "online-cli")
    return home


def _settings(home: Path) -> Settings:
    return load_settings(
        home=home,
        **{"market.synthetic.start": "2024-01-08", "market.synthetic.days": 3, "pipeline.workers": 1},
    )


def _show(home: Path, ts: str, *flags: str) -> dict[str, object]:
    args = ["--home", str(home), "features", "show", "--at", ts, "--json", *flags]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def _bars(home: Path) -> list[str]:
    settings = _settings(home)
    gold = Lake.from_settings(settings).read("gold.features").sort("ts")
    with_news = gold.filter(pl.col("news_count_60m") > 0)
    after_break = gold.filter((pl.col("ts").dt.hour() == 22) & (pl.col("ts").dt.minute() == 0))
    picks = [with_news["ts"][0], with_news["ts"][-1], after_break["ts"][0], gold["ts"][-1]]
    return [t.isoformat() for t in picks]


def _same_float32(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    x, y = float(a), float(b)  # type: ignore[arg-type]
    return abs(x - y) <= ULPS * float(np.spacing(np.float32(max(abs(x), abs(y))))) + 1e-6


def test_online_row_equals_the_gold_row_on_every_feature(home: Path) -> None:
    settings = _settings(home)
    features = feature_catalog(settings).names()
    for ts in _bars(home):
        gold = _show(home, ts)
        online = _show(home, ts, "--online")
        assert set(online) == {"instrument", "granularity", "ts", *features}
        assert online["ts"] == gold["ts"] == ts
        assert (online["instrument"], online["granularity"]) == (gold["instrument"], gold["granularity"])
        differing = [n for n in features if not _same_float32(online[n], gold[n])]
        assert not differing, (ts, [(n, online[n], gold[n]) for n in differing])


def test_a_bar_that_does_not_exist_is_a_clear_error(home: Path) -> None:
    last = _bars(home)[-1]
    later = (pl.Series([last]).str.to_datetime(time_zone="UTC")[0] + timedelta(days=30)).isoformat()
    result = CliRunner().invoke(
        app, ["--home", str(home), "features", "show", "--at", later, "--online", "--json"]
    )
    assert result.exit_code != 0
    assert "bronze.candles has no" in result.output
