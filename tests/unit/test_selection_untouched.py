"""Selection runs on validation rows that neither Optuna nor early stopping saw.

Regression: Optuna's objective, early stopping and selection's test against the zero forecast all used the
same validation rows, so a LightGBM model tuned to pure noise could be selected (with these seeds the old
layout selected it for seed 9).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from spxcast.models import train as train_module
from spxcast.models.selection import select_candidate
from spxcast.models.train import train_candidate
from spxcast.models.tuning import TuningConfig
from training_factories import HORIZON, gold_frame, spec


def test_tuning_and_early_stopping_never_see_the_selection_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    gold, _ = gold_frame(3000, n_features=4, signal="none", seed=1)
    seen: dict[str, Any] = {}
    real = train_module.tune_two_stage

    def spy(model: Any, x: Any, y: Any, x_valid: Any, y_valid: Any, config: Any) -> Any:
        seen["y_valid"] = y_valid
        return real(model, x, y, x_valid, y_valid, config)

    monkeypatch.setattr(train_module, "tune_two_stage", spy)
    tuning = TuningConfig(trials_coarse=2, trials_fine=0, max_rounds=50, early_stopping_rounds=5, seed=1)
    run = train_candidate(gold, spec("lightgbm", n_features=4, oot2_rows=0, tuning=tuning))
    splits = {r.name: r for r in run.boundaries.ranges}
    assert list(splits) == ["train", "tune", "valid", "test", "oot"]
    assert splits["tune"].end + timedelta(minutes=HORIZON) < splits["valid"].start, "purged between them"
    assert splits["train"].end + timedelta(minutes=HORIZON) < splits["tune"].start
    tune_rows = run.boundaries.select(gold.filter("label_ok"), "tune")
    assert np.array_equal(seen["y_valid"], tune_rows[spec("lightgbm").target].to_numpy())  # type: ignore[attr-defined]
    valid = run.predictions.filter(split="valid")
    assert valid["ts"].min() == splits["valid"].start
    assert not set(valid["ts"].to_list()) & set(tune_rows["ts"].to_list())


def test_a_model_tuned_to_noise_is_never_selected() -> None:
    """Ten random walks, LightGBM tuned hard (25 + 25 trials) on each: none is selected."""
    selected = []
    for seed in range(10):
        gold, _ = gold_frame(2000, n_features=8, signal="none", seed=seed)
        tuning = TuningConfig(
            trials_coarse=25, trials_fine=25, max_rounds=300, early_stopping_rounds=20, seed=seed
        )
        run = train_candidate(gold, spec("lightgbm", oot2_rows=0, tuning=tuning))
        selection = select_candidate({"lightgbm": run.evaluation}, dm_pvalue=0.05)
        if selection.selected is not None:
            selected.append((seed, selection.reasons["lightgbm"]))
    assert selected == []
