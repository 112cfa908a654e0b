"""Backtest equals live: every live prediction against the batch prediction of the same model on the same
gold row, and every realised return against the gold label.

Reads the prediction log (rows of the live loop: ids from :func:`.position.prediction_id`) for bars in
``[start, end)`` and ``gold.features``; loads each version the log names through the serving loader, and
predicts the gold rows of those bars in one batch. Every gold bar must be predicted live by some version or
recorded as not predicted (no model loaded) by the loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, select

from spxcast.config import Settings
from spxcast.db.models import PredictionRecord
from spxcast.features.labels import label_names
from spxcast.lake import Lake
from spxcast.lake.tables import GOLD_FEATURES
from spxcast.serving.features import FeatureSource
from spxcast.serving.live import position
from spxcast.serving.loading import REPLAY_RTOL, VersionLoader
from spxcast.timeutil import bar_length


@dataclass
class VersionParity:
    """The comparison for one model version (predictions in percent)."""

    version: int
    predictions: int
    equal: int
    max_abs_diff: float
    missing_bars: int
    """Gold bars in the range this version never predicted live (a version deployed mid-range misses the
    bars before; :attr:`ParityReport.unaccounted_bars` is what must be zero)."""
    first_difference: str | None = None


@dataclass
class ParityReport:
    """Backtest-equals-live over ``[start, end)``: predictions per version and realised returns."""

    start: datetime
    end: datetime
    gold_bars: int
    versions: list[VersionParity] = field(default_factory=list)
    realised: int = 0
    realised_equal: int = 0
    realised_pending: int = 0
    """Logged predictions whose gold label the loop had seen (horizon passed within the range) but no
    realised return was attached."""
    first_realised_difference: str | None = None
    unpredicted_recorded: int = 0
    """Gold bars no version predicted live that the loop recorded as not predicted, with a reason
    (:func:`.position.unpredicted`: no model was loaded)."""
    unaccounted_bars: int = 0
    """Gold bars no version predicted live and no record explains: each one is a defect."""

    @property
    def ok(self) -> bool:
        return (
            bool(self.versions)
            and all(v.predictions == v.equal for v in self.versions)
            and self.unaccounted_bars == 0
            and self.realised == self.realised_equal
            and self.realised_pending == 0
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify_live(settings: Settings, engine: Engine, start: datetime, end: datetime) -> ParityReport:
    """Compare the live log of ``settings``' series in ``[start, end)`` with batch predictions and labels."""
    lake = Lake.from_settings(settings)
    gold = (
        lake.series(GOLD_FEATURES.name, settings.instrument, settings.granularity)
        .filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        .collect()
    )
    query = select(
        PredictionRecord.bar_ts,
        PredictionRecord.model_version,
        PredictionRecord.predicted_pct,
        PredictionRecord.realised_pct,
    ).where(
        PredictionRecord.instrument == settings.instrument,
        PredictionRecord.granularity == settings.granularity,
        PredictionRecord.bar_ts >= start,
        PredictionRecord.bar_ts < end,
    )
    with engine.connect() as connection:
        logged = connection.execute(query).all()
    live = pl.DataFrame(
        {
            "ts": [None if r[0] is None else _utc(r[0]) for r in logged],
            "version": [int(r[1]) for r in logged],
            "live": [float(r[2]) for r in logged],
            "realised": [r[3] for r in logged],
        },
        schema={
            "ts": pl.Datetime("us", "UTC"),
            "version": pl.Int64,
            "live": pl.Float64,
            "realised": pl.Float64,
        },
    )
    report = ParityReport(start, end, gold.height)
    source = FeatureSource(settings, lake)
    source.refresh()
    loader = VersionLoader(settings, source)
    for version in sorted(live["version"].unique().to_list()):
        model = loader.load(version)
        mine = live.filter(pl.col("version") == version).join(gold, on="ts", how="left")
        x = mine.select(pl.col(list(model.features)).cast(pl.Float32)).to_numpy()
        batch = model.model.predict_matrix(x)
        observed = mine["live"].to_numpy()
        same = np.isclose(observed, batch, rtol=REPLAY_RTOL, atol=0.0)
        differ = np.flatnonzero(~same)
        report.versions.append(
            VersionParity(
                version=version,
                predictions=len(observed),
                equal=int(same.sum()),
                max_abs_diff=float(np.max(np.abs(observed - batch), initial=0.0)),
                missing_bars=gold.height - gold.join(mine.select("ts"), on="ts", how="semi").height,
                first_difference=None
                if not len(differ)
                else f"{mine['ts'][int(differ[0])].isoformat()}: live {observed[differ[0]]!r}, "
                f"batch {batch[differ[0]]!r}",
            )
        )
    bar = bar_length(settings.granularity)
    unpredicted = gold.select("ts").join(live.select("ts"), on="ts", how="anti")
    recorded = pl.lit(False)
    for episode in position.unpredicted(engine, settings.instrument, settings.granularity):
        closes = pl.col("ts") + bar
        recorded = recorded | closes.is_between(_utc(episode.raised_at), _utc(episode.last_seen))
    report.unpredicted_recorded = unpredicted.filter(recorded).height
    report.unaccounted_bars = unpredicted.height - report.unpredicted_recorded
    ret, _ = label_names(settings.horizon_minutes, settings.horizon_bars)
    labelled = live.join(gold.select("ts", pl.col(ret).alias("label")), on="ts", how="left")
    attached = labelled.filter(pl.col("realised").is_not_null())
    equal = attached.filter(pl.col("realised") == pl.col("label"))
    report.realised = attached.height
    report.realised_equal = equal.height
    # a bar's label is known to the loop once the bar at its horizon (+ tolerance) was replayed
    known_by = (
        end - bar - timedelta(minutes=settings.horizon_minutes + settings.features.label_tolerance_minutes)
    )
    report.realised_pending = labelled.filter(
        pl.col("realised").is_null() & pl.col("label").is_not_null() & (pl.col("ts") <= known_by)
    ).height
    if equal.height < attached.height:
        first = attached.filter(pl.col("realised") != pl.col("label").fill_null(np.nan)).row(0, named=True)
        report.first_realised_difference = (
            f"{first['ts'].isoformat()}: realised {first['realised']!r}, label {first['label']!r}"
        )
    return report


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
