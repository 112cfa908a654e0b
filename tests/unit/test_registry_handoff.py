"""Reading the training hand-off (candidate directories, evaluation.json, selection.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spxcast.errors import RegistryError
from spxcast.registry.handoff import candidate_names, normalise_metrics, read_candidate, read_selection


def test_metrics_are_transposed_flattened_and_the_candidate_becomes_model() -> None:
    models = {
        "xgboost": {
            "test": {
                "rmse": 0.1,
                "dm_pvalue": 0.01,
                "rows": 5,
                "note": "x",
                "bad": None,
                "backtest": {"sharpe_net": 1.2, "max_drawdown": -0.3},
            }
        },
        "zero": {"test": {"rmse": 0.12, "dm_pvalue": float("nan")}},
    }
    assert normalise_metrics("xgboost", models, "src") == {
        "test": {
            "model": {
                "rmse": 0.1,
                "dm_pvalue": 0.01,
                "rows": 5.0,
                "backtest_sharpe_net": 1.2,
                "backtest_max_drawdown": -0.3,
            },
            "zero": {"rmse": 0.12},
        }
    }


def test_metrics_without_the_candidate_are_refused() -> None:
    with pytest.raises(RegistryError, match="including the candidate 'ar', got \\['zero'\\]"):
        normalise_metrics("ar", {"zero": {"test": {"rmse": 0.1}}}, "evaluation.json")
    with pytest.raises(RegistryError, match="expected 'models'"):
        normalise_metrics("ar", None, "evaluation.json")


def _candidate(root: Path, name: str, **evaluation: object) -> Path:
    directory = root / "candidates" / name
    (directory / "model").mkdir(parents=True)
    (directory / "model" / "model.json").write_text(json.dumps({"kind": name, "params": {"lags": 3}}))
    document = {
        "candidate": name,
        "model_dir": "model",
        "models": {name: {"oot": {"rmse": 0.2}}},
        **evaluation,
    }
    (directory / "evaluation.json").write_text(json.dumps(document))
    return directory


def test_candidate_directory_with_model_report_and_params(tmp_path: Path) -> None:
    directory = _candidate(tmp_path, "ar", report="report/index.html", cost_bps=2.0, tuning=None, unrelated=1)
    (directory / "report").mkdir()
    (directory / "report" / "index.html").write_text("<html/>")
    candidate = read_candidate(tmp_path, "ar")
    assert candidate.model_dir == directory / "model"
    assert candidate.report == directory / "report" / "index.html"
    assert candidate.metrics == {"oot": {"model": {"rmse": 0.2}}}
    assert candidate.params == {"cost_bps": 2.0, "tuning": None, "model": {"lags": 3}}
    assert candidate_names(tmp_path) == ["ar"]
    with pytest.raises(
        RegistryError, match=r"candidate 'lightgbm' has no directory .*candidates of this run: \['ar'\]"
    ):
        read_candidate(tmp_path, "lightgbm")


def test_candidate_without_its_model_directory_is_refused(tmp_path: Path) -> None:
    _candidate(tmp_path, "xgboost", model_dir="booster")
    with pytest.raises(RegistryError, match=r"model directory .*booster is missing"):
        read_candidate(tmp_path, "xgboost")


def test_selection_contract_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="does not exist; run the task that writes it first"):
        read_selection(tmp_path)
    (tmp_path / "selection.json").write_text("{not json")
    with pytest.raises(RegistryError, match="not readable JSON"):
        read_selection(tmp_path)
    (tmp_path / "selection.json").write_text(json.dumps({"candidates": {}}))
    with pytest.raises(RegistryError, match="expected a 'selected' key"):
        read_selection(tmp_path)
    (tmp_path / "selection.json").write_text(
        json.dumps({"selected": None, "reasons": {"ar": "no skill"}, "lake_versions": {"gold.features": 3}})
    )
    selection = read_selection(tmp_path)
    assert selection.selected is None
    assert selection.lake_versions == {"gold.features": 3}
    assert selection.reasons == {"ar": "no skill"}
