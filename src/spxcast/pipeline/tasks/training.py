"""Training tasks: one per candidate (concurrent under the runner), then selection.

They write the run folder whose layout :mod:`spxcast.pipeline.runs` owns. A candidate directory is
written under a temporary name and renamed into place, so a crash leaves either the previous complete
directory or none.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from spxcast.config import Settings
from spxcast.errors import ModelError
from spxcast.evaluation.evaluate import evaluate_predictions
from spxcast.evaluation.report import write_report
from spxcast.features.catalog import NEWS_GROUP, Catalog, feature_catalog
from spxcast.lake.tables import GOLD_FEATURES
from spxcast.models.io import save_model
from spxcast.models.selection import select_candidate
from spxcast.models.train import (
    BASELINES,
    CandidateRun,
    TrainingSpec,
    train_candidate,
    without_absent_news,
)
from spxcast.pipeline.context import TaskContext
from spxcast.pipeline.runs import (
    CANDIDATES_DIR,
    EVALUATION_FILE,
    MODEL_DIR,
    PREDICTIONS_FILE,
    REPORT_DIR,
    REPORT_FILE,
    candidate_dir,
    candidate_names,
    candidates_root,
    evaluation_file,
    predictions_file,
    selection_file,
)

log = logging.getLogger(__name__)

GOLD = GOLD_FEATURES.name


def feature_set(settings: Settings, gold_columns: list[str]) -> tuple[list[str], list[str], Catalog]:
    """Catalog feature names, the news ones among them, and the running catalog.

    Raises when gold lacks a catalog feature: the model must be trained on exactly the running catalog.
    """
    catalog = feature_catalog(settings)
    names = catalog.names()
    missing = [n for n in names if n not in gold_columns]
    if missing:
        raise ModelError(
            f"{GOLD} lacks {len(missing)} catalog features ({missing[:5]}); "
            "rebuild gold with the current catalog"
        )
    return names, catalog.names(NEWS_GROUP), catalog


def used_features(
    settings: Settings, gold: pl.DataFrame, features: list[str], news_features: list[str]
) -> tuple[list[str], list[str], list[str]]:
    """The features a model reads, the news ones among them, and their families in catalog order.

    Market-only (:func:`spxcast.models.train.without_absent_news`): when gold holds no news signal the
    news features are left out, and this is logged.
    """
    features, news_features = without_absent_news(gold, features, news_features)
    catalog = feature_catalog(settings)
    used = set(features)
    families = list(dict.fromkeys(s.group for s in catalog if s.name in used))
    return features, news_features, families


def read_gold(ctx: TaskContext) -> tuple[pl.DataFrame, int]:
    """This instrument's and granularity's rows of gold.features, and the table version read."""
    lake = ctx.lake
    version = lake.version(GOLD)
    if version is None:
        raise ModelError(
            f"lake table {GOLD} does not exist yet; run the features pipeline (gold_labels) first"
        )
    s = ctx.settings
    gold = lake.series(GOLD, s.instrument, s.granularity, version).collect()
    if gold.is_empty():
        raise ModelError(f"{GOLD} v{version} has no rows for {s.instrument} {s.granularity}")
    return gold, version


def write_candidate(
    directory: Path,
    run: CandidateRun,
    spec: TrainingSpec,
    lineage: dict[str, Any],
    catalog: Catalog,
    families: list[str],
) -> None:
    """Write one candidate's model, evaluation, predictions and report; atomically replaces ``directory``."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        boundaries = run.boundaries.to_dict()
        train = run.boundaries.range("train")
        metadata = {
            **lineage,
            "training_window": {
                "start": train.start.isoformat(),
                "end": train.end.isoformat(),
                "rows": train.rows,
            },
            "split_boundaries": boundaries,
            "tuning": run.tuning,
            "target": spec.target,
            "horizon_minutes": spec.horizon_minutes,
            "feature_families": list(families),
        }
        save_model(run.model, staging / MODEL_DIR, catalog=catalog, metadata=metadata)
        run.predictions.write_parquet(staging / PREDICTIONS_FILE)
        evaluation = {
            "candidate": run.name,
            "baselines": list(BASELINES),
            "target": spec.target,
            "horizon_minutes": spec.horizon_minutes,
            "horizon_bars": spec.horizon_bars,
            "cost_bps": spec.cost_bps,
            "model_dir": MODEL_DIR,
            "report": REPORT_FILE,
            "split_boundaries": boundaries,
            "catalog_hash": catalog.fingerprint(),
            "feature_families": list(families),
            **lineage,
            "fit_seconds": run.fit_seconds,
            "tuning": run.tuning,
            "feature_importance": run.importance,
            "models": run.evaluation,
        }
        write_report(
            staging / REPORT_DIR,
            run.name,
            run.evaluation,
            run.predictions,
            run.importance,
            spec.horizon_minutes,
            spec.cost_bps,
            extra={k: evaluation[k] for k in ("split_boundaries", "tuning")},
        )
        (staging / EVALUATION_FILE).write_text(json.dumps(evaluation, indent=2, default=str))
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def train_model(ctx: TaskContext, model: str) -> dict[str, Any]:
    """Read gold, train ``model`` against the baselines, write its candidate directory."""
    settings = ctx.settings
    gold, version = read_gold(ctx)
    features, news_features, catalog = feature_set(settings, gold.columns)
    features, news_features, families = used_features(settings, gold, features, news_features)
    spec = TrainingSpec.from_settings(settings, model, features, news_features, study_prefix=ctx.run_id)
    run = train_candidate(gold, spec)
    lineage = {
        "run_id": ctx.run_id,
        "instrument": settings.instrument,
        "granularity": settings.granularity,
        "lake_versions": {GOLD: version},
        "seed": settings.seed,
    }
    directory = candidate_dir(ctx.run_dir, model)
    write_candidate(directory, run, spec, lineage, catalog, families)
    valid = run.evaluation[model].get("valid", {})
    return {
        "candidate": str(directory),
        "feature_families": families,
        "market_only": "news" not in families,
        "gold_version": version,
        "valid_rmse": valid.get("rmse"),
        "valid_r2_oos": valid.get("r2_oos"),
        "fit_seconds": round(run.fit_seconds, 2),
    }


def train_lightgbm(ctx: TaskContext) -> dict[str, Any]:
    return train_model(ctx, "lightgbm")


def train_xgboost(ctx: TaskContext) -> dict[str, Any]:
    return train_model(ctx, "xgboost")


def train_ar(ctx: TaskContext) -> dict[str, Any]:
    return train_model(ctx, "ar")


def read_evaluations(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``{candidate: evaluation.json}`` for every candidate directory of a run."""
    names = candidate_names(run_dir)
    if not names:
        raise ModelError(f"no candidates in {candidates_root(run_dir)}; run the train_<model> tasks first")
    return {name: json.loads(evaluation_file(run_dir, name).read_text()) for name in names}


def _one(evaluations: dict[str, dict[str, Any]], key: str) -> Any:
    values = {json.dumps(e[key], sort_keys=True) for e in evaluations.values()}
    if len(values) != 1:
        raise ModelError(f"candidates disagree on {key} ({sorted(evaluations)}); retrain them in one run")
    return next(iter(evaluations.values()))[key]


def build_selection(run_dir: Path, dm_pvalue: float | None) -> dict[str, Any]:
    """The selection document for the candidates present in ``run_dir``."""
    evaluations = read_evaluations(run_dir)
    boundaries = _one(evaluations, "split_boundaries")
    lake_versions = _one(evaluations, "lake_versions")
    selection = select_candidate({n: e["models"] for n, e in evaluations.items()}, dm_pvalue)
    first = next(iter(evaluations.values()))
    return {
        "selected": selection.selected,
        "rule": selection.rule,
        "dm_pvalue_threshold": dm_pvalue,
        "run_dir": str(run_dir),
        "candidates": {
            name: {
                "path": f"{CANDIDATES_DIR}/{name}",
                "model_dir": f"{CANDIDATES_DIR}/{name}/{e['model_dir']}",
                "evaluation": f"{CANDIDATES_DIR}/{name}/{EVALUATION_FILE}",
                "report": f"{CANDIDATES_DIR}/{name}/{e['report']}",
                "eligible": name in selection.eligible,
                "metrics": e["models"][name],
            }
            for name, e in evaluations.items()
        },
        "baselines": {b: first["models"][b] for b in first["baselines"]},
        "reasons": selection.reasons,
        "split_boundaries": boundaries,
        "lake_versions": lake_versions,
        "catalog_hash": _one(evaluations, "catalog_hash"),
        "instrument": first["instrument"],
        "granularity": first["granularity"],
        "horizon_minutes": first["horizon_minutes"],
        "target": first["target"],
    }


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(document, indent=2, default=str))
    os.replace(staging, path)


def select_model(ctx: TaskContext) -> dict[str, Any]:
    """Pick the candidate to register (or none) and write ``selection.json``."""
    document = build_selection(ctx.run_dir, ctx.settings.training.selection_dm_pvalue)
    document["created_at"] = datetime.now(UTC).isoformat()
    write_json_atomically(selection_file(ctx.run_dir), document)
    return {"selected": document["selected"], "reasons": document["reasons"]}


def rebuild_evaluations(run_dir: Path, cost_bps: float | None = None) -> dict[str, dict[str, Any]]:
    """Recompute every candidate's evaluation and report of a finished run from its stored predictions.

    ``cost_bps`` re-runs the backtest at another cost (default: the cost the run used). The evaluation
    files and reports are rewritten; ``selection.json`` is rebuilt when present.
    """
    evaluations = read_evaluations(run_dir)
    for name, evaluation in evaluations.items():
        directory = candidate_dir(run_dir, name)
        predictions = pl.read_parquet(predictions_file(run_dir, name))
        cost = evaluation["cost_bps"] if cost_bps is None else cost_bps
        evaluation["cost_bps"] = cost
        evaluation["models"] = evaluate_predictions(
            predictions,
            [name, *evaluation["baselines"]],
            evaluation["horizon_minutes"],
            evaluation["horizon_bars"],
            cost,
        )
        write_report(
            directory / REPORT_DIR,
            name,
            evaluation["models"],
            predictions,
            evaluation["feature_importance"],
            evaluation["horizon_minutes"],
            cost,
            extra={k: evaluation[k] for k in ("split_boundaries", "tuning")},
        )
        write_json_atomically(evaluation_file(run_dir, name), evaluation)
    selection = selection_file(run_dir)
    if selection.is_file():
        previous = json.loads(selection.read_text())
        document = build_selection(run_dir, previous["dm_pvalue_threshold"])
        document["created_at"] = previous.get("created_at")
        document["rebuilt_at"] = datetime.now(UTC).isoformat()
        write_json_atomically(selection, document)
    return evaluations
