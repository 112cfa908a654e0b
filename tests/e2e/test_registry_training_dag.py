"""The whole training pipeline through the local runner on a small synthetic set: a failure injected into
registration, resume, lineage and exact reproduction, then a second run that reuses what exists."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from spxcast.config import Settings, load_settings
from spxcast.features.catalog import feature_catalog
from spxcast.lake import Lake
from spxcast.lake.tables import GOLD_FEATURES
from spxcast.pipeline.runner import run_dag, run_states
from spxcast.registry import CHALLENGER, ModelRegistry, Stage
from spxcast.registry.handoff import read_candidate, read_selection
from spxcast.registry.lineage import verify_lake_versions
from spxcast.registry.registration import build_lineage
from spxcast.registry.reproduce import reproduce_version
from spxcast.registry.tracking import find_run
from spxcast.registry.window import default_loader, fitted_until

UPSTREAM = {
    "ingest_market",
    "ingest_news",
    "validate_market",
    "validate_news",
    "silver_returns",
    "silver_technical",
    "silver_volatility",
    "silver_microstructure",
    "silver_news_sentiment",
    "gold_market_features",
    "gold_news_signals",
    "gold_labels",
    "materialize",
    "train_lightgbm",
    "train_xgboost",
    "train_ar",
    "select_model",
}


def _small(tmp_path: Path, **registry: object) -> Settings:
    return load_settings(
        home=tmp_path / "home",
        **{
            "market.synthetic.days": 14,
            "market.synthetic.planted_signal": True,
            "market.synthetic.planted_strength": 4.0,
            "training.trials_coarse": 2,
            "training.trials_fine": 2,
            "training.max_rounds": 40,
            "training.oot2_rows": 1000,
            "pipeline.workers": 2,
            **{f"registry.{k}": v for k, v in registry.items()},
        },
    )


@pytest.mark.slow
def test_training_dag_end_to_end_with_failure_resume_lineage_and_reuse(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    broken = _small(tmp_path, tracking_uri=f"sqlite:///{blocker}/mlflow.db")
    first = run_dag(broken, "full")
    assert first.status == "failed"
    assert {n for n, s in first.tasks.items() if s == "succeeded"} == UPSTREAM
    assert first.tasks["register_model"] == "failed"
    assert "MLflow store" in first.errors["register_model"]
    assert "cannot be created" in first.errors["register_model"]

    settings = _small(tmp_path)
    resumed = run_dag(settings, "full", resume=first.run_id)
    assert resumed.run_id == first.run_id
    assert resumed.status == "succeeded", resumed.errors
    [state] = run_states(settings, first.run_id)
    attempts = {t.task: t.attempt for t in state.tasks}
    assert all(attempts[n] == 1 for n in UPSTREAM), "succeeded tasks must not run again on resume"
    assert attempts["register_model"] == 3, "two failed attempts (one retry), then the resumed one"

    registered = resumed.outputs["register_model"]
    selection = read_selection(settings.artifacts_dir() / "runs" / first.run_id)
    assert registered["selected"] == selection.selected is not None, "the planted signal must be found"
    registry = ModelRegistry(settings)
    info = registry.get(registered["version"])
    assert info.stage == Stage.STAGING
    assert info.aliases == (CHALLENGER,)
    assert set(registered["mlflow_runs"]) == {"lightgbm", "xgboost", "ar"}
    assert registry.history(info.version)[0].action == "register"

    lineage = info.lineage
    assert lineage is not None
    lake = Lake.from_settings(settings)
    assert lineage.lake_versions == selection.lake_versions
    assert verify_lake_versions(lake, lineage)["gold.features"] > 10_000
    assert reproduce_version(registry, info.version).identical

    # A boosting candidate, registered by hand from the same run, reproduces exactly too.
    run_dir = settings.artifacts_dir() / "runs" / first.run_id
    candidate = read_candidate(run_dir, "lightgbm")
    boosted = build_lineage(
        settings, candidate, selection, first.run_id, default_loader(feature_catalog(settings))
    )
    mlflow_run = find_run(registry.client, registry.experiment_id(), first.run_id, "lightgbm")
    assert mlflow_run is not None
    version, created = registry.register(mlflow_run, boosted, actor="test")
    assert created
    reproduction = reproduce_version(registry, version.version)
    assert reproduction.identical, reproduction

    # Champion comparison on real models: the LightGBM challenger against the AR champion (which reads
    # lagged horizon returns that gold does not hold) on the same recent rows.
    registry.promote(info.version, force=True, reason="e2e: make the AR model the champion")
    gates = {r.name: r for r in registry.gates(version.version).results}
    champion_gate = gates["not_worse_than_champion"]
    assert f"champion v{info.version}" in champion_gate.figure
    # Only rows after the challenger's training window (its valid split): neither model trained on them.
    after = fitted_until(boosted.split_boundaries)
    assert after is not None
    gold = lake.series(GOLD_FEATURES.name, settings.instrument, settings.granularity).collect()
    untouched = gold.filter(pl.col("label_ok") & (pl.col("ts") > after)).height
    assert 0 < untouched < gold.filter(pl.col("label_ok")).height
    shared = min(untouched, settings.registry.shared_window_rows)
    assert f"same {shared} rows" in champion_gate.figure

    second = run_dag(settings, "full")
    assert second.status == "succeeded", second.errors
    reused = {n for n, out in second.outputs.items() if out.get("reused_from") == first.run_id}
    assert reused == UPSTREAM - {"ingest_market", "ingest_news", "select_model"}
    assert not second.outputs["register_model"]["created"], "the same model is not registered twice"
    assert second.outputs["register_model"]["version"] == info.version
