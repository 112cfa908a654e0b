"""Reading the training hand-off (candidate directories, evaluation.json, selection.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spxcast.errors import RegistryError
from spxcast.registry.handoff import candidate_names, normalise_metrics, read_candidate, read_selection


def test_metrics_are_normalised_with_the_candidate_as_model() -> None:
    raw = {
        "test": {
            "xgboost": {"rmse": 0.1, "dm_pvalue": 0.01, "n": 5, "note": "x", "bad": float("nan")},
            "zero": {"rmse": 0.12},
        }
    }
    assert normalise_metrics("xgboost", raw, "src") == {
        "test": {"model": {"rmse": 0.1, "dm_pvalue": 0.01, "n": 5.0}, "zero": {"rmse": 0.12}}
    }


def test_metrics_without_the_candidate_are_refused() -> None:
    with pytest.raises(RegistryError, match="no metrics for the candidate 'ar'"):
        normalise_metrics("ar", {"test": {"zero": {"rmse": 0.1}}}, "evaluation.json")
    with pytest.raises(RegistryError, match="expected 'metrics'"):
        normalise_metrics("ar", None, "evaluation.json")


def test_candidate_directory_with_model_subdirectory_and_reports(tmp_path: Path) -> None:
    directory = tmp_path / "candidates" / "ar"
    (directory / "model").mkdir(parents=True)
    (directory / "evaluation.json").write_text(json.dumps({"metrics": {"oot": {"ar": {"rmse": 0.2}}}}))
    (directory / "report.html").write_text("<html/>")
    (directory / "pred_vs_actual.png").write_bytes(b"\x89PNG")
    candidate = read_candidate(tmp_path, "ar")
    assert candidate.model_dir == directory / "model"
    assert [p.name for p in candidate.report_files] == ["pred_vs_actual.png", "report.html"]
    assert candidate.metrics == {"oot": {"model": {"rmse": 0.2}}}
    assert candidate_names(tmp_path) == ["ar"]
    with pytest.raises(
        RegistryError, match=r"candidate 'lightgbm' has no directory .*candidates of this run: \['ar'\]"
    ):
        read_candidate(tmp_path, "lightgbm")


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
