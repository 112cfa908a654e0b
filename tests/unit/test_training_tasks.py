"""The training tasks and verbs on a gold table in the lake: files, selection.json, CLI output."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cli_tables import evaluation_cells
from spxcast.config import Settings, load_settings
from spxcast.errors import ModelError
from spxcast.features import catalog as catalog_module
from spxcast.features import lags
from spxcast.lake import Lake
from spxcast.models.io import load_model
from spxcast.pipeline.context import TaskContext
from spxcast.pipeline.runner import run_task
from spxcast.pipeline.tasks import training
from training_factories import feature_names, gold_frame

FEATURES = feature_names(6)


def _test_catalog(context: catalog_module.FeatureContext | None = None) -> catalog_module.Catalog:
    """Six factory features: five 'market' ones and one 'news' one (the AR model's exogenous input), and
    the horizon lags."""
    specs = [
        catalog_module.FeatureSpec(
            name,
            "news" if i == 5 else "returns",
            f"factory feature {name}",
            "z-score",
            1,
            expr=None if i == 5 else pl.col("close"),
            silver=None if i == 5 else "silver.returns",
        )
        for i, name in enumerate(FEATURES)
    ]
    return catalog_module.Catalog([*specs, *lags.specs(context or catalog_module.FeatureContext())])


@pytest.fixture
def trained_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(catalog_module, "default_catalog", _test_catalog)
    settings = load_settings(
        home=tmp_path / "home",
        **{
            "training.oot2_rows": 1000,
            "training.trials_coarse": 2,
            "training.trials_fine": 2,
            "training.max_rounds": 150,
        },
    )
    gold, _ = gold_frame(12_000, n_features=6, signal="planted", strength=0.08, seed=4)
    other = gold.with_columns(pl.lit("NAS100_USD").alias("instrument"))
    Lake.from_settings(settings).write("gold.features", pl.concat([gold, other]))
    return settings


def test_train_tasks_write_candidates_and_selection(trained_settings: Settings) -> None:
    run_id = "run-test"
    for task in ("train_lightgbm", "train_xgboost", "train_ar", "select_model"):
        status, payload = run_task(trained_settings, task, run_id)
        assert status == "succeeded", payload
    run_dir = trained_settings.artifacts_dir() / "runs" / run_id
    selection = json.loads((run_dir / "selection.json").read_text())
    assert set(selection["candidates"]) == {"lightgbm", "xgboost", "ar"}
    assert selection["selected"] in {"lightgbm", "xgboost"}
    assert set(selection["reasons"]) == {"lightgbm", "xgboost", "ar"}
    assert selection["lake_versions"] == {"gold.features": 0}
    assert [s["name"] for s in selection["split_boundaries"]["splits"]] == [
        "train",
        "tune",  # Optuna and early stopping; selection's valid rows come after it, untouched
        "valid",
        "test",
        "oot",
        "oot2",
    ]
    assert set(selection["baselines"]) == {"zero", "mean", "persistence"}
    for name, entry in selection["candidates"].items():
        evaluation = json.loads((run_dir / entry["evaluation"]).read_text())
        assert set(evaluation["models"]) == {name, "zero", "mean", "persistence"}
        assert set(evaluation["models"][name]) == {"valid", "test", "oot", "oot2"}
        assert (run_dir / entry["report"]).is_file()
        assert (run_dir / entry["path"] / "report" / "pnl.png").is_file()
        model = load_model(run_dir / entry["model_dir"], catalog=_test_catalog())
        assert model.metadata_["catalog_hash"] == selection["catalog_hash"] == _test_catalog().fingerprint()  # type: ignore[attr-defined]
        assert model.metadata_["lake_versions"] == {"gold.features": 0}  # type: ignore[attr-defined]
        assert model.metadata_["training_window"]["rows"] > 0  # type: ignore[attr-defined]
    ar = load_model(run_dir / "candidates" / "ar" / "model", catalog=_test_catalog())
    assert ar.feature_names[-1] == "f5"  # the news feature is the AR model's exogenous regressor
    assert not list((run_dir / "candidates").glob(".*"))  # no staging directories left behind


def test_select_model_without_candidates_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(ModelError, match="no candidates"):
        training.select_model(TaskContext(settings, "empty", "select_model"))


def test_train_refuses_gold_missing_catalog_features(
    trained_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    bigger = catalog_module.Catalog(
        [*_test_catalog(), catalog_module.FeatureSpec("f_new", "news", "missing", "z", 1)]
    )
    monkeypatch.setattr(catalog_module, "default_catalog", lambda context=None: bigger)
    with pytest.raises(ModelError, match="lacks 1 catalog features"):
        training.train_ar(TaskContext(trained_settings, "r", "train_ar"))


def test_cli_train_and_evaluate(trained_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from spxcast.cli._common import console
    from spxcast.cli.main import app

    runner = CliRunner()
    home = str(trained_settings.home)
    env = {"SPXCAST_TRAINING__OOT2_ROWS": "1000", "SPXCAST_TRAINING__MAX_ROUNDS": "100", "COLUMNS": "200"}
    result = runner.invoke(
        app,
        [
            "--home",
            home,
            "train",
            "--models",
            "ar,lightgbm",
            "--trials-coarse",
            "2",
            "--trials-fine",
            "1",
            "--run-id",
            "cli-run",
            "--json",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout)  # one JSON document; progress and messages went to stderr
    run_dir = trained_settings.artifacts_dir() / "runs/cli-run"
    assert trained["run_id"] == "cli-run" and trained["run_dir"] == str(run_dir)
    assert trained["selection"] == json.loads((run_dir / "selection.json").read_text())
    ar_file = run_dir / "candidates/ar/evaluation.json"
    before = json.loads(ar_file.read_text())
    assert trained["evaluations"]["ar"]["models"] == before["models"]
    assert trained["evaluations"]["ar"]["report"] == str(run_dir / "candidates/ar" / before["report"])
    result = runner.invoke(app, ["--home", home, "evaluate", "cli-run"], env=env)
    assert result.exit_code == 0, result.output
    assert "persistence" in result.output
    assert "selected:" in result.output
    assert "index.html" in result.output
    assert json.loads(ar_file.read_text())["models"] == before["models"]  # rebuilt from predictions: same
    result = runner.invoke(app, ["--home", home, "evaluate", "cli-run", "--cost-bps", "7"], env=env)
    assert result.exit_code == 0, result.output
    evaluation = json.loads(
        (trained_settings.artifacts_dir() / "runs/cli-run/candidates/ar/evaluation.json").read_text()
    )
    assert evaluation["cost_bps"] == 7

    # Redirected at 80 columns the table keeps every figure, and --json holds the same figures.
    monkeypatch.setattr(console, "_width", 80)
    table = runner.invoke(app, ["--home", home, "evaluate", "cli-run"], env=env)
    as_json = runner.invoke(app, ["--home", home, "evaluate", "cli-run", "--json"], env=env)
    assert table.exit_code == 0 and as_json.exit_code == 0, table.output + as_json.output
    document = json.loads(as_json.stdout)
    assert set(document["evaluations"]) == {"ar", "lightgbm"}
    assert (
        document["selection"]["selected"] == json.loads((run_dir / "selection.json").read_text())["selected"]
    )
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in table.stdout.splitlines() if "│" in line]
    expected = [
        [model, split, *evaluation_cells(by_split[split])]
        for evaluation in document["evaluations"].values()
        for model, by_split in evaluation["models"].items()
        for split in ("valid", "test", "oot", "oot2")
        if split in by_split
    ]
    assert rows == expected
    assert "…" not in table.stdout
    bad = runner.invoke(app, ["--home", home, "train", "--models", "prophet"], env=env)
    assert bad.exit_code == 2
    assert "--models" in bad.output


def test_catalog_fingerprint_changes_with_any_entry() -> None:
    catalog = _test_catalog()
    same = _test_catalog().fingerprint()
    assert catalog.fingerprint() == same
    changed = catalog_module.Catalog(
        dataclasses.replace(s, lookback=s.lookback + (s.name == "f0")) for s in catalog
    )
    assert changed.fingerprint() != same
    assert catalog.select(catalog.names()[::-1]).fingerprint() != same
    longer = catalog_module.Catalog(_test_catalog(catalog_module.FeatureContext(horizon_lags=7)))
    assert longer.fingerprint() != same
