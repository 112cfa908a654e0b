"""``spxcast train`` and ``spxcast evaluate``: thin wrappers over the training tasks and evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from spxcast.cli._common import console, err_console, handle_errors, progress, settings
from spxcast.cli.render import bar_per_message, print_json, print_table
from spxcast.errors import ConfigError, ModelError, PipelineError

EVALUATION_SPLITS = ("valid", "test", "oot", "oot2")


JsonOption = typer.Option(False, "--json", help="Print one JSON document (every figure) instead of tables")


def _selection(run_dir: Path) -> dict[str, Any] | None:
    from spxcast.pipeline.runs import selection_file

    path = selection_file(run_dir)
    return json.loads(path.read_text()) if path.is_file() else None


def _show_run(run_dir: Path, evaluations: dict[str, dict[str, Any]], as_json: bool) -> None:
    """The evaluations of a run's candidates next to the baselines, and the selection if made."""
    from spxcast.evaluation.report import console_table
    from spxcast.pipeline.runs import candidate_dir, selection_file

    selection = _selection(run_dir)
    reports = {name: candidate_dir(run_dir, name) / e["report"] for name, e in evaluations.items()}
    if as_json:
        print_json(
            {
                "run_id": run_dir.name,
                "run_dir": run_dir,
                "evaluations": {
                    name: {**evaluation, "report": reports[name]} for name, evaluation in evaluations.items()
                },
                "selection": selection,
            }
        )
        return
    console.print(f"run [bold]{run_dir.name}[/]: {run_dir}")
    for name, evaluation in evaluations.items():
        title = f"{name} vs baselines ({evaluation['cost_bps']:g} bps round trip)"
        print_table(console_table(evaluation["models"], EVALUATION_SPLITS, title))
        console.print(f"  report: {reports[name]}")
    if selection is not None:
        chosen = selection["selected"]
        verdict = f"[green]{chosen}[/]" if chosen else "[red]none[/] (no candidate beats the zero forecast)"
        console.print(f"selected: {verdict}")
        for name, reason in selection["reasons"].items():
            console.print(f"  {name}: {reason}")
        console.print(f"  selection: {selection_file(run_dir)}")


@handle_errors
def train(
    ctx: typer.Context,
    models: str | None = typer.Option(
        None, "--models", help="Comma-separated: lightgbm,xgboost,ar (default: all)"
    ),
    trials_coarse: int | None = typer.Option(None, "--trials-coarse", min=1, help="Stage-1 Optuna trials"),
    trials_fine: int | None = typer.Option(None, "--trials-fine", min=0, help="Stage-2 Optuna trials"),
    run_id: str | None = typer.Option(None, "--run-id", help="Run id (default: a new one)"),
    as_json: bool = JsonOption,
) -> None:
    """Train the candidates on gold.features, evaluate them next to the baselines, select one."""
    from spxcast.models.train import CANDIDATES
    from spxcast.pipeline.runner import run_task
    from spxcast.pipeline.runs import new_run_id, run_dir
    from spxcast.pipeline.tasks.training import read_evaluations
    from spxcast.progress import reporting

    s = settings(ctx, **{"training.trials_coarse": trials_coarse, "training.trials_fine": trials_fine})
    names = [m.strip() for m in models.split(",") if m.strip()] if models else list(s.training.models)
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown or not names:
        raise ConfigError(f"--models takes some of {', '.join(CANDIDATES)}; got {models!r}")
    run_id = run_id or new_run_id("train")
    with progress() as bar, reporting(bar_per_message(bar)):
        for task in [*(f"train_{m}" for m in names), "select_model"]:
            err_console.print(f"  running {task} …")
            status, payload = run_task(s, task, run_id)
            if status != "succeeded":
                raise PipelineError(f"task {task} of run {run_id} failed: {str(payload).splitlines()[0]}")
    folder = run_dir(s, run_id)
    _show_run(folder, read_evaluations(folder), as_json)


@handle_errors
def evaluate(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="Run id (under <home>/artifacts/runs) or a run directory"),
    cost_bps: float | None = typer.Option(None, "--cost-bps", min=0, help="Re-run the backtest at this cost"),
    as_json: bool = JsonOption,
) -> None:
    """Rebuild and print the evaluation of a finished training run from its directory."""
    from spxcast.pipeline.runs import resolve_run
    from spxcast.pipeline.tasks.training import rebuild_evaluations

    run_dir = resolve_run(settings(ctx), run)
    if not run_dir.is_dir():
        raise ModelError(
            f"no run directory {run_dir}; pass a run id from `spxcast pipeline status` or a path"
        )
    _show_run(run_dir, rebuild_evaluations(run_dir, cost_bps), as_json)


def register(root: typer.Typer) -> None:
    root.command("train")(train)
    root.command("evaluate")(evaluate)
