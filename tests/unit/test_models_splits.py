"""Chronological splits: OOT2 is the latest rows, and the purge gap keeps label windows apart."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from spxcast.errors import DataQualityError, ModelError
from spxcast.models.splits import SplitBoundaries, make_splits, purge_gap
from training_factories import HORIZON, TARGET, gold_frame


def _labelled_ts() -> pl.Series:
    gold, _ = gold_frame(12_000, n_features=3, halt_every=700)
    return gold.filter(pl.col("label_ok"))["ts"]


def test_no_training_label_window_reaches_a_later_split() -> None:
    ts = _labelled_ts()
    boundaries = make_splits(ts, (0.6, 0.15, 0.15, 0.1), oot2_rows=1500, horizon_minutes=HORIZON)
    frame = pl.DataFrame({"ts": ts})
    parts = {name: boundaries.select(frame, name)["ts"] for name in boundaries.names}
    assert boundaries.names == ["train", "valid", "test", "oot", "oot2"]
    for i, earlier in enumerate(boundaries.names):
        window_ends = parts[earlier] + timedelta(minutes=HORIZON)
        for later in boundaries.names[i + 1 :]:
            assert window_ends.max() < parts[later].min(), (earlier, later)
    assert purge_gap(boundaries) > timedelta(minutes=HORIZON)
    assert sum(r.purged_rows for r in boundaries.ranges) > 0
    assert sum(r.rows + r.purged_rows for r in boundaries.ranges) == len(ts)


def test_oot2_is_exactly_the_most_recent_rows_and_fractions_split_the_rest() -> None:
    ts = _labelled_ts()
    boundaries = make_splits(ts, (0.6, 0.15, 0.15, 0.1), oot2_rows=1500, horizon_minutes=HORIZON)
    oot2 = boundaries.range("oot2")
    assert oot2.rows == 1500
    assert oot2.purged_rows == 0
    assert oot2.end == ts[-1]
    assert oot2.start == ts[len(ts) - 1500]
    rest = len(ts) - 1500
    train = boundaries.range("train")
    assert train.rows + train.purged_rows == round(0.6 * rest)
    assert boundaries.range("valid").start == ts[round(0.6 * rest)]


def test_purge_includes_the_label_tolerance() -> None:
    ts = _labelled_ts()
    boundaries = make_splits(ts, (0.6, 0.15, 0.15, 0.1), 1000, HORIZON, label_tolerance_minutes=5)
    assert boundaries.purge_minutes == HORIZON + 5
    assert purge_gap(boundaries) > timedelta(minutes=HORIZON + 5)


def test_boundaries_round_trip_through_json_form() -> None:
    boundaries = make_splits(_labelled_ts(), (0.6, 0.15, 0.15, 0.1), 1000, HORIZON)
    again = SplitBoundaries.from_dict(boundaries.to_dict())
    assert again == boundaries


def test_no_oot2_when_zero_rows_requested() -> None:
    boundaries = make_splits(_labelled_ts(), (0.6, 0.15, 0.15, 0.1), 0, HORIZON)
    assert boundaries.names == ["train", "valid", "test", "oot"]


def test_too_little_data_and_bad_inputs_are_refused() -> None:
    ts = _labelled_ts()
    with pytest.raises(DataQualityError, match="too few labelled rows"):
        make_splits(ts[:100], (0.6, 0.15, 0.15, 0.1), 80, HORIZON)
    with pytest.raises(ModelError, match="fractions"):
        make_splits(ts, (0.5, 0.1, 0.1, 0.1), 100, HORIZON)
    with pytest.raises(ModelError, match="strictly increasing"):
        make_splits(ts.reverse(), (0.6, 0.15, 0.15, 0.1), 100, HORIZON)
    with pytest.raises(DataQualityError, match="empty after purging"):
        make_splits(ts[:200], (0.94, 0.02, 0.02, 0.02), 10, HORIZON)


def test_splits_hold_only_labelled_rows_of_the_factory() -> None:
    gold, _ = gold_frame(5000, n_features=2)
    labelled = gold.filter(pl.col("label_ok"))
    assert labelled[TARGET].null_count() == 0
    assert np.isfinite(labelled[TARGET].to_numpy()).all()


def test_the_tune_split_takes_the_first_part_of_validation_with_a_purge_gap() -> None:
    ts = _labelled_ts()
    plain = make_splits(ts, (0.6, 0.15, 0.15, 0.1), 1500, HORIZON)
    split = make_splits(ts, (0.6, 0.15, 0.15, 0.1), 1500, HORIZON, tune_share=0.5)
    assert split.names == ["train", "tune", "valid", "test", "oot", "oot2"]
    tune, valid = split.range("tune"), split.range("valid")
    assert tune.start == plain.range("valid").start and valid.end == plain.range("valid").end
    assert tune.end + timedelta(minutes=HORIZON) < valid.start
    total = plain.range("valid").rows + plain.range("valid").purged_rows
    assert tune.rows + tune.purged_rows + valid.rows + valid.purged_rows == total
    assert abs((tune.rows + tune.purged_rows) - total / 2) <= 1
    assert SplitBoundaries.from_dict(split.to_dict()) == split
    with pytest.raises(ModelError, match="tune_share"):
        make_splits(ts, (0.6, 0.15, 0.15, 0.1), 1500, HORIZON, tune_share=1.0)


def test_oot2_defaults_to_a_share_of_the_rows_at_any_bar_size() -> None:
    """Regression: OOT2 was a fixed 10,000 rows, more than a daily series holds."""
    from datetime import UTC, datetime

    from spxcast.config import load_settings
    from spxcast.models.train import TrainingSpec, split_rows

    settings = load_settings(granularity="D", horizon_bars=1)
    spec = TrainingSpec.from_settings(settings, "ar", ["f0"])
    days = [datetime(2015, 1, 5, tzinfo=UTC) + timedelta(days=i) for i in range(3500)]
    weekdays = [d for d in days if d.weekday() < 5]
    frame = pl.DataFrame(
        {
            "instrument": "SPX500_USD",
            "granularity": "D",
            "ts": pl.Series(weekdays, dtype=pl.Datetime("us", "UTC")),
        }
    )
    boundaries = split_rows(frame, spec)
    oot2 = boundaries.range("oot2")
    assert oot2.rows == round(len(weekdays) * settings.training.oot2_fraction) == 75
    assert oot2.end == frame["ts"][-1]
    assert boundaries.purge_bars == 1
    assert all(r.purged_rows == 1 for r in boundaries.ranges[:-1]), "one bar purged (Friday's reaches Monday)"
