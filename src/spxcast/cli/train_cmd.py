"""``spxcast train`` and ``spxcast evaluate``: thin wrappers over the training tasks and evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from spxcast.cli._common import console, err_console, handle_errors, settings
from spxcast.errors import ConfigError, ModelError, PipelineError

EVALUATION_SPLITS = ("valid", "test", "oot", "oot2")


def _show_run(run_dir: Path, evaluations: dict[str, dict[str, Any]]) -> None:
    from spxcast.evaluation.report import console_table
    from spxcast.pipeline.runs import candidate_dir, selection_file

    for name, evaluation in evaluations.items():
        title = f"{name} vs baselines ({evaluation['cost_bps']:g} bps round trip)"
        console.print(console_table(evaluation["models"], EVALUATION_SPLITS, title))
        console.print(f"  report: {candidate_dir(run_dir, name) / evaluation['report']}")
    selected_file = selection_file(run_dir)
    if selected_file.is_file():
        selection = json.loads(selected_file.read_text())
        chosen = selection["selected"]
        verdict = f"[green]{chosen}[/]" if chosen else "[red]none[/] (no candidate beats the zero forecast)"
        console.print(f"selected: {verdict}")
        for name, reason in selection["reasons"].items():
            console.print(f"  {name}: {reason}")
        console.print(f"  selection: {selected_file}")


@handle_errors
def train(
    ctx: typer.Context,
    models: str | None = typer.Option(
        None, "--models", help="Comma-separated: lightgbm,xgboost,ar (default: all)"
    ),
    trials_coarse: int | None = typer.Option(None, "--trials-coarse", min=1, help="Stage-1 Optuna trials"),
    trials_fine: int | None = typer.Option(None, "--trials-fine", min=0, help="Stage-2 Optuna trials"),
    run_id: str | None = typer.Option(None, "--run-id", help="Run id (default: a new one)"),
) -> None:
    """Train the candidates on gold.features, evaluate them next to the baselines, select one."""
    from spxcast.models.train import CANDIDATES
    from spxcast.pipeline.runner import run_task
    from spxcast.pipeline.runs import new_run_id, run_dir
    from spxcast.pipeline.tasks.training import read_evaluations

    s = settings(ctx, **{"training.trials_coarse": trials_coarse, "training.trials_fine": trials_fine})
    names = [m.strip() for m in models.split(",") if m.strip()] if models else list(s.training.models)
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown or not names:
        raise ConfigError(f"--models takes some of {', '.join(CANDIDATES)}; got {models!r}")
    run_id = run_id or new_run_id("train")
    for task in [*(f"train_{m}" for m in names), "select_model"]:
        err_console.print(f"  running {task} …")
        status, payload = run_task(s, task, run_id)
        if status != "succeeded":
            raise PipelineError(f"task {task} of run {run_id} failed: {str(payload).splitlines()[0]}")
    folder = run_dir(s, run_id)
    console.print(f"run [bold]{run_id}[/]: {folder}")
    _show_run(folder, read_evaluations(folder))


@handle_errors
def evaluate(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="Run id (under <home>/artifacts/runs) or a run directory"),
    cost_bps: float | None = typer.Option(None, "--cost-bps", min=0, help="Re-run the backtest at this cost"),
) -> None:
    """Rebuild and print the evaluation of a finished training run from its directory."""
    from spxcast.pipeline.runs import resolve_run
    from spxcast.pipeline.tasks.training import rebuild_evaluations

    run_dir = resolve_run(settings(ctx), run)
    if not run_dir.is_dir():
        raise ModelError(
            f"no run directory {run_dir}; pass a run id from `spxcast pipeline status` or a path"
        )
    _show_run(run_dir, rebuild_evaluations(run_dir, cost_bps))


def register(root: typer.Typer) -> None:
    root.command("train")(train)
    root.command("evaluate")(evaluate)
