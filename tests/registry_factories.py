"""Factories for registry tests: a small gold table, candidate directories in the training hand-off
format, and settings that share one MLflow store per test module (MLflow's first migration is slow).

Candidates are real ``spxcast.models`` LightGBM forecasters, small enough to fit in milliseconds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from spxcast.config import Settings
from spxcast.lake import Lake
from spxcast.lake.tables import UTC_TS

FEATURES = ("ret_log_w1", "ret_log_w2")
"""Two features of the running catalog (the registry checks every model it loads against it)."""
TARGET = "target_ret_30m_pct"
GOOD = (0.5, 0.0)
"""Coefficients of the data-generating process of :func:`write_gold` (the best linear model)."""
BAD = (-0.5, 0.3)


def save_candidate_model(
    directory: Path, coef: Sequence[float], gold: pl.DataFrame, settings: Settings, run_id: str = "test"
) -> Path:
    """A real LightGBM forecaster fitted to the synthetic label ``coef · (f1, f2)`` on ``gold``, saved with
    ``spxcast.models.io.save_model``: its predictions approximate that linear function, so coefficients
    order models by skill (``GOOD`` is the data-generating process of :func:`write_gold`)."""
    from spxcast.features.catalog import feature_catalog
    from spxcast.models.io import save_model
    from spxcast.models.lightgbm import LightGBMForecaster

    label = gold.with_columns(
        (coef[0] * pl.col(FEATURES[0]) + coef[1] * pl.col(FEATURES[1])).cast(pl.Float64).alias(TARGET)
    )
    model = LightGBMForecaster(
        FEATURES,
        TARGET,
        hyperparams={"num_leaves": 15, "min_data_in_leaf": 5, "learning_rate": 0.2},
        n_estimators=40,
        early_stopping_rounds=None,
        seed=42,
    ).fit(label, label)
    return save_model(
        model, directory, catalog=feature_catalog(settings), metadata={"run_id": run_id, "seed": 42}
    )


def shared_store_settings(settings: Settings, store: Path, **registry: Any) -> Settings:
    """``settings`` with a unique instrument (so a registered model of its own) on the shared MLflow store."""
    section = settings.registry.model_copy(
        update={
            "tracking_uri": f"sqlite:///{store / 'mlflow.db'}",
            "artifact_root": str(store / "artifacts"),
            **registry,
        }
    )
    return settings.model_copy(
        update={"instrument": f"TEST{uuid.uuid4().hex[:8].upper()}", "registry": section}
    )


def write_gold(settings: Settings, rows: int = 400, seed: int = 0) -> int:
    """A gold.features table whose target is 0.5 * f1 + noise (percent units); returns its lake version."""
    rng = np.random.default_rng(seed)
    f1, f2 = rng.normal(size=rows), rng.normal(size=rows)
    start = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "instrument": [settings.instrument] * rows,
            "granularity": [settings.granularity] * rows,
            "ts": pl.Series([start + timedelta(minutes=i) for i in range(rows)], dtype=UTC_TS),
            FEATURES[0]: pl.Series(f1, dtype=pl.Float32),
            FEATURES[1]: pl.Series(f2, dtype=pl.Float32),
            TARGET: GOOD[0] * f1.astype(np.float32) + 0.1 * rng.normal(size=rows),
            "label_ok": [True] * rows,
        }
    )
    return Lake.from_settings(settings).write("gold.features", frame)


def metrics(skill: bool, splits: Sequence[str] = ("valid", "test", "oot", "oot2")) -> dict[str, Any]:
    """``{predictor: {split: metrics}}`` as training writes it, for a model with (or without) skill over
    the zero forecast; ``"candidate"`` stands for the candidate's name."""
    model = (
        {"rmse": 0.10, "mae": 0.08, "r2_oos": 0.3, "dm_pvalue": 0.001}
        if skill
        else {"rmse": 0.125, "mae": 0.1, "r2_oos": -0.02, "dm_pvalue": 0.6}
    )
    by_predictor = {
        "candidate": {**model, "backtest": {"sharpe_net": 1.5 if skill else -0.3, "turnover": 2.0}},
        "zero": {"rmse": 0.12, "mae": 0.095, "r2_oos": 0.0, "dm_pvalue": None},
        "mean": {"rmse": 0.121, "mae": 0.096, "r2_oos": -0.01, "dm_pvalue": 0.7},
        "persistence": {"rmse": 0.17, "mae": 0.13, "r2_oos": -1.0, "dm_pvalue": 0.99},
    }
    return {
        predictor: {split: dict(values) for split in splits} for predictor, values in by_predictor.items()
    }


def write_run(
    settings: Settings,
    candidates: Mapping[str, tuple[Sequence[float], bool]],
    selected: str | None,
    run_id: str | None = None,
) -> tuple[str, Path]:
    """A pipeline run directory as the training tasks leave it; returns ``(run_id, run_dir)``.

    ``candidates`` maps a name to ``(coefficients, has_skill)``.
    """
    run_id = run_id or f"test-{uuid.uuid4().hex[:8]}"
    run_dir = settings.artifacts_dir() / "runs" / run_id
    lake = Lake.from_settings(settings)
    for name, (coef, skill) in candidates.items():
        directory = run_dir / "candidates" / name
        save_candidate_model(directory / "model", coef, lake.read("gold.features"), settings, run_id)
        models = {(name if k == "candidate" else k): v for k, v in metrics(skill).items()}
        evaluation = {
            "candidate": name,
            "baselines": ["zero", "mean", "persistence"],
            "model_dir": "model",
            "report": "report/index.html",
            "cost_bps": 1.0,
            "tuning": {"best_params": {"alpha": 1.0, "depth": 3}},
            "models": models,
        }
        (directory / "evaluation.json").write_text(json.dumps(evaluation))
        (directory / "report").mkdir()
        (directory / "report" / "index.html").write_text(f"<html><body>{name} report</body></html>")
        (directory / "report" / "pnl.png").write_bytes(b"\x89PNG")
    selection = {
        "selected": selected,
        "candidates": {name: {"valid_rmse": 0.1} for name in candidates},
        "reasons": {}
        if selected
        else {name: "does not beat the zero forecast on validation" for name in candidates},
        "split_boundaries": {"train": ["2024-03-04T14:30:00+00:00", "2024-03-04T18:00:00+00:00"]},
        "lake_versions": {"gold.features": lake.version("gold.features")},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "selection.json").write_text(json.dumps(selection))
    return run_id, run_dir
