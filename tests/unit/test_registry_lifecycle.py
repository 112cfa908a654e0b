"""Registration, promotion gates, rollback, archive and the audit trail on a real MLflow SQLite store.

All tests of this module share one MLflow store (each test registers its own instrument's model).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from registry_factories import BAD, FEATURES, GOOD, shared_store_settings, write_gold, write_run
from spxcast.config import Settings
from spxcast.errors import RegistryError
from spxcast.features.catalog import feature_catalog
from spxcast.lake import Lake
from spxcast.models.io import load_model
from spxcast.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    ModelRegistry,
    PromotionRefused,
    Stage,
    register_run,
)
from spxcast.registry.lineage import verify_lake_versions


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture
def cfg(settings: Settings, store: Path) -> Settings:
    configured = shared_store_settings(settings, store)
    write_gold(configured)
    return configured


def _register(cfg: Settings, coef: tuple[float, ...], skill: bool, actor: str = "alice") -> int:
    run_id, run_dir = write_run(cfg, {"lightgbm": (coef, skill), "ar": ((0.1, 0.0), False)}, "lightgbm")
    result = register_run(cfg, run_dir, run_id, actor=actor)
    assert result.version is not None
    assert result.created
    return result.version


def _registry(cfg: Settings) -> ModelRegistry:
    return ModelRegistry(cfg)


def test_register_logs_every_candidate_and_registers_the_selected_as_challenger(cfg: Settings) -> None:
    run_id, run_dir = write_run(cfg, {"lightgbm": (GOOD, True), "ar": ((0.1, 0.0), False)}, "lightgbm")
    result = register_run(cfg, run_dir, run_id, actor="alice")
    registry = _registry(cfg)
    assert result.model_name == f"spxcast-{cfg.instrument}-30m" == registry.name
    assert set(result.runs) == {"lightgbm", "ar"}
    [info] = registry.versions()
    assert (info.version, info.stage, info.aliases, info.candidate) == (
        result.version,
        Stage.STAGING,
        (CHALLENGER,),
        "lightgbm",
    )
    run = registry.client.get_run(result.runs["lightgbm"])
    assert run.data.metrics["test.rmse"] == pytest.approx(0.10)
    assert run.data.metrics["oot.zero.rmse"] == pytest.approx(0.12)
    assert run.data.metrics["oot2.persistence.rmse"] == pytest.approx(0.17)
    assert run.data.metrics["test.backtest_sharpe_net"] == pytest.approx(1.5)
    assert "test.zero.dm_pvalue" not in run.data.metrics, "undefined metrics are not logged"
    assert run.data.params["candidate.tuning.best_params.depth"] == "3"
    assert run.data.params["candidate.model.n_estimators"] == "40"
    assert run.data.params["candidate.model.features"] == json.dumps(list(FEATURES))
    assert run.data.params["config.seed"] == str(cfg.seed)
    artifacts = {f.path for f in registry.client.list_artifacts(run.info.run_id)}
    assert {"model", "evaluation", "lineage.json"} <= artifacts
    evaluation = {f.path for f in registry.client.list_artifacts(run.info.run_id, "evaluation")}
    assert evaluation == {"evaluation/evaluation.json", "evaluation/report"}
    report = {f.path for f in registry.client.list_artifacts(run.info.run_id, "evaluation/report")}
    assert report == {"evaluation/report/index.html", "evaluation/report/pnl.png"}
    assert run.data.tags["spxcast.report"] == "evaluation/report/index.html"
    downloaded = registry.download(info.version, cfg.home / "dl")
    gold = Lake.from_settings(cfg).read("gold.features")
    predictions = load_model(downloaded, catalog=feature_catalog(cfg)).predict(gold)
    assert np.corrcoef(predictions, GOOD[0] * gold[FEATURES[0]].to_numpy())[0, 1] > 0.95
    [step] = registry.history()
    assert (step.action, step.from_state, step.to_state, step.actor) == (
        "register",
        "None",
        "Staging",
        "alice",
    )
    assert run_id in step.reason

    again = register_run(cfg, run_dir, run_id)
    assert again.version == result.version, "a rerun must not register a duplicate"
    assert not again.created
    assert again.runs == result.runs, "a rerun must reuse the MLflow runs already logged"

    other_run, other_dir = write_run(cfg, {"lightgbm": (GOOD, True)}, "lightgbm")
    same_model = register_run(cfg, other_dir, other_run)
    assert same_model.runs["lightgbm"] != result.runs["lightgbm"], "every pipeline run is tracked"
    assert same_model.version == result.version, "an identical model from another run is not registered again"
    assert "not registered again" in same_model.message
    assert len(registry.versions()) == 1


def test_lineage_records_features_code_seeds_and_lake_versions_that_still_load(cfg: Settings) -> None:
    version = _register(cfg, GOOD, skill=True)
    lake = Lake.from_settings(cfg)
    write_gold(cfg, rows=50, seed=9)  # gold moves on; the recorded version must still load
    lineage = _registry(cfg).get(version).lineage
    assert lineage is not None
    assert lineage.features == FEATURES
    assert lineage.seeds == {"seed": cfg.seed}
    assert lineage.code_version
    assert lineage.model_sha256
    assert lineage.split_boundaries["train"][0].startswith("2024-03-04")
    assert lineage.training_config["horizon_minutes"] == 30
    assert lineage.lake_versions == {"gold.features": 0}
    assert verify_lake_versions(lake, lineage) == {"gold.features": 400}
    assert lake.read("gold.features").height == 50


def test_lineage_naming_a_vanished_lake_version_is_a_clear_error(cfg: Settings) -> None:
    version = _register(cfg, GOOD, skill=True)
    lineage = _registry(cfg).get(version).lineage
    assert lineage is not None
    broken = type(lineage)(**{**lineage.__dict__, "lake_versions": {"gold.features": 7}})
    with pytest.raises(RegistryError, match=r"gold.features version 7"):
        verify_lake_versions(Lake.from_settings(cfg), broken)


def test_promote_when_gates_pass_then_a_better_challenger_replaces_the_champion(cfg: Settings) -> None:
    first = _register(cfg, (0.3, 0.0), skill=True)
    registry = _registry(cfg)
    result = registry.promote(actor="bob")
    assert (result.version, result.previous_champion, result.forced) == (first, None, False)
    assert result.gates.passed
    assert "no champion yet" in {r.name: r.figure for r in result.gates.results}["not_worse_than_champion"]
    assert registry.get(first).stage == Stage.PRODUCTION
    assert registry.get(first).aliases == (CHAMPION,)

    second = _register(cfg, GOOD, skill=True)
    report = registry.gates(second)
    champion_gate = {r.name: r for r in report.results}["not_worse_than_champion"]
    assert champion_gate.passed
    assert f"v{first}" in champion_gate.figure
    assert "400 rows" in champion_gate.figure
    promoted = registry.promote(second, reason="better on the recent window", actor="bob")
    assert promoted.previous_champion == first
    assert registry.get(second).aliases == (CHAMPION,)
    assert registry.get(first).stage == Stage.ARCHIVED
    assert registry.get(first).aliases == (PREVIOUS_CHAMPION,)
    steps = [(s.version, s.action, s.from_state, s.to_state, s.actor) for s in registry.history()]
    assert steps == [
        (first, "register", "None", "Staging", "alice"),
        (first, "promote", "Staging", "Production", "bob"),
        (second, "register", "None", "Staging", "alice"),
        (first, "demote", "Production", "Archived", "bob"),
        (second, "promote", "Staging", "Production", "bob"),
    ]
    assert registry.history(second)[-1].gates == report.to_json()


def test_promote_refused_with_reasons_when_worse_than_the_champion(cfg: Settings) -> None:
    champion = _register(cfg, GOOD, skill=True)
    registry = _registry(cfg)
    registry.promote()
    worse = _register(cfg, BAD, skill=True)
    with pytest.raises(PromotionRefused, match="not_worse_than_champion") as refused:
        registry.promote()
    failures = {r.name: r.figure for r in refused.value.gates.failures}
    assert set(failures) == {"not_worse_than_champion"}
    assert f"champion v{champion}" in failures["not_worse_than_champion"]
    assert registry.by_alias(CHAMPION).version == champion  # type: ignore[union-attr]
    assert registry.get(worse).stage == Stage.STAGING
    last = registry.history(worse)[-1]
    assert (last.action, last.from_state, last.to_state, last.forced) == (
        "promote_refused",
        "Staging",
        "Staging",
        False,
    )
    assert "not_worse_than_champion" in last.reason


def test_no_skill_model_never_becomes_champion_without_the_explicit_override(cfg: Settings) -> None:
    version = _register(cfg, GOOD, skill=False)
    registry = _registry(cfg)
    with pytest.raises(PromotionRefused) as refused:
        registry.promote(version)
    assert {r.name for r in refused.value.gates.failures} == {"beats_zero_test", "beats_zero_oot"}
    assert "DM p=0.6" in refused.value.gates.failures[0].figure
    with pytest.raises(RegistryError, match="--reason"):
        registry.promote(version, force=True)
    assert registry.by_alias(CHAMPION) is None

    forced = registry.promote(version, force=True, reason="emergency: old champion broken", actor="carol")
    assert forced.forced
    assert not forced.gates.passed
    step = registry.history(version)[-1]
    assert (step.action, step.to_state, step.forced, step.actor) == ("promote", "Production", True, "carol")
    assert step.reason == "emergency: old champion broken"


def test_rmse_threshold_and_manual_approval_gates(cfg: Settings) -> None:
    strict = cfg.model_copy(
        update={
            "registry": cfg.registry.model_copy(
                update={"max_test_rmse": 0.05, "require_manual_approval": True}
            )
        }
    )
    version = _register(strict, GOOD, skill=True)
    registry = _registry(strict)
    report = registry.gates(version)
    assert {r.name: r.figure for r in report.failures} == {
        "max_test_rmse": "test RMSE 0.10000 (need <= 0.05)",
        "manual_approval": "required and missing (spxcast models approve VERSION)",
    }
    registry.approve(version, "reviewed the report", actor="dave")
    assert {r.name for r in registry.gates(version).failures} == {"max_test_rmse"}
    assert registry.history(version)[-1].action == "approve"


def test_rollback_restores_the_previous_champion_in_one_step(cfg: Settings) -> None:
    first = _register(cfg, (0.3, 0.0), skill=True)
    registry = _registry(cfg)
    registry.promote()
    second = _register(cfg, GOOD, skill=True)
    registry.promote()
    restored, replaced = registry.rollback("v2 misbehaves live", actor="erin")
    assert (restored, replaced) == (first, second)
    assert registry.get(first).stage == Stage.PRODUCTION
    assert registry.get(first).aliases == (CHAMPION,)
    assert registry.get(second).stage == Stage.ARCHIVED
    assert registry.get(second).aliases == ()
    rollback_steps = [
        (s.version, s.from_state, s.to_state) for s in registry.history() if s.action == "rollback"
    ]
    assert rollback_steps == [(second, "Production", "Archived"), (first, "Archived", "Production")]
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback()


def test_archive_and_supersede(cfg: Settings) -> None:
    first = _register(cfg, GOOD, skill=True)
    second = _register(cfg, (0.45, 0.0), skill=True)
    registry = _registry(cfg)
    assert registry.get(first).stage == Stage.ARCHIVED, "a new challenger supersedes the old one"
    assert registry.history(first)[-1].action == "supersede"
    registry.promote(second)
    with pytest.raises(RegistryError, match="is the champion"):
        registry.archive(second)
    third = _register(cfg, (0.4, 0.0), skill=True)
    registry.archive(third, "not needed", actor="frank")
    assert registry.get(third).stage == Stage.ARCHIVED
    assert registry.by_alias(CHALLENGER) is None
    step = registry.history(third)[-1]
    assert (step.action, step.from_state, step.to_state, step.reason) == (
        "archive",
        "Staging",
        "Archived",
        "not needed",
    )
    with pytest.raises(RegistryError, match="no challenger"):
        registry.promote()
    with pytest.raises(RegistryError, match="no version 99"):
        registry.get(99)


def test_no_selection_registers_nothing_and_says_so(cfg: Settings) -> None:
    run_id, run_dir = write_run(cfg, {"lightgbm": (GOOD, False), "ar": ((0.1, 0.0), False)}, None)
    result = register_run(cfg, run_dir, run_id)
    assert result.version is None
    assert not result.created
    assert "nothing registered" in result.message
    assert "does not beat the zero forecast" in result.message
    assert set(result.runs) == {"lightgbm", "ar"}, "the candidates are still tracked"
    assert _registry(cfg).versions() == []


def test_note_records_a_step_in_the_audit_trail_without_changing_the_stage(cfg: Settings) -> None:
    version = _register(cfg, GOOD, skill=True)
    registry = _registry(cfg)
    stage = registry.get(version).stage
    report = registry.gates(version)
    registry.note(version, "retrain_gates", "monitoring", "retrain: gates checked", report)
    step = registry.history(version)[-1]
    assert (step.action, step.from_state, step.to_state, step.actor, step.forced) == (
        "retrain_gates",
        stage.value,
        stage.value,
        "monitoring",
        False,
    )
    assert step.reason == "retrain: gates checked" and step.gates == report.to_json()
    assert registry.get(version).stage == stage
