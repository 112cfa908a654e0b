"""Selection on validation: oracle-level skill is found, no skill is never selected, labels cannot leak."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from spxcast.models.selection import select_candidate
from spxcast.models.train import CANDIDATES, CandidateRun, labelled_frame, train_candidate
from training_factories import TARGET, gold_frame, spec


def _valid(rmse: float, pvalue: float | None) -> dict[str, dict[str, float | None]]:
    return {"valid": {"rmse": rmse, "dm_pvalue": pvalue}}


def test_selection_rule_and_reasons() -> None:
    zero = _valid(1.0, None)
    evaluations = {
        "lightgbm": {"lightgbm": _valid(0.95, 0.01), "zero": zero},
        "xgboost": {"xgboost": _valid(0.97, 0.001), "zero": zero},
        "ar": {"ar": _valid(0.99, 0.20), "zero": zero},
    }
    selection = select_candidate(evaluations, dm_pvalue=0.05)
    assert selection.selected == "lightgbm"
    assert selection.eligible == ["lightgbm", "xgboost"]
    assert selection.reasons["xgboost"].startswith("eligible but lost")
    assert "not significantly" in selection.reasons["ar"]
    assert select_candidate(evaluations, dm_pvalue=None).eligible == ["lightgbm", "xgboost", "ar"]
    worse = {"ar": {"ar": _valid(1.01, 0.9), "zero": zero}}
    nobody = select_candidate(worse, dm_pvalue=None)
    assert nobody.selected is None
    assert "not below the zero forecast" in nobody.reasons["ar"]


def _train_all(gold: pl.DataFrame, **changes: object) -> dict[str, CandidateRun]:
    return {name: train_candidate(gold, spec(name, **changes)) for name in CANDIDATES}  # type: ignore[arg-type]


def test_no_signal_random_walk_selects_nothing() -> None:
    gold, _ = gold_frame(24_000, signal="none", seed=21)
    runs = _train_all(gold)
    for name, run in runs.items():
        for split in ("valid", "test"):
            pvalue = run.evaluation[name][split]["dm_pvalue"]
            assert pvalue is None or pvalue > 0.05, (name, split, pvalue)
    selection = select_candidate({n: r.evaluation for n, r in runs.items()}, dm_pvalue=0.05)
    assert selection.selected is None
    assert all(reason.startswith("not eligible") for reason in selection.reasons.values())


def test_oracle_selected_model_is_within_two_percent_of_the_oracle_on_oot() -> None:
    gold, oracle = gold_frame(40_000, signal="planted", seed=3)
    runs = _train_all(gold.with_columns(pl.Series("oracle_ret_pct", oracle)))
    selection = select_candidate({n: r.evaluation for n, r in runs.items()}, dm_pvalue=0.05)
    assert selection.selected in {"lightgbm", "xgboost"}
    chosen = runs[selection.selected]
    frame = chosen.boundaries.select(
        labelled_frame(gold.with_columns(pl.Series("oracle_ret_pct", oracle)), spec(selection.selected)),
        "oot",
    )
    oracle_rmse = float(
        np.sqrt(np.mean((frame[TARGET].to_numpy() - frame["oracle_ret_pct"].to_numpy()) ** 2))
    )
    model_rmse = chosen.evaluation[selection.selected]["oot"]["rmse"]
    zero_rmse = chosen.evaluation["zero"]["oot"]["rmse"]
    assert oracle_rmse < 0.95 * zero_rmse  # the planted signal is material
    assert model_rmse <= 1.02 * oracle_rmse


@pytest.mark.parametrize("model", ["lightgbm", "xgboost"])
def test_labels_shuffled_within_train_leave_no_skill_on_test(model: str) -> None:
    gold, _ = gold_frame(30_000, signal="planted", seed=8)
    honest = train_candidate(gold, spec(model))
    train_end = honest.boundaries.range("train").end
    rng = np.random.default_rng(0)
    in_train = (gold["ts"] <= train_end).to_numpy()
    shuffled_target = gold[TARGET].to_numpy().copy()
    shuffled_target[in_train] = rng.permutation(shuffled_target[in_train])
    shuffled = gold.with_columns(
        pl.Series(TARGET, shuffled_target, nan_to_null=True),
        pl.Series("label_ok", ~np.isnan(shuffled_target)),
    )
    leaky = train_candidate(shuffled, spec(model))
    honest_r2 = honest.evaluation[model]["test"]["r2_oos"]
    leaky_test = leaky.evaluation[model]["test"]
    assert honest_r2 > 0.05  # control: the signal is learnable
    # Without leakage the shuffled model has no skill: R²_OOS <= 0 up to chance. Shuffling keeps the labels'
    # mean, the one thing a leak-free model can still learn, so where the training mean happens to help on
    # test, the model may match the mean forecast but not beat it unless insignificantly (DM p > 0.05).
    mean_r2 = leaky.evaluation["mean"]["test"]["r2_oos"]
    assert leaky_test["r2_oos"] <= max(0.0, mean_r2) or leaky_test["dm_pvalue"] > 0.05
    assert leaky_test["r2_oos"] < 0.1 * honest_r2
