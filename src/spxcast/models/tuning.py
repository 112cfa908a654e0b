"""Two-stage Optuna tuning of a boosting forecaster on validation RMSE.

Stage 1 ("coarse") searches the model's wide ranges; stage 2 ("fine") searches ranges narrowed around
the stage-1 optimum (:func:`spxcast.models.space.narrow`: inside the stage-1 ranges, containing the
optimum) and starts from the stage-1 optimum itself. Each trial trains with early stopping on the
rows it is given as validation — the ``tune`` split in training, never the ``valid`` rows selection judges
on — and reports that RMSE every ``report_every`` rounds to a median pruner.
Sampling is seeded (TPE). The library datasets are built once and reused by every trial; when the
training split is large, tuning uses its most recent ``tune_max_rows`` rows, and the winner is then
refitted on the whole training split with its early-stopped number of rounds.

Storage: in memory by default; with an RDB URL (SQLite or PostgreSQL) several processes running the same
``study_prefix`` share the two studies (``load_if_exists``) and stop once a stage has its trial count.
``workers > 1`` starts that many processes itself: this one and ``workers - 1`` trial workers (spawned,
ending with this process) run both stages against the shared storage; every trial records the process that
ran it (user attribute ``worker``, host:pid). With several workers the trial sequence depends on which
process finishes first, so tuning is not reproducible trial for trial (each worker's sampler is seeded
``seed + 1000 * worker``); the refit of the winner is.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna

from spxcast import progress
from spxcast.errors import ModelError
from spxcast.models.boosting import BoostingForecaster, TrialBudget
from spxcast.models.space import SearchSpace, narrow, space_from_dict, space_to_dict, suggest

log = logging.getLogger(__name__)

_RANGES_ATTR = "search_space"
_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
_WORKER_SEED_STEP = 1000
_WORKER_READY_S = 120.0


@dataclass(frozen=True)
class TuningConfig:
    """How to tune: trial counts, seed, threads, storage and early stopping.

    ``workers``: processes running the trials of each study together (> 1 needs ``storage``);
    ``worker_index``: which of them this process is (0: the one that started the others).
    """

    trials_coarse: int = 20
    trials_fine: int = 30
    seed: int = 42
    n_jobs: int = 1
    storage: str | None = None
    study_prefix: str = "spxcast"
    max_rounds: int = 500
    early_stopping_rounds: int = 20
    tune_max_rows: int = 150_000
    narrow_factor: float = 0.3
    report_every: int = 5
    workers: int = 1
    worker_index: int = 0


@dataclass
class StageResult:
    """One stage: its ranges, trial counts and best trial."""

    name: str
    space: SearchSpace
    trials: int
    pruned: int
    best_value: float
    best_params: dict[str, float | int]
    best_rounds: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "space": space_to_dict(self.space),
            "trials": self.trials,
            "pruned": self.pruned,
            "best_valid_rmse": self.best_value,
            "best_params": self.best_params,
            "best_rounds": self.best_rounds,
        }


@dataclass
class TuningResult:
    """Both stages and the winner (the better of the two stages' best trials)."""

    stages: list[StageResult] = field(default_factory=list)
    best_params: dict[str, float | int] = field(default_factory=dict)
    best_rounds: int = 0
    best_value: float = math.nan
    tuned_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": [s.to_dict() for s in self.stages],
            "best_params": self.best_params,
            "best_rounds": self.best_rounds,
            "best_valid_rmse": self.best_value,
            "tuned_rows": self.tuned_rows,
        }


def _objective(model: type[BoostingForecaster], data: Any, space: SearchSpace, config: TuningConfig) -> Any:
    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space)

        def report(iteration: int, rmse: float) -> None:
            if iteration % config.report_every:
                return
            trial.report(rmse, iteration)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at round {iteration} with valid RMSE {rmse:.6g}")

        budget = TrialBudget(
            config.max_rounds, config.early_stopping_rounds, config.n_jobs, config.seed, report
        )
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        rmse, rounds = model.run_trial(data, params, budget)
        trial.set_user_attr("best_rounds", rounds)
        return rmse

    return objective


def open_storage(url: str | None, attempts: int = 5) -> optuna.storages.BaseStorage | None:
    """The Optuna storage for ``url`` (``None``: in memory).

    Several processes may open a fresh database at once; their schema creation races, so a failed first
    connection is retried after a short pause (the winner's schema is then found in place).
    """
    if url is None:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(1, attempts + 1):
        try:
            return optuna.storages.RDBStorage(url)
        except SQLAlchemyError as exc:
            if attempt == attempts:
                raise ModelError(
                    f"cannot open the Optuna storage (after {attempts} attempts): {exc}"
                ) from exc
            log.info("Optuna storage not ready (%s); retrying", type(exc).__name__)
            time.sleep(0.2 * attempt)
    return None


def _report_trials(message: str, n_trials: int) -> Callable[[optuna.Study, Any], None]:
    """An Optuna callback reporting finished trials (of every process sharing the study) as progress."""

    def callback(study: optuna.Study, trial: Any) -> None:
        if progress.listening():
            finished = len(study.get_trials(deepcopy=False, states=_FINISHED))
            progress.report(min(finished, n_trials), n_trials, message)

    return callback


def _study(
    model: type[BoostingForecaster], name: str, n_trials: int, config: TuningConfig, seed_offset: int
) -> optuna.Study:
    seed = config.seed + seed_offset + _WORKER_SEED_STEP * config.worker_index
    return optuna.create_study(
        study_name=f"{config.study_prefix}-{model.kind}-{name}",
        storage=open_storage(config.storage),
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, n_trials)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2 * config.report_every),
        direction="minimize",
        load_if_exists=True,
    )


def _load_study(model: type[BoostingForecaster], name: str, config: TuningConfig) -> optuna.Study:
    """A stage's study as the shared storage holds it (workers > 1 always have a storage)."""
    assert config.storage is not None
    return optuna.load_study(study_name=f"{config.study_prefix}-{model.kind}-{name}", storage=config.storage)


def _stage_result(model: type[BoostingForecaster], study: optuna.Study, name: str) -> StageResult:
    """The stage as its study holds it now (trials of every process that shared it)."""
    trials = study.get_trials(deepcopy=False, states=_FINISHED)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ModelError(f"{model.kind} tuning stage {name}: none of {len(trials)} trials completed")
    best = min(complete, key=lambda t: (t.value, t.number))
    log.info("%s %s: best valid RMSE %.6g after %d trials", model.kind, name, best.value, len(trials))
    return StageResult(
        name=name,
        space=space_from_dict(study.user_attrs[_RANGES_ATTR]),
        trials=len(trials),
        pruned=len(trials) - len(complete),
        best_value=float(best.value),  # type: ignore[arg-type]
        best_params=dict(best.params),
        best_rounds=int(best.user_attrs["best_rounds"]),
    )


def run_stage(
    model: type[BoostingForecaster],
    data: Any,
    name: str,
    space: SearchSpace,
    n_trials: int,
    config: TuningConfig,
    seed_offset: int = 0,
    start_from: dict[str, float | int] | None = None,
) -> StageResult:
    """Run (or join, with a shared storage) one study until it holds ``n_trials`` finished trials.

    The first process to open the study records its ranges; the others search those.
    """
    study = _study(model, name, n_trials, config, seed_offset)
    recorded = study.user_attrs.get(_RANGES_ATTR)
    if recorded is None:
        study.set_user_attr(_RANGES_ATTR, space_to_dict(space))
    else:
        space = space_from_dict(recorded)
    if start_from is not None and config.worker_index == 0 and not study.trials:
        study.enqueue_trial(start_from)
    study.optimize(
        _objective(model, data, space, config),
        n_trials=n_trials,
        callbacks=[
            optuna.study.MaxTrialsCallback(n_trials, states=_FINISHED),
            _report_trials(f"{model.kind} {name} trials", n_trials),
        ],
    )
    return _stage_result(model, study, name)


def _trial_worker(
    model: type[BoostingForecaster],
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    config: TuningConfig,
    parent_pid: int,
    ready: Any,
) -> None:
    """A spawned trial worker: both stages against the shared storage, then exit (ends with its parent)."""
    from spxcast.processes import die_with_parent

    die_with_parent(parent_pid)
    ready.set()
    _tune_stages(model, *arrays, config)


@contextmanager
def _trial_workers(
    model: type[BoostingForecaster],
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    config: TuningConfig,
) -> Iterator[None]:
    """``config.workers - 1`` spawned trial workers while the body runs; waits for them at the end.

    They are started before this process's first trial (and waited for up to two minutes to start), so
    every process takes part from the first trial on. A worker that fails is logged: the trials it
    finished stay in the studies, and the others complete the stages without it.
    """
    if config.storage is None:
        raise ModelError(
            f"tuning with {config.workers} trial workers needs a storage they share: set "
            "training.optuna_storage (SPXCAST_TRAINING__OPTUNA_STORAGE) to a PostgreSQL URL"
        )
    context = multiprocessing.get_context("spawn")
    workers = []
    for index in range(1, config.workers):
        ready = context.Event()
        process = context.Process(
            target=_trial_worker,
            args=(model, arrays, replace(config, workers=1, worker_index=index), os.getpid(), ready),
            name=f"{model.kind}-trials-{index}",
        )
        process.start()
        workers.append((process, ready))
    try:
        for process, ready in workers:
            if not ready.wait(_WORKER_READY_S):
                log.warning(
                    "trial worker %s did not start in time; tuning goes on without waiting", process.name
                )
        yield
    finally:
        for process, _ in workers:
            process.join()
            if process.exitcode != 0:
                log.warning("trial worker %s ended with exit code %s", process.name, process.exitcode)


def _tune_stages(
    model: type[BoostingForecaster],
    x: np.ndarray,
    y: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    config: TuningConfig,
) -> list[StageResult]:
    """Both stages in this process (joining the shared studies when there is a storage)."""
    data = model.prepare_tuning_data(x, y, x_valid, y_valid, config.n_jobs)
    coarse = run_stage(model, data, "coarse", model.search_space, config.trials_coarse, config)
    if config.trials_fine <= 0:
        return [coarse]
    fine_space = narrow(model.search_space, coarse.best_params, config.narrow_factor)
    fine = run_stage(
        model,
        data,
        "fine",
        fine_space,
        config.trials_fine,
        config,
        seed_offset=1,
        start_from=coarse.best_params,
    )
    return [coarse, fine]


def tune_two_stage(
    model: type[BoostingForecaster],
    x: np.ndarray,
    y: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    config: TuningConfig,
) -> TuningResult:
    """Coarse then fine search; returns the winning hyperparameters and their early-stopped rounds.

    ``x``/``y`` are the training split in time order (the most recent ``tune_max_rows`` are used). With
    ``config.workers > 1`` the trial workers run alongside; the stages are read back from the studies once
    all have finished, so the winner is chosen among every process's trials.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if config.trials_coarse <= 0:
        raise ModelError(f"tuning {model.kind} needs at least one coarse trial; got {config.trials_coarse}")
    tail = slice(max(0, len(y) - config.tune_max_rows), len(y))
    arrays = (x[tail], y[tail], x_valid, y_valid)
    if config.workers > 1:
        with _trial_workers(model, arrays, config):
            stages = _tune_stages(model, *arrays, config)
        stages = [_stage_result(model, _load_study(model, s.name, config), s.name) for s in stages]
    else:
        stages = _tune_stages(model, *arrays, config)
    winner = min(stages, key=lambda stage: stage.best_value)  # the coarse stage on a tie
    return TuningResult(
        stages=stages,
        best_params=winner.best_params,
        best_rounds=winner.best_rounds,
        best_value=winner.best_value,
        tuned_rows=tail.stop - tail.start,
    )
