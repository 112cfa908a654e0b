"""Train one candidate against the baselines on a gold frame: split, tune, fit, predict, evaluate.

Pure with respect to files: it takes a gold-like frame and returns the fitted models, the split
boundaries, the predictions and the evaluation. The pipeline task writes them out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from spxcast.config import Settings
from spxcast.errors import DataQualityError, ModelError
from spxcast.evaluation.evaluate import ACTUAL, evaluate_predictions
from spxcast.features.labels import label_names
from spxcast.features.lags import lag_name
from spxcast.models.ar import ARForecaster
from spxcast.models.base import Forecaster
from spxcast.models.baselines import MeanForecaster, PersistenceForecaster, ZeroForecaster
from spxcast.models.boosting import BoostingForecaster
from spxcast.models.io import model_class
from spxcast.models.splits import EVALUATION_SPLITS, TUNE, SplitBoundaries, make_splits
from spxcast.models.tuning import TuningConfig, tune_two_stage
from spxcast.sources.market.calendar import bar_positions
from spxcast.timeutil import bar_length

log = logging.getLogger(__name__)

CANDIDATES = ("lightgbm", "xgboost", "ar")
BASELINES = ("zero", "mean", "persistence")


@dataclass(frozen=True)
class TrainingSpec:
    """Everything that determines one candidate's training, explicitly.

    ``features`` are the gold feature columns the boosting models read; ``news_features`` (a subset) are
    the AR model's exogenous regressors; ``ar_lags`` is the largest AR order tried: the AR model reads the
    catalog's horizon lags 1..ar_lags (:mod:`spxcast.features.lags`), the persistence baseline lag 1.
    ``labels_in_bars``:
    the label is ``horizon_bars`` bars ahead on the ``calendar`` (else ``horizon_minutes`` ahead by time).
    OOT2 is ``oot2_rows`` rows when set, else ``oot2_fraction`` of the labelled rows. ``tune_share`` of
    the validation rows form the ``tune`` split (Optuna and early stopping); selection uses the rest.
    """

    model: str
    features: tuple[str, ...]
    horizon_minutes: int
    horizon_bars: int
    news_features: tuple[str, ...] = ()
    ar_lags: int = 6
    fractions: tuple[float, float, float, float] = (0.60, 0.15, 0.15, 0.10)
    oot2_rows: int | None = None
    oot2_fraction: float = 0.03
    tune_share: float = 0.5
    labels_in_bars: bool = False
    calendar: str = "auto"
    label_tolerance_minutes: float = 0.0
    cost_bps: float = 1.0
    tuning: TuningConfig = field(default_factory=TuningConfig)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        model: str,
        features: Sequence[str],
        news_features: Sequence[str] = (),
        study_prefix: str = "spxcast",
    ) -> TrainingSpec:
        """The spec the settings describe (trial counts, splits, costs, seed, threads, Optuna storage)."""
        t = settings.training
        return cls(
            model=model,
            features=tuple(features),
            news_features=tuple(news_features),
            horizon_minutes=settings.horizon_minutes,
            horizon_bars=settings.horizon_bar_count,
            labels_in_bars=settings.horizon_bars is not None,
            ar_lags=t.ar_max_lags,
            fractions=t.split_fractions,
            oot2_rows=t.oot2_rows,
            oot2_fraction=t.oot2_fraction,
            tune_share=t.tune_share,
            calendar=settings.calendar,
            label_tolerance_minutes=settings.features.label_tolerance_minutes,
            cost_bps=t.cost_bps,
            tuning=TuningConfig(
                trials_coarse=t.trials_coarse,
                trials_fine=t.trials_fine,
                seed=settings.seed,
                n_jobs=t.n_jobs,
                storage=t.optuna_storage,
                workers=t.trial_workers,
                study_prefix=study_prefix,
                max_rounds=t.max_rounds,
                early_stopping_rounds=t.early_stopping_rounds,
                tune_max_rows=t.tune_max_rows,
            ),
        )

    @property
    def target(self) -> str:
        return label_names(self.horizon_minutes, self.horizon_bars if self.labels_in_bars else None)[0]

    @property
    def lag_features(self) -> tuple[str, ...]:
        bars = self.horizon_bars if self.labels_in_bars else None
        return tuple(lag_name(self.horizon_minutes, k, bars) for k in range(1, self.ar_lags + 1))


@dataclass
class CandidateRun:
    """What training one candidate produced."""

    name: str
    model: Forecaster
    baselines: dict[str, Forecaster]
    boundaries: SplitBoundaries
    predictions: pl.DataFrame
    evaluation: dict[str, dict[str, dict[str, Any]]]
    tuning: dict[str, Any] | None
    fit_seconds: float
    importance: dict[str, float]


def without_absent_news(
    gold: pl.DataFrame, features: Sequence[str], news_features: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Market-only: ``features`` without the news ones, and no news features, when gold holds no news
    signal at all (every news column null: no news in the lake, or gold built without news); else as given.
    """
    if news_features and all(gold[n].null_count() == gold.height for n in news_features):
        log.info("market-only: gold holds no news signals; training on market features alone")
        dropped = set(news_features)
        return [f for f in features if f not in dropped], []
    return list(features), list(news_features)


def labelled_frame(gold: pl.DataFrame, spec: TrainingSpec) -> pl.DataFrame:
    """Gold rows with a usable label, sorted by time (the horizon lags are gold features)."""
    needed = dict.fromkeys(("ts", "label_ok", spec.target, *spec.features, *spec.lag_features))
    missing = [c for c in needed if c not in gold.columns]
    if missing:
        raise DataQualityError(
            f"gold frame lacks columns {missing[:8]}; expected the gold.features contract "
            "(rebuild gold with the current catalog: spxcast features build)"
        )
    keys = [c for c in ("instrument", "granularity") if c in gold.columns]
    if keys and gold.select(keys).unique().height > 1:
        raise DataQualityError("train on one instrument and granularity at a time; filter gold first")
    ordered = gold if gold["ts"].is_sorted() else gold.sort("ts")
    labelled = ordered.filter(pl.col("label_ok") & pl.col(spec.target).is_not_null())
    return labelled.filter(pl.col(spec.target).is_finite())


def make_model(spec: TrainingSpec) -> Forecaster:
    """An unfitted candidate as ``spec`` describes it (boosting models with their default ranges)."""
    if spec.model == "ar":
        return ARForecaster(spec.lag_features, spec.target, spec.news_features)
    cls = model_class(spec.model)
    if not issubclass(cls, BoostingForecaster):
        raise ModelError(f"{spec.model!r} is not a candidate; candidates are {', '.join(CANDIDATES)}")
    return cls(
        spec.features,
        spec.target,
        n_estimators=spec.tuning.max_rounds,
        early_stopping_rounds=spec.tuning.early_stopping_rounds,
        n_jobs=spec.tuning.n_jobs,
        seed=spec.tuning.seed,
    )


def fit_candidate(
    spec: TrainingSpec, train: pl.DataFrame, valid: pl.DataFrame
) -> tuple[Forecaster, dict[str, Any] | None]:
    """Tune (boosting models) and fit the candidate; returns it and the tuning summary."""
    model = make_model(spec)
    if not isinstance(model, BoostingForecaster) or spec.tuning.trials_coarse <= 0:
        return model.fit(train, valid), None
    x, y = model.feature_matrix(train, "train"), model.target_vector(train, "train")
    x_valid, y_valid = model.feature_matrix(valid, "valid"), model.target_vector(valid, "valid")
    result = tune_two_stage(type(model), x, y, x_valid, y_valid, spec.tuning)
    winner = type(model)(
        spec.features,
        spec.target,
        hyperparams=result.best_params,
        n_estimators=result.best_rounds,
        early_stopping_rounds=None,
        n_jobs=spec.tuning.n_jobs,
        seed=spec.tuning.seed,
    )
    return winner.fit(train, valid), result.to_dict()


def fit_baselines(spec: TrainingSpec, train: pl.DataFrame, valid: pl.DataFrame) -> dict[str, Forecaster]:
    baselines: dict[str, Forecaster] = {
        "zero": ZeroForecaster(spec.target),
        "mean": MeanForecaster(spec.target),
        "persistence": PersistenceForecaster(spec.lag_features[:1], spec.target),
    }
    return {name: model.fit(train, valid) for name, model in baselines.items()}


def predictions_frame(
    frame: pl.DataFrame,
    boundaries: SplitBoundaries,
    target: str,
    models: dict[str, Forecaster],
    splits: Sequence[str] = EVALUATION_SPLITS,
) -> pl.DataFrame:
    """``split, ts, actual`` plus one forecast column per model, for each evaluation split present."""
    parts = []
    for split in splits:
        if split not in boundaries.names:
            continue
        rows = boundaries.select(frame, split)
        parts.append(
            rows.select(
                pl.lit(split).alias("split"), "ts", pl.col(target).cast(pl.Float64).alias(ACTUAL)
            ).with_columns(pl.Series(name, model.predict(rows)) for name, model in models.items())
        )
    return pl.concat(parts)


def split_rows(frame: pl.DataFrame, spec: TrainingSpec) -> SplitBoundaries:
    """The split boundaries of a labelled frame (sorted by ts) as ``spec`` describes them."""
    oot2 = spec.oot2_rows if spec.oot2_rows is not None else round(frame.height * spec.oot2_fraction)
    positions = None
    if spec.labels_in_bars and frame.height:
        first = frame.row(0, named=True)
        positions = bar_positions(
            frame["ts"].cast(pl.Datetime("us", "UTC")).dt.epoch("us").to_numpy(),
            first["instrument"],
            bar_length(first["granularity"]),
            spec.calendar,
        )
    return make_splits(
        frame["ts"],
        spec.fractions,
        oot2,
        spec.horizon_minutes,
        spec.label_tolerance_minutes,
        tune_share=spec.tune_share,
        positions=positions,
        horizon_bars=spec.horizon_bars if spec.labels_in_bars else None,
    )


def train_candidate(gold: pl.DataFrame, spec: TrainingSpec) -> CandidateRun:
    """Split ``gold``, fit the candidate and the baselines on train (tuning and early stopping on the
    tune split), evaluate all on every evaluation split (valid, test, OOT, OOT2: rows none of them saw)."""
    if spec.model not in CANDIDATES:
        raise ModelError(f"unknown candidate {spec.model!r}; candidates are {', '.join(CANDIDATES)}")
    frame = labelled_frame(gold, spec)
    boundaries = split_rows(frame, spec)
    train = boundaries.select(frame, "train")
    tune = boundaries.select(frame, TUNE if TUNE in boundaries.names else "valid")
    started = time.perf_counter()
    model, tuning = fit_candidate(spec, train, tune)
    fit_seconds = time.perf_counter() - started
    log.info("%s fitted in %.1fs", spec.model, fit_seconds)
    baselines = fit_baselines(spec, train, tune)
    models = {spec.model: model, **baselines}
    predictions = predictions_frame(frame, boundaries, spec.target, models)
    evaluation = evaluate_predictions(
        predictions, list(models), spec.horizon_minutes, spec.horizon_bars, spec.cost_bps
    )
    return CandidateRun(
        name=spec.model,
        model=model,
        baselines=baselines,
        boundaries=boundaries,
        predictions=predictions,
        evaluation=evaluation,
        tuning=tuning,
        fit_seconds=fit_seconds,
        importance=model.feature_importance(),
    )
