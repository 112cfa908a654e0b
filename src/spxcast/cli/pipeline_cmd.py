"""``spxcast pipeline``: run DAGs and single tasks, show run state."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from spxcast.cli._common import (
    console,
    debugging,
    err_console,
    fail,
    handle_errors,
    outputs_line,
    settings,
)
from spxcast.cli.render import print_table

app = typer.Typer(help="Run pipeline DAGs and tasks with the local runner.", no_args_is_help=True)

_STYLE = {"succeeded": "green", "failed": "red", "running": "yellow", "upstream_failed": "magenta"}


@app.command("run")
@handle_errors
def run(
    ctx: typer.Context,
    dag: str = typer.Argument("full", help="DAG name: ingest, training or full"),
    resume: str | None = typer.Option(
        None, "--resume", help="Resume this run id; succeeded tasks are skipped"
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Processes (default: the machine's cores)"
    ),
    rerun_all: bool = typer.Option(False, "--rerun-all", help="Run every task, even unchanged ones"),
) -> None:
    """Run a DAG; exit code 1 when any task failed (resume it with --resume RUN_ID)."""
    from spxcast.pipeline.runner import TaskEvent, run_dag

    def show(event: TaskEvent) -> None:
        style = _STYLE.get(event.status, "cyan")
        timing = f" in {event.seconds:.1f}s" if event.seconds else ""
        error = f": {event.error}" if event.error else ""
        err_console.print(
            f"  [{style}]{event.status:>10}[/] {event.task} (attempt {event.attempt}){timing}{error}"
        )

    summary = run_dag(settings(ctx), dag, resume=resume, workers=workers, on_event=show, reuse=not rerun_all)
    style = _STYLE.get(summary.status, "white")
    console.print(f"run [bold]{summary.run_id}[/] [{style}]{summary.status}[/] in {summary.seconds:.1f}s")
    if summary.status != "succeeded":
        raise fail(
            "some tasks failed; fix the cause and rerun with: "
            f"spxcast pipeline run {dag} --resume {summary.run_id}"
        )


@app.command("task")
@handle_errors
def task(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Task name (see `spxcast pipeline dags`)"),
    run_id: str | None = typer.Option(
        None, "--run-id", help="Record under this run id (Airflow passes its own)"
    ),
    rerun: bool = typer.Option(False, "--rerun", help="Run it even when an earlier result still holds"),
) -> None:
    """Run one task in this process (an earlier result whose inputs are unchanged is reused)."""
    from spxcast.pipeline.runner import run_task

    status, payload = run_task(settings(ctx), name, run_id, reuse=not rerun)
    if status != "succeeded":
        detail = str(payload) if debugging() else str(payload).splitlines()[0]
        raise fail(f"task {name} failed: {detail}" + ("" if debugging() else " (--debug for the traceback)"))
    assert isinstance(payload, dict)
    reused = payload.pop("reused_from", None)
    verdict = "[green]succeeded[/]" if reused is None else f"[cyan]reused[/] (from {reused})"
    console.print(f"task [bold]{name}[/] {verdict}: {outputs_line(payload)}", highlight=False)


@app.command("status")
@handle_errors
def status(
    ctx: typer.Context,
    run_id: str | None = typer.Argument(None, help="One run in detail; default: recent runs"),
    limit: int = typer.Option(10, "--limit", min=1),
) -> None:
    """Recent pipeline runs and their tasks."""
    from spxcast.pipeline.runner import run_states

    states = run_states(settings(ctx), run_id, limit)
    if not states:
        console.print("no pipeline runs yet; start one with `spxcast pipeline run`")
        return
    for state in states:
        style = _STYLE.get(state.status, "white")
        table = Table(title=f"{state.run_id} ({state.dag}) [{style}]{state.status}[/]", title_justify="left")
        for column in ("task", "attempt", "status", "started", "seconds", "error"):
            table.add_column(column)
        for t in state.tasks:
            seconds = f"{(t.finished_at - t.started_at).total_seconds():.1f}" if t.finished_at else ""
            error = (t.error or "").splitlines()[0][:80] if t.error else ""
            table.add_row(
                t.task,
                str(t.attempt),
                f"[{_STYLE.get(t.status, 'white')}]{t.status}[/]",
                f"{t.started_at:%Y-%m-%d %H:%M:%S}",
                seconds,
                error,
            )
        print_table(table)


@app.command("dags")
def dags() -> None:
    """List DAGs and their tasks in execution order."""
    from spxcast.pipeline.spec import DAGS

    for dag in DAGS.values():
        table = Table(title=f"{dag.name}: {dag.description}", title_justify="left")
        table.add_column("task")
        table.add_column("depends on")
        table.add_column("what it does")
        for name in dag.order():
            t = dag.task(name)
            table.add_row(name, ", ".join(dag.internal_deps(name)), t.description)
        print_table(table)


@app.command("airflow")
@handle_errors
def airflow(
    ctx: typer.Context,
    out: Path = typer.Option(Path("deploy/airflow/dags"), "--out", help="Folder of the DAG files"),
    command: str | None = typer.Option(
        None, "--command", help="spxcast executable on the workers; default $SPXCAST_BIN or spxcast"
    ),
) -> None:
    """Generate one Airflow DAG file per DAG of the pipeline spec (one BashOperator per task).

    Schedules come from `pipeline.schedules` in the settings; a file whose DAG left the spec is removed.
    """
    from spxcast.pipeline.airflow import render_airflow_dags, write_airflow_dags

    files = render_airflow_dags(settings(ctx).pipeline, command=command)
    removed = write_airflow_dags(out, files)
    for name in files:
        console.print(f"wrote {out / name}")
    for path in removed:
        console.print(f"removed {path} (its DAG is no longer in the spec)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="pipeline")
