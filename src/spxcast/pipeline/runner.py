"""The local runner: executes a DAG with a process pool, records state in the app database, retries failed
tasks, and resumes a failed run without repeating the tasks that already succeeded.

Only this process touches the app database; workers run the task callables and send back what they
returned (or the error). A worker that dies (OOM, kill -9) fails its task, and the pool is rebuilt.
"""

from __future__ import annotations

import importlib
import json
import logging
import multiprocessing
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from spxcast.config import Settings
from spxcast.db import PipelineRun, TaskRun, connect
from spxcast.errors import PipelineError
from spxcast.lake import Lake
from spxcast.pipeline.context import TaskContext
from spxcast.pipeline.reuse import (
    REUSE_KEY,
    RecordingLake,
    Reusable,
    code_fingerprint,
    copy_artifacts,
    reuse_record,
    still_valid,
)
from spxcast.pipeline.spec import DAG, Task, find_task, get_dag

log = logging.getLogger(__name__)

SUCCEEDED, FAILED, RUNNING, UPSTREAM_FAILED = "succeeded", "failed", "running", "upstream_failed"


@dataclass(frozen=True)
class TaskEvent:
    """A state change the runner reports to its caller (for progress display)."""

    task: str
    status: str
    attempt: int
    seconds: float = 0.0
    error: str | None = None


@dataclass
class RunSummary:
    """What a run did: final status per task, their outputs and errors."""

    run_id: str
    dag: str
    status: str
    tasks: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _now() -> datetime:
    return datetime.now(UTC)


def resolve_callable(path: str) -> Callable[[TaskContext], Mapping[str, Any] | None]:
    module_name, function_name = path.split(":")
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, function_name)
    except (ImportError, AttributeError) as exc:
        raise PipelineError(f"task callable {path!r} cannot be imported: {exc}") from exc
    if not callable(function):
        raise PipelineError(f"task callable {path!r} is not callable")
    return function


def execute_task(
    settings: Settings, run_id: str, task: Task, code: str | None = None
) -> tuple[str, dict[str, Any] | str]:
    """Run one task in this process; returns ``("succeeded", outputs)`` or ``("failed", error text)``.

    The outputs carry the task's reuse record (tables read and written, fingerprints) under ``_reuse``;
    ``code`` is the code fingerprint (computed here when not given).
    """
    try:
        function = resolve_callable(task.callable)
        lake = RecordingLake(settings.lake_root(), settings.lake.storage_options)
        result = function(TaskContext(settings=settings, run_id=run_id, task=task.name, lake_override=lake))
        outputs = dict(result or {})
        outputs[REUSE_KEY] = reuse_record(settings, lake, task, code or code_fingerprint())
        json.dumps(outputs, default=str)
        return SUCCEEDED, outputs
    except Exception as exc:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-8))
        return FAILED, f"{type(exc).__name__}: {exc}\n{detail}"


class _Recorder:
    """Writes run and task state to the app database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start_run(self, run_id: str, dag: str) -> None:
        with Session(self.engine) as session, session.begin():
            run = session.get(PipelineRun, run_id)
            if run is None:
                session.add(PipelineRun(id=run_id, dag=dag, status=RUNNING, started_at=_now()))
            else:
                run.status, run.finished_at, run.error = RUNNING, None, None

    def finish_run(self, run_id: str, status: str, error: str | None) -> None:
        with Session(self.engine) as session, session.begin():
            run = session.get(PipelineRun, run_id)
            if run is not None:
                run.status, run.finished_at, run.error = status, _now(), error

    def start_task(self, run_id: str, task: str, attempt: int) -> int:
        with Session(self.engine) as session, session.begin():
            row = TaskRun(run_id=run_id, task=task, attempt=attempt, status=RUNNING, started_at=_now())
            session.add(row)
            session.flush()
            return int(row.id)

    def finish_task(
        self, row_id: int, status: str, outputs: dict[str, Any] | None, error: str | None
    ) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(TaskRun, row_id)
            if row is not None:
                row.status, row.finished_at, row.error = status, _now(), error
                row.outputs = json.dumps(outputs, default=str) if outputs is not None else None

    def latest_attempts(self, run_id: str) -> dict[str, TaskRun]:
        with Session(self.engine) as session:
            rows = session.scalars(select(TaskRun).where(TaskRun.run_id == run_id).order_by(TaskRun.id)).all()
            session.expunge_all()
        return {row.task: row for row in rows}

    def succeeded_attempts(self, task: str, exclude_run: str, limit: int = 10) -> list[TaskRun]:
        """The latest successful attempts of ``task`` in other runs, newest first."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(TaskRun)
                .where(TaskRun.task == task, TaskRun.status == SUCCEEDED, TaskRun.run_id != exclude_run)
                .order_by(TaskRun.id.desc())
                .limit(limit)
            ).all()
            session.expunge_all()
        return list(rows)

    def run_dag_name(self, run_id: str) -> str | None:
        with Session(self.engine) as session:
            run = session.get(PipelineRun, run_id)
            return None if run is None else run.dag


def _engine(settings: Settings) -> Engine:
    return connect(settings.db_url(), settings.db.sqlite_busy_timeout_ms)


def _find_reusable(
    settings: Settings, recorder: _Recorder, task: Task, run_id: str, code: str
) -> Reusable | None:
    """The newest earlier successful attempt of ``task`` whose result still holds (see pipeline.reuse)."""
    if not task.reusable:
        return None
    lake = Lake.from_settings(settings)
    runs = settings.artifacts_dir() / "runs"
    for row in recorder.succeeded_attempts(task.name, exclude_run=run_id):
        outputs = json.loads(row.outputs or "{}")
        record = outputs.get(REUSE_KEY)
        if isinstance(record, dict) and still_valid(record, settings, lake, code, runs / row.run_id, task):
            return Reusable(outputs.get("reused_from", row.run_id), outputs)
    return None


def _public(outputs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in outputs.items() if k != REUSE_KEY}


def run_dag(
    settings: Settings,
    dag: str | DAG,
    *,
    resume: str | None = None,
    workers: int | None = None,
    on_event: Callable[[TaskEvent], None] | None = None,
    reuse: bool = True,
) -> RunSummary:
    """Execute a DAG (by name or object), or resume run ``resume``; returns its summary.

    Task failures do not raise: they are recorded, retried up to the task's retries, and reported.
    With ``reuse``, a task whose inputs and outputs are unchanged since an earlier successful run is not
    executed again: its outputs and artifacts are taken from that run (:mod:`spxcast.pipeline.reuse`).
    """
    dag = get_dag(dag) if isinstance(dag, str) else dag
    dag_name = dag.name
    recorder = _Recorder(_engine(settings))
    done: dict[str, str] = {}
    attempts: dict[str, int] = {}
    outputs: dict[str, dict[str, Any]] = {}
    if resume is not None:
        previous = recorder.run_dag_name(resume)
        if previous is None:
            raise PipelineError(f"no pipeline run {resume!r} to resume; see `spxcast pipeline status`")
        if previous != dag_name:
            raise PipelineError(
                f"run {resume} ran DAG {previous!r}, not {dag_name!r}; resume it with that DAG"
            )
        for name, row in recorder.latest_attempts(resume).items():
            attempts[name] = row.attempt
            if row.status == SUCCEEDED and name in dag:
                done[name] = SUCCEEDED
                outputs[name] = _public(json.loads(row.outputs or "{}"))
    run_id = resume or f"{dag_name}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    recorder.start_run(run_id, dag_name)
    started = time.perf_counter()
    summary = RunSummary(run_id=run_id, dag=dag_name, status=RUNNING)
    emit = on_event or (lambda _event: None)
    for name in done:
        emit(TaskEvent(name, "skipped (succeeded earlier)", attempts[name]))

    pool_size = max(1, min(workers or settings.pipeline.workers, len(dag.tasks)))
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=pool_size, mp_context=context)
    running: dict[Future[tuple[str, Any]], tuple[str, int, int, float]] = {}
    # Attempts in this invocation (for retries); `attempts` continues the numbering of a resumed run.
    tries: dict[str, int] = {}

    def retries_of(task: Task) -> int:
        return settings.pipeline.default_retries if task.retries is None else task.retries

    def ready() -> list[str]:
        busy = {name for name, *_ in running.values()}
        return [
            name
            for name in dag.order()
            if name not in done
            and name not in busy
            and all(done.get(d) == SUCCEEDED for d in dag.internal_deps(name))
        ]

    code = code_fingerprint()
    run_dir = settings.artifacts_dir() / "runs" / run_id

    def take_over(name: str) -> bool:
        """Reuse an earlier result of ``name`` when it still holds; returns whether it did."""
        task = dag.task(name)
        found = _find_reusable(settings, recorder, task, run_id, code) if reuse else None
        if found is None:
            return False
        copy_artifacts(task, settings.artifacts_dir() / "runs" / found.run_id, run_dir)
        attempt = attempts.get(name, 0) + 1
        attempts[name] = attempt
        payload = {**found.outputs, "reused_from": found.run_id}
        recorder.finish_task(recorder.start_task(run_id, name, attempt), SUCCEEDED, payload, None)
        done[name], outputs[name] = SUCCEEDED, _public(payload)
        emit(TaskEvent(name, f"reused (from {found.run_id})", attempt))
        return True

    try:
        while True:
            progressed = True
            while progressed and len(running) < pool_size:
                progressed = False
                for name in ready():
                    if len(running) >= pool_size:
                        break
                    if take_over(name):
                        progressed = True
                        continue
                    attempt = attempts.get(name, 0) + 1
                    attempts[name] = attempt
                    tries[name] = tries.get(name, 0) + 1
                    row_id = recorder.start_task(run_id, name, attempt)
                    emit(TaskEvent(name, RUNNING, attempt))
                    future = pool.submit(execute_task, settings, run_id, dag.task(name), code)
                    running[future] = (name, attempt, row_id, time.perf_counter())
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name, attempt, row_id, t0 = running.pop(future)
                try:
                    status, payload = future.result()
                except BrokenProcessPool as exc:
                    status, payload = FAILED, f"worker process died: {exc}"
                    pool.shutdown(cancel_futures=False)
                    pool = ProcessPoolExecutor(max_workers=pool_size, mp_context=context)
                seconds = time.perf_counter() - t0
                if status == SUCCEEDED:
                    assert isinstance(payload, dict)
                    recorder.finish_task(row_id, SUCCEEDED, payload, None)
                    done[name], outputs[name] = SUCCEEDED, _public(payload)
                    emit(TaskEvent(name, SUCCEEDED, attempt, seconds))
                    continue
                error = str(payload)
                recorder.finish_task(row_id, FAILED, None, error)
                first_line = error.splitlines()[0] if error else "failed"
                log.warning("task %s attempt %d failed: %s", name, attempt, first_line)
                if tries[name] <= retries_of(dag.task(name)):
                    emit(TaskEvent(name, "retrying", attempt, seconds, first_line))
                    continue
                done[name] = FAILED
                summary.errors[name] = error
                emit(TaskEvent(name, FAILED, attempt, seconds, first_line))
                for child in dag.downstream(name):
                    if child not in done:
                        done[child] = UPSTREAM_FAILED
                        emit(TaskEvent(child, UPSTREAM_FAILED, 0))
    finally:
        pool.shutdown(cancel_futures=True)

    summary.tasks = {name: done.get(name, "not run") for name in dag.order()}
    summary.outputs = outputs
    summary.status = SUCCEEDED if all(s == SUCCEEDED for s in summary.tasks.values()) else FAILED
    summary.seconds = time.perf_counter() - started
    failed = sorted(n for n, s in summary.tasks.items() if s == FAILED)
    recorder.finish_run(run_id, summary.status, f"failed tasks: {', '.join(failed)}" if failed else None)
    return summary


def run_task(
    settings: Settings, task_name: str, run_id: str | None = None
) -> tuple[str, dict[str, Any] | str]:
    """Run one task in this process and record it (``spxcast pipeline task`` and Airflow call this)."""
    task = find_task(task_name)
    recorder = _Recorder(_engine(settings))
    run_id = run_id or f"task-{task_name}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    if recorder.run_dag_name(run_id) is None:
        recorder.start_run(run_id, f"task:{task_name}")
    previous = recorder.latest_attempts(run_id).get(task_name)
    row_id = recorder.start_task(run_id, task_name, (previous.attempt if previous else 0) + 1)
    status, payload = execute_task(settings, run_id, task)
    if status == SUCCEEDED:
        recorder.finish_task(row_id, status, payload if isinstance(payload, dict) else None, None)
    else:
        recorder.finish_task(row_id, status, None, str(payload))
    if recorder.run_dag_name(run_id) == f"task:{task_name}":
        recorder.finish_run(run_id, status, None if status == SUCCEEDED else f"failed task: {task_name}")
    return status, _public(payload) if isinstance(payload, dict) else payload


@dataclass(frozen=True)
class TaskState:
    task: str
    attempt: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class RunState:
    run_id: str
    dag: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    tasks: tuple[TaskState, ...]


def run_states(settings: Settings, run_id: str | None = None, limit: int = 10) -> list[RunState]:
    """Recent runs (or one run) with the latest attempt of each task, newest first."""
    engine = _engine(settings)
    with Session(engine) as session:
        query = select(PipelineRun).order_by(PipelineRun.started_at.desc())
        if run_id is not None:
            query = query.where(PipelineRun.id == run_id)
        runs = session.scalars(query.limit(limit)).all()
        if run_id is not None and not runs:
            raise PipelineError(f"no pipeline run {run_id!r}; see `spxcast pipeline status` for recent runs")
        states = []
        for run in runs:
            latest: dict[str, TaskRun] = {row.task: row for row in run.tasks}
            tasks = tuple(
                TaskState(r.task, r.attempt, r.status, r.started_at, r.finished_at, r.error)
                for r in latest.values()
            )
            states.append(RunState(run.id, run.dag, run.status, run.started_at, run.finished_at, tasks))
    return states
