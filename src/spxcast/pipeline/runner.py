"""The local runner: executes a DAG with a process pool, records state in the app database, retries failed
tasks, and resumes a failed run without repeating the tasks that already succeeded.

Only this process touches the app database; workers run the task callables and send back what they
returned (or the error). A worker that dies (OOM, kill -9) fails its task, and the pool is rebuilt; a
runner that dies takes its workers with it. One run at a time per home (a second is refused).
"""

from __future__ import annotations

import importlib
import json
import logging
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from spxcast.config import Settings, register_secrets
from spxcast.db import PipelineRun, TaskRun, connect
from spxcast.errors import PipelineError, redact
from spxcast.lake import Lake
from spxcast.locks import LockHeld, exclusive
from spxcast.pipeline import runs
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
from spxcast.processes import die_with_parent

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
    register_secrets(settings)  # a spawned worker has not loaded settings itself
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
        return FAILED, redact(f"{type(exc).__name__}: {exc}\n{detail}")


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
    for row in recorder.succeeded_attempts(task.name, exclude_run=run_id):
        outputs = json.loads(row.outputs or "{}")
        record = outputs.get(REUSE_KEY)
        if isinstance(record, dict) and still_valid(
            record, settings, lake, code, runs.run_dir(settings, row.run_id), task
        ):
            return Reusable(outputs.get("reused_from", row.run_id), outputs)
    return None


def _record_reuse(
    settings: Settings, recorder: _Recorder, task: Task, run_id: str, attempt: int, found: Reusable
) -> dict[str, Any]:
    """Take over ``found`` as ``task``'s attempt in ``run_id``: artifacts copied, recorded as succeeded."""
    copy_artifacts(task, runs.run_dir(settings, found.run_id), runs.run_dir(settings, run_id))
    payload = {**found.outputs, "reused_from": found.run_id}
    recorder.finish_task(recorder.start_task(run_id, task.name, attempt), SUCCEEDED, payload, None)
    return payload


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
    parent: str | None = None,
) -> RunSummary:
    """Execute a DAG (by name or object), or resume run ``resume``; returns its summary.

    Task failures do not raise: they are recorded, retried up to the task's retries, and reported.
    With ``reuse``, a task whose inputs and outputs are unchanged since an earlier successful run is not
    executed again: its outputs and artifacts are taken from that run (:mod:`spxcast.pipeline.reuse`).
    One run at a time per home: while another run holds the home, this one is refused with a
    :class:`PipelineError` naming it (see :func:`exclusive_home`). A child run started by a task of run
    ``parent`` (the monitoring task's automatic retrain) proceeds under that run's hold on the home.
    """
    dag = get_dag(dag) if isinstance(dag, str) else dag
    recorder = _Recorder(_engine(settings))
    if resume is not None:
        _check_resumable(recorder, resume, dag.name)
    run_id = resume or runs.new_run_id(dag.name)
    with exclusive_home(settings, f"run {run_id} (DAG {dag.name})", parent=parent):
        run = _Run(settings, dag, recorder, run_id, on_event or (lambda _event: None), reuse)
        if resume is not None:
            run.restore_succeeded()
        recorder.start_run(run_id, dag.name)
        started = time.perf_counter()
        pool = _WorkerPool(max(1, min(workers or settings.pipeline.workers, len(dag.tasks))))
        try:
            while run.launch_ready(pool):
                finished, _ = wait(run.running, return_when=FIRST_COMPLETED)
                for future in finished:
                    run.collect(future, pool)
        finally:
            pool.close()
        summary = run.summary(time.perf_counter() - started)
        failed = sorted(n for n, s in summary.tasks.items() if s == FAILED)
        recorder.finish_run(run_id, summary.status, f"failed tasks: {', '.join(failed)}" if failed else None)
    return summary


def _check_resumable(recorder: _Recorder, run_id: str, dag_name: str) -> None:
    previous = recorder.run_dag_name(run_id)
    if previous is None:
        raise PipelineError(f"no pipeline run {run_id!r} to resume; see `spxcast pipeline status`")
    if previous != dag_name:
        raise PipelineError(f"run {run_id} ran DAG {previous!r}, not {dag_name!r}; resume it with that DAG")


@contextmanager
def exclusive_home(settings: Settings, holder: str, parent: str | None = None) -> Iterator[None]:
    """Hold the home's pipeline lock (``<home>/state/pipeline.lock``) or refuse with a clear error.

    Two runs on one home would take each other's half-finished tasks for reusable results. The lock is
    released by the kernel when its holder dies (``kill -9`` included), so a crashed run never blocks
    the next one.

    ``parent``: the run whose task asks for this one. When that run holds the lock (its holder line names
    it: ``holder`` of :func:`run_dag` starts with ``run <id> ``), this run goes on under its hold: the
    parent waits on the asking task, so no other run can start in between. Held by any other run, the
    child is refused like any run.
    """
    description = f"{holder}, pid {os.getpid()}, started {_now():%Y-%m-%d %H:%M:%S} UTC"
    with ExitStack() as stack:
        try:
            stack.enter_context(
                exclusive(
                    settings.home.resolve() / "state" / "pipeline.lock", blocking=False, holder=description
                )
            )
        except LockHeld as exc:
            if parent is None or not exc.holder.startswith(f"run {parent} "):
                raise PipelineError(
                    f"another pipeline run is in progress on home {settings.home}: "
                    f"{exc.holder or 'starting'}; wait for it to finish (see `spxcast pipeline status`) or "
                    "stop it, then run again"
                ) from None
            log.info("%s runs under the hold of its parent run %s on the home", holder, parent)
        yield


class _WorkerPool:
    """A spawn process pool whose workers die with this process and that is rebuilt when one dies."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )

    def submit(self, *args: Any) -> Future[tuple[str, Any]]:
        return self._pool.submit(execute_task, *args)

    def rebuild(self) -> None:
        """Replace a broken pool (a worker died: OOM, kill -9)."""
        self._pool.shutdown(cancel_futures=False)
        self._pool = self._new()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


@dataclass
class _Attempt:
    """A task attempt in flight in the pool."""

    task: str
    attempt: int
    row_id: int
    started: float


class _Run:
    """The state of one invocation of a DAG, and the steps that move it forward.

    ``state`` holds each settled task's final status (succeeded, failed, upstream_failed); ``attempts``
    continues the attempt numbering of a resumed run; ``tries`` counts attempts in this invocation (for
    retries); ``running`` maps the pool's futures to their attempts.
    """

    def __init__(
        self,
        settings: Settings,
        dag: DAG,
        recorder: _Recorder,
        run_id: str,
        emit: Callable[[TaskEvent], None],
        reuse: bool,
    ) -> None:
        self.settings, self.dag, self.recorder, self.run_id = settings, dag, recorder, run_id
        self.emit, self.reuse = emit, reuse
        self.code = code_fingerprint()
        self.run_dir = runs.run_dir(settings, run_id)
        self.state: dict[str, str] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self.tries: dict[str, int] = {}
        self.running: dict[Future[tuple[str, Any]], _Attempt] = {}

    def restore_succeeded(self) -> None:
        """Take over the tasks that succeeded in the run being resumed (they are not run again)."""
        for name, row in self.recorder.latest_attempts(self.run_id).items():
            self.attempts[name] = row.attempt
            if row.status == SUCCEEDED and name in self.dag:
                self.state[name] = SUCCEEDED
                self.outputs[name] = _public(json.loads(row.outputs or "{}"))
                self.emit(TaskEvent(name, "skipped (succeeded earlier)", row.attempt))

    def ready(self) -> list[str]:
        """Tasks not settled nor running whose upstream tasks all succeeded, in DAG order."""
        busy = {a.task for a in self.running.values()}
        return [
            name
            for name in self.dag.order()
            if name not in self.state
            and name not in busy
            and all(self.state.get(d) == SUCCEEDED for d in self.dag.internal_deps(name))
        ]

    def launch_ready(self, pool: _WorkerPool) -> bool:
        """Reuse or submit ready tasks while the pool has room; returns whether any task is running."""
        progressed = True
        while progressed and len(self.running) < pool.size:
            progressed = False
            for name in self.ready():
                if len(self.running) >= pool.size:
                    break
                if self.take_over(name):
                    progressed = True  # its downstream tasks may be ready now
                else:
                    self.submit(name, pool)
        return bool(self.running)

    def _next_attempt(self, name: str) -> int:
        self.attempts[name] = self.attempts.get(name, 0) + 1
        return self.attempts[name]

    def take_over(self, name: str) -> bool:
        """Reuse an earlier result of ``name`` when it still holds; returns whether it did."""
        task = self.dag.task(name)
        found = (
            _find_reusable(self.settings, self.recorder, task, self.run_id, self.code) if self.reuse else None
        )
        if found is None:
            return False
        attempt = self._next_attempt(name)
        payload = _record_reuse(self.settings, self.recorder, task, self.run_id, attempt, found)
        self.state[name], self.outputs[name] = SUCCEEDED, _public(payload)
        self.emit(TaskEvent(name, f"reused (from {found.run_id})", attempt))
        return True

    def submit(self, name: str, pool: _WorkerPool) -> None:
        attempt = self._next_attempt(name)
        self.tries[name] = self.tries.get(name, 0) + 1
        row_id = self.recorder.start_task(self.run_id, name, attempt)
        self.emit(TaskEvent(name, RUNNING, attempt))
        future = pool.submit(self.settings, self.run_id, self.dag.task(name), self.code)
        self.running[future] = _Attempt(name, attempt, row_id, time.perf_counter())

    def collect(self, future: Future[tuple[str, Any]], pool: _WorkerPool) -> None:
        """Record a finished attempt: success, a retry, or a failure that settles its downstream tasks."""
        done = self.running.pop(future)
        try:
            status, payload = future.result()
        except BrokenProcessPool as exc:
            status, payload = FAILED, f"worker process died: {exc}"
            pool.rebuild()
        seconds = time.perf_counter() - done.started
        if status == SUCCEEDED:
            assert isinstance(payload, dict)
            self.recorder.finish_task(done.row_id, SUCCEEDED, payload, None)
            self.state[done.task], self.outputs[done.task] = SUCCEEDED, _public(payload)
            self.emit(TaskEvent(done.task, SUCCEEDED, done.attempt, seconds))
            return
        error = str(payload)
        self.recorder.finish_task(done.row_id, FAILED, None, error)
        first_line = error.splitlines()[0] if error else "failed"
        log.warning("task %s attempt %d failed: %s", done.task, done.attempt, first_line)
        if self.tries[done.task] <= self._retries(done.task):
            self.emit(TaskEvent(done.task, "retrying", done.attempt, seconds, first_line))
            return
        self.state[done.task] = FAILED
        self.errors[done.task] = error
        self.emit(TaskEvent(done.task, FAILED, done.attempt, seconds, first_line))
        for child in self.dag.downstream(done.task):
            if child not in self.state:
                self.state[child] = UPSTREAM_FAILED
                self.emit(TaskEvent(child, UPSTREAM_FAILED, 0))

    def _retries(self, name: str) -> int:
        task = self.dag.task(name)
        return self.settings.pipeline.default_retries if task.retries is None else task.retries

    def summary(self, seconds: float) -> RunSummary:
        tasks = {name: self.state.get(name, "not run") for name in self.dag.order()}
        status = SUCCEEDED if all(s == SUCCEEDED for s in tasks.values()) else FAILED
        return RunSummary(self.run_id, self.dag.name, status, tasks, self.outputs, self.errors, seconds)


def run_task(
    settings: Settings, task_name: str, run_id: str | None = None, *, reuse: bool = True
) -> tuple[str, dict[str, Any] | str]:
    """Run one task in this process and record it (``spxcast pipeline task`` and Airflow call this).

    With ``reuse`` the task is not executed when an earlier successful result of it still holds (as in
    :func:`run_dag`); its outputs then carry ``reused_from``.
    """
    task = find_task(task_name)
    recorder = _Recorder(_engine(settings))
    run_id = run_id or runs.new_run_id(f"task-{task_name}")
    if recorder.run_dag_name(run_id) is None:
        recorder.start_run(run_id, f"task:{task_name}")
    previous = recorder.latest_attempts(run_id).get(task_name)
    attempt = (previous.attempt if previous else 0) + 1
    code = code_fingerprint()
    found = _find_reusable(settings, recorder, task, run_id, code) if reuse else None
    payload: dict[str, Any] | str
    if found is not None:
        status, payload = SUCCEEDED, _record_reuse(settings, recorder, task, run_id, attempt, found)
    else:
        row_id = recorder.start_task(run_id, task_name, attempt)
        status, payload = execute_task(settings, run_id, task, code)
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
        pipeline_runs = session.scalars(query.limit(limit)).all()
        if run_id is not None and not pipeline_runs:
            raise PipelineError(f"no pipeline run {run_id!r}; see `spxcast pipeline status` for recent runs")
        states = []
        for run in pipeline_runs:
            latest: dict[str, TaskRun] = {row.task: row for row in run.tasks}
            tasks = tuple(
                TaskState(r.task, r.attempt, r.status, r.started_at, r.finished_at, r.error)
                for r in latest.values()
            )
            states.append(RunState(run.id, run.dag, run.status, run.started_at, run.finished_at, tasks))
    return states
