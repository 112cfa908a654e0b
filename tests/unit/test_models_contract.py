"""One contract test over every forecaster: fit/predict/save/load, refusals, parameters."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from spxcast.errors import ModelError
from spxcast.features import lags
from spxcast.features.catalog import Catalog, FeatureContext, FeatureSpec
from spxcast.models.io import MODEL_CLASSES, load_model, model_class, save_model
from training_factories import HORIZON, TARGET, feature_names, gold_frame

FEATURES = feature_names(4)
LAGS = [lags.lag_name(HORIZON, k) for k in (1, 2, 3)]


def _catalog(horizon_lags: int = 6, changed: str | None = None) -> Catalog:
    """The factory features (as frame-built "news" specs) and the horizon lags; ``changed`` gets another
    description, as a catalog edited after the model was trained."""
    specs = [FeatureSpec(name, "news", f"factory feature {name}", "z-score", 1) for name in FEATURES]
    specs += lags.specs(FeatureContext(horizon_minutes=HORIZON, horizon_lags=horizon_lags))
    return Catalog(
        dataclasses.replace(s, description=s.description + " (v2)") if s.name == changed else s for s in specs
    )


CATALOG = _catalog()


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
    labelled = gold.filter(pl.col("label_ok"))
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
    save_model(model, tmp_path / "m", catalog=CATALOG, metadata={"seed": 1})
    loaded = load_model(tmp_path / "m", catalog=CATALOG, expected_features=model.feature_names)
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
    model = _make(kind).fit(train, valid)
    save_model(model, tmp_path / "m", catalog=CATALOG)
    assert load_model(tmp_path / "m", catalog=_catalog()).feature_names == model.feature_names
    with pytest.raises(ModelError, match="features"):
        load_model(tmp_path / "m", catalog=CATALOG, expected_features=["other"])
    # Trained under another catalog: the message names exactly the features that differ.
    with pytest.raises(ModelError, match="another feature catalog") as changed:
        load_model(tmp_path / "m", catalog=_catalog(changed="f0"))
    assert "f0: description changed" in str(changed.value)
    assert "f1" not in str(changed.value)
    if kind == "ar":
        with pytest.raises(ModelError, match="another feature catalog") as fewer:
            load_model(tmp_path / "m", catalog=_catalog(horizon_lags=1))
        assert f"{LAGS[1]}: not in the running catalog" in str(fewer.value)
        assert f"{LAGS[2]}: not in the running catalog" in str(fewer.value)
        assert f"{LAGS[0]}:" not in str(fewer.value)
    else:  # the boosting model reads no lag: a shorter lag set does not concern it
        load_model(tmp_path / "m", catalog=_catalog(horizon_lags=1))
    with pytest.raises(ModelError, match="not a saved model"):
        load_model(tmp_path, catalog=CATALOG)


def test_a_model_saved_without_a_catalog_cannot_be_checked(frames, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train, valid, _ = frames
    save_model(_make("lightgbm").fit(train, valid), tmp_path / "m", catalog=None)
    with pytest.raises(ModelError, match="records no feature definitions"):
        load_model(tmp_path / "m", catalog=CATALOG)
    with pytest.raises(ModelError, match="does not declare"):
        save_model(_make("lightgbm").fit(train, valid), tmp_path / "n", catalog=_catalog().select(LAGS))


def test_ar_chooses_its_order_on_validation_and_lags_are_point_in_time(frames) -> None:  # type: ignore[no-untyped-def]
    train, valid, _ = frames
    model = _make("ar").fit(train, valid)
    assert set(model.validation_rmse_by_order_) == {1, 2, 3}
    assert model.validation_rmse_by_order_[model.order_] == min(model.validation_rmse_by_order_.values())
    gold, _ = gold_frame(300, n_features=1, halt_every=None)
    lagged = gold  # the factory's gold holds the horizon lags, as gold.features does
    row = lagged.row(100, named=True)
    earlier = gold.filter(pl.col("ts") == row["ts"] - pl.duration(minutes=HORIZON))[TARGET][0]
    assert row[lags.lag_name(HORIZON, 1)] == pytest.approx(earlier, rel=1e-6)
    assert lagged[lags.lag_name(HORIZON, 2)][: 2 * HORIZON].null_count() == 2 * HORIZON
