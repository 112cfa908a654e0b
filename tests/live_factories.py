"""A home for the live-loop tests: a synthetic week of M1 bars with synthetic news, gold built by the
batch path, and one registered LightGBM version (trained on the first days) reading market features,
news signals and horizon lags. The last trading day is what the tests replay.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from spxcast.config import QualitySettings, Settings, load_settings
from spxcast.ingest.market import append_bars
from spxcast.lake import Lake

START, END = "2024-01-08", "2024-01-13"  # Monday to Saturday: five trading days
REPLAY_HOURS = 6


def store_flat_bars(
    lake: Lake,
    start: datetime,
    count: int,
    *,
    now: datetime | None = None,
    source: str = "test",
    volume: int = 5,
    instrument: str = "SPX500_USD",
    granularity: str = "M1",
) -> None:
    """``count`` identical one-minute bars from ``start`` appended to bronze (``now``: the newest bar's start
    unless given), the way a source would."""
    ts = [start + timedelta(minutes=i) for i in range(count)]
    raw = pl.DataFrame(
        {
            "ts": [t.isoformat() for t in ts],
            "open": ["4700"] * count,
            "high": ["4702"] * count,
            "low": ["4699"] * count,
            "close": ["4701"] * count,
            "volume": [volume] * count,
        }
    )
    append_bars(
        lake,
        raw,
        instrument=instrument,
        granularity=granularity,
        source=source,
        now=ts[-1] if now is None else now,
        quality=QualitySettings(),
    )


@dataclass(frozen=True)
class LiveHome:
    settings: Settings
    gold: pl.DataFrame
    version: int
    features: tuple[str, ...]
    replay_start: datetime
    replay_end: datetime

    def app_settings(self, tmp: Path, **overrides: Any) -> Settings:
        """The home's settings with a fresh app database and spool under ``tmp``."""
        serving = self.settings.serving.model_copy(update={"spool_path": str(tmp / "spool.ndjson")})
        db = self.settings.db.model_copy(update={"url": f"sqlite:///{tmp / 'app.db'}"})
        return self.settings.model_copy(update={"serving": serving, "db": db, **overrides})


def _pick_features(catalog: Any) -> tuple[list[str], list[str]]:
    from spxcast.features.catalog import LAGS_GROUP, NEWS_GROUP

    market = [s.name for s in catalog if s.group not in (NEWS_GROUP, LAGS_GROUP) and s.lookback <= 60][:10]
    news = [s.name for s in catalog if s.group == NEWS_GROUP][:4]
    lags = [s.name for s in catalog if s.group == LAGS_GROUP]  # all: the longest reads 3.5 h of bars
    return market + lags + news, news


def gold_home(root: Path, start: str = START, end: str = END, **overrides: Any) -> Settings:
    """A home with synthetic bars and news in ``[start, end)`` and gold built by the batch path."""
    from spxcast.ingest.market import ingest_market
    from spxcast.ingest.news import ingest_news
    from spxcast.pipeline.tasks.features import build_features

    settings = load_settings(home=root / "home", **{"market.start": start, "market.end": end, **overrides})
    lake = Lake.from_settings(settings)
    ingest_market(settings, lake, source="synthetic", start=start, end=end)
    ingest_news(settings, lake)
    build_features(settings, "test-features")
    return settings


def build_live_home(root: Path) -> LiveHome:
    from spxcast.features.catalog import feature_catalog
    from spxcast.lake.tables import GOLD_FEATURES
    from spxcast.models.train import TrainingSpec, train_candidate
    from spxcast.pipeline.tasks.training import write_candidate
    from spxcast.registry import register_run

    settings = gold_home(
        root,
        **{
            "serving.feature_refresh_s": 3600.0,
            "live.feature_store": "none",
            "training.trials_coarse": 2,
            "training.trials_fine": 2,
            "training.max_rounds": 60,
        },
    )
    lake = Lake.from_settings(settings)
    gold = lake.series(GOLD_FEATURES.name, settings.instrument, settings.granularity).collect()
    names, news = _pick_features(feature_catalog(settings))
    replay_end = gold["ts"][-1] + (gold["ts"][-1] - gold["ts"][-2])
    last_day = gold.filter(pl.col("ts").dt.date() == gold["ts"][-1].date())
    replay_start = last_day["ts"][max(0, last_day.height - REPLAY_HOURS * 60)]
    training = TrainingSpec.from_settings(settings, "lightgbm", names, news)
    run = train_candidate(gold.filter(pl.col("ts") < replay_start), training)
    run_id = f"live-{uuid.uuid4().hex[:6]}"
    run_dir = settings.artifacts_dir() / "runs" / run_id
    lineage = {
        "run_id": run_id,
        "instrument": settings.instrument,
        "granularity": settings.granularity,
        "lake_versions": {GOLD_FEATURES.name: lake.version(GOLD_FEATURES.name)},
        "seed": settings.seed,
    }
    catalog = feature_catalog(settings)
    families = sorted({catalog.get(n).group for n in names})
    write_candidate(run_dir / "candidates" / "lightgbm", run, training, lineage, catalog, families)
    selection = {
        "selected": "lightgbm",
        "candidates": {"lightgbm": {}},
        "reasons": {},
        "split_boundaries": run.boundaries.to_dict(),
        "lake_versions": lineage["lake_versions"],
    }
    (run_dir / "selection.json").write_text(json.dumps(selection, default=str))
    result = register_run(settings, run_dir, run_id, actor="tests")
    assert result.version is not None, result.message
    from spxcast.registry import ModelRegistry

    ModelRegistry(settings).promote(result.version, force=True, reason="live tests", actor="tests")
    return LiveHome(settings, gold, result.version, tuple(names), replay_start, replay_end)
