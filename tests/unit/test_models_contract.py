"""One contract test over every forecaster: fit/predict/save/load, refusals, parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from spxcast.models.lags import add_horizon_lags, lag_column

from spxcast.errors import ModelError
from spxcast.models.io import MODEL_CLASSES, load_model, model_class, save_model
from training_factories import HORIZON, TARGET, feature_names, gold_frame

FEATURES = feature_names(4)
LAGS = [lag_column(HORIZON, k) for k in (1, 2, 3)]


def _make(kind: str):  # type: ignore[no-untyped-def]
    cls = model_class(kind)
    if kind in {"zero", "mean"}:
        return cls(TARGET)
    if kind == "persistence":
        return cls(LAGS[:1], TARGET)
    if kind == "ar":
        return cls(LAGS, TARGET, exogenous=FEATURES[:1])
    return cls(FEATURES, TARGET, n_estimators=40, early_stopping_rounds=10)


@pytest.fixture(scope="module")
def frames() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    gold, _ = gold_frame(4000, n_features=4, signal="planted", seed=5)
    labelled = add_horizon_lags(gold, TARGET, HORIZON, 3).filter(pl.col("label_ok"))
    return labelled[:2500], labelled[2600:3200], labelled[3300:]


@pytest.mark.parametrize("kind", sorted(MODEL_CLASSES))
def test_fit_predict_save_load_round_trip(kind: str, frames, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train, valid, test = frames
    model = _make(kind)
    before = set(vars(model))
    assert model.fit(train, valid) is model
    learned = set(vars(model)) - before
    assert learned
    assert all(name.endswith("_") for name in learned)
    predictions = model.predict(test)
    assert predictions.dtype == np.float64
    assert predictions.shape == (test.height,)
    assert np.isfinite(predictions).all()
    save_model(model, tmp_path / "m", catalog_hash="abc", metadata={"seed": 1})
    loaded = load_model(tmp_path / "m", expected_features=model.feature_names, expected_catalog_hash="abc")
    np.testing.assert_array_equal(loaded.predict(test), predictions)
    assert loaded.params == model.params
    assert loaded.metadata_["seed"] == 1
    assert loaded.metadata_["library_versions"]["numpy"]
    assert type(model)(**model.params).params == model.params


@pytest.mark.parametrize("kind", sorted(MODEL_CLASSES))
def test_unfitted_use_is_refused(kind: str, frames, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = _make(kind)
    with pytest.raises(ModelError, match="not fitted"):
        model.predict(frames[2])
    with pytest.raises(ModelError, match="not fitted"):
        model.save(tmp_path / "m")


@pytest.mark.parametrize("kind", sorted(MODEL_CLASSES))
def test_missing_or_non_numeric_columns_are_refused(kind: str, frames) -> None:  # type: ignore[no-untyped-def]
    train, valid, test = frames
    model = _make(kind).fit(train, valid)
    if not model.feature_names:
        with pytest.raises(ModelError, match="target"):
            _make(kind).fit(train.drop(TARGET), valid)
        return
    first = model.feature_names[0]
    with pytest.raises(ModelError, match="lacks feature columns"):
        model.predict(test.drop(first))
    with pytest.raises(ModelError, match="non-numeric"):
        model.predict(test.with_columns(pl.lit("x").alias(first)))
    with pytest.raises(ModelError, match="non-finite targets"):
        _make(kind).fit(train.with_columns(pl.lit(None, dtype=pl.Float64).alias(TARGET)), valid)


@pytest.mark.parametrize("kind", ["lightgbm", "ar"])
def test_load_refuses_a_different_feature_set_or_catalog(kind: str, frames, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train, valid, _ = frames
    save_model(_make(kind).fit(train, valid), tmp_path / "m", catalog_hash="abc")
    with pytest.raises(ModelError, match="features"):
        load_model(tmp_path / "m", expected_features=["other"])
    with pytest.raises(ModelError, match="catalog"):
        load_model(tmp_path / "m", expected_catalog_hash="def")
    with pytest.raises(ModelError, match="not a saved model"):
        load_model(tmp_path)


def test_ar_chooses_its_order_on_validation_and_lags_are_point_in_time(frames) -> None:  # type: ignore[no-untyped-def]
    train, valid, _ = frames
    model = _make("ar").fit(train, valid)
    assert set(model.validation_rmse_by_order_) == {1, 2, 3}
    assert model.validation_rmse_by_order_[model.order_] == min(model.validation_rmse_by_order_.values())
    gold, _ = gold_frame(300, n_features=1, halt_every=None)
    lagged = add_horizon_lags(gold, TARGET, HORIZON, 2)
    row = lagged.row(100, named=True)
    earlier = gold.filter(pl.col("ts") == row["ts"] - pl.duration(minutes=HORIZON))[TARGET][0]
    assert row[lag_column(HORIZON, 1)] == pytest.approx(earlier, rel=1e-6)
    assert lagged[lag_column(HORIZON, 2)][: 2 * HORIZON].null_count() == 2 * HORIZON
