"""``spxcast models``: the registered model of the configured instrument and horizon.

Verbs: list, summary, compare A B, promote [VERSION], rollback, archive VERSION, approve VERSION, history,
reproduce VERSION.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.table import Table

from spxcast.cli._common import console, handle_errors, settings
from spxcast.cli.render import print_json, print_table

if TYPE_CHECKING:
    from spxcast.registry import GateReport, ModelRegistry
    from spxcast.registry.handoff import Metrics
    from spxcast.registry.lifecycle import VersionInfo
    from spxcast.registry.summary import VersionSummary

app = typer.Typer(
    help="Registered models: champion/challenger, promotion gates, rollback, audit.", no_args_is_help=True
)

_PREFERRED = ("rmse", "mae", "r2_oos", "directional_accuracy", "ic", "dm_pvalue", "backtest_net_sharpe")
# Short headers (net_SR: net Sharpe ratio of the cost-aware backtest) so the table fits 80 columns.
_HEADER = {"directional_accuracy": "dir_acc", "dm_pvalue": "dm_p", "backtest_net_sharpe": "net_SR"}
_STAGE_STYLE = {"Production": "bold green", "Staging": "yellow", "Archived": "dim", "None": "white"}

JsonOption = typer.Option(False, "--json", help="Print one JSON document (every figure) instead of tables")
ReasonOption = typer.Option(None, "--reason", help="Why (recorded in the audit trail)")
ActorOption = typer.Option(None, "--by", help="Who acts (default registry.actor or the OS user)")


def _registry(ctx: typer.Context) -> ModelRegistry:
    from spxcast.registry import ModelRegistry

    return ModelRegistry(settings(ctx))


def _columns(metrics: Metrics) -> list[str]:
    present = {m for by in metrics.values() for values in by.values() for m in values}
    return [m for m in _PREFERRED if m in present] or sorted(present)[:7]


# Figures in the fewest characters that keep their meaning: RMSE/MAE in percent to 4 decimals, p-values in
# two significant digits.
_FORMAT = {"r2_oos": "+.3f", "directional_accuracy": ".3f", "ic": "+.3f", "dm_pvalue": ".2g"}


def _fmt(value: float | None, metric: str = "") -> str:
    if value is None:
        return ""
    return format(value, _FORMAT.get(metric, ".4f" if metric in {"rmse", "mae"} else ".4g"))


def metrics_table(title: str, metrics: Metrics) -> Table:
    """Rows: split x predictor (the model first, then the baselines); columns: the main metrics."""
    from spxcast.registry.handoff import BASELINES, MODEL, SPLITS

    columns = _columns(metrics)
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False
    )
    table.add_column("split", no_wrap=True)
    table.add_column("predictor", no_wrap=True)
    for column in columns:
        table.add_column(_HEADER.get(column, column), justify="right", no_wrap=True)
    splits = [s for s in SPLITS if s in metrics] + sorted(set(metrics) - set(SPLITS))
    for split in splits:
        others = sorted(p for p in metrics[split] if p not in (MODEL, *BASELINES))
        predictors = [p for p in (MODEL, *BASELINES) if p in metrics[split]] + others
        for i, predictor in enumerate(predictors):
            values = metrics[split].get(predictor, {})
            style = "bold" if predictor == MODEL else "dim"
            table.add_row(
                split if i == 0 else "",
                f"[{style}]{predictor}[/]",
                *(_fmt(values.get(c), c) for c in columns),
            )
    return table


def gates_table(title: str, report: GateReport) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("gate")
    table.add_column("result")
    table.add_column("figure")
    for result in report.results:
        table.add_row(result.name, "[green]pass[/]" if result.passed else "[red]FAIL[/]", result.figure)
    return table


def _show_version(role: str, summary: VersionSummary | None) -> None:
    if summary is None:
        console.print(f"[bold]{role}:[/] none")
        return
    info = summary.info
    run = info.tags.get("spxcast.pipeline_run_id", "?")
    console.print(
        f"[bold]{role}:[/] v{info.version} {info.candidate} [{_STAGE_STYLE[info.stage]}]{info.stage}[/] "
        f"registered {info.created_at:%Y-%m-%d %H:%M} UTC from run {run}"
    )
    print_table(metrics_table(f"{role} v{info.version}: metrics next to the baselines", summary.metrics))
    if summary.gates is not None:
        verdict = "[green]pass[/]" if summary.gates.passed else "[red]fail[/]"
        print_table(
            gates_table(
                f"{role} v{info.version} promotion gates: {verdict} ({summary.gates_note})", summary.gates
            )
        )
    else:
        console.print(f"gates: {summary.gates_note}")
    console.print(f"report: {summary.report or 'none logged'}")


def _version_json(info: VersionInfo, metrics: Metrics) -> dict[str, Any]:
    return {
        "version": info.version,
        "candidate": info.candidate,
        "stage": info.stage,
        "aliases": list(info.aliases),
        "registered_at": info.created_at,
        "pipeline_run_id": info.tags.get("spxcast.pipeline_run_id"),
        "metrics": metrics,
    }


def _summary_json(summary: VersionSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    gates = summary.gates
    return {
        **_version_json(summary.info, summary.metrics),
        "gates": None if gates is None else {"passed": gates.passed, "results": gates.to_json()},
        "gates_note": summary.gates_note,
        "report": summary.report,
        "artifact_uri": summary.artifact_uri,
    }


@app.command("list")
@handle_errors
def list_versions(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Every version with its lifecycle state, aliases and headline metrics."""
    registry = _registry(ctx)
    versions = registry.versions()
    if as_json:
        print_json(
            {
                "model_name": registry.name,
                "versions": [_version_json(info, registry.metrics(info.version)) for info in versions],
            }
        )
        return
    if not versions:
        console.print(f"{registry.name}: no version registered yet; run `spxcast pipeline run training`")
        return
    table = Table(title=registry.name, title_justify="left")
    for column in (
        "version",
        "state",
        "aliases",
        "candidate",
        "registered (UTC)",
        "test RMSE",
        "zero RMSE",
        "OOT DM p",
        "pipeline run",
    ):
        # Identity columns never shrink; the run id folds onto more lines on a narrow terminal.
        table.add_column(column, no_wrap=column in {"version", "state", "aliases"}, overflow="fold")
    for info in versions:
        metrics = registry.metrics(info.version)
        table.add_row(
            str(info.version),
            f"[{_STAGE_STYLE[info.stage]}]{info.stage}[/]",
            ", ".join(info.aliases),
            info.candidate,
            f"{info.created_at:%Y-%m-%d %H:%M}",
            _fmt(metrics.get("test", {}).get("model", {}).get("rmse")),
            _fmt(metrics.get("test", {}).get("zero", {}).get("rmse")),
            _fmt(metrics.get("oot", {}).get("model", {}).get("dm_pvalue")),
            info.tags.get("spxcast.pipeline_run_id", ""),
        )
    print_table(table)


@app.command("summary")
@handle_errors
def summary(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Champion and challenger, their metrics next to the baselines, and the promotion gates."""
    from spxcast.registry.summary import summarize

    result = summarize(_registry(ctx))
    if as_json:
        print_json(
            {
                "model_name": result.model_name,
                "versions": result.versions,
                "champion": _summary_json(result.champion),
                "challenger": _summary_json(result.challenger),
                "tracking_uri": result.tracking_uri,
                "artifact_root": result.artifact_root,
            }
        )
        return
    console.print(f"[bold]{result.model_name}[/]: {result.versions} version(s)")
    _show_version("champion", result.champion)
    _show_version("challenger", result.challenger)
    console.print(f"MLflow store: {result.tracking_uri}\nMLflow artifacts: {result.artifact_root}")


@app.command("compare")
@handle_errors
def compare(
    ctx: typer.Context,
    a: int = typer.Argument(..., help="Version A"),
    b: int = typer.Argument(..., help="Version B"),
) -> None:
    """Two versions side by side: metrics, lineage, and RMSE on the same most recent rows."""
    registry = _registry(ctx)
    infos = [registry.get(a), registry.get(b)]
    for info in infos:
        console.print(
            metrics_table(f"v{info.version} {info.candidate} ({info.stage})", registry.metrics(info.version))
        )
    lineage = Table(title="lineage", title_justify="left")
    lineage.add_column("")
    for info in infos:
        lineage.add_column(f"v{info.version}")
    records = [info.lineage for info in infos]
    for field in (
        "candidate",
        "pipeline_run_id",
        "code_version",
        "git_commit",
        "seeds",
        "lake_versions",
        "split_boundaries",
        "model_sha256",
    ):
        lineage.add_row(field, *(str(getattr(r, field)) if r else "" for r in records))
    lineage.add_row("features", *(str(len(r.features)) if r else "" for r in records))
    print_table(lineage)
    shared = registry.compare_on_shared_window(a, b)
    console.print(
        f"shared window {shared.window} ({shared.rows} rows): v{a} RMSE {shared.challenger_rmse:.5f}, "
        f"v{b} RMSE {shared.champion_rmse:.5f}"
    )


@app.command("promote")
@handle_errors
def promote(
    ctx: typer.Context,
    version: int | None = typer.Argument(None, help="Version to promote (default: the challenger)"),
    force: bool = typer.Option(False, "--force", help="Override failing gates (needs --reason; audited)"),
    reason: str | None = ReasonOption,
    actor: str | None = ActorOption,
) -> None:
    """Make a version the champion if every promotion gate passes (or with --force --reason).

    Without VERSION and without a challenger while a champion serves, there is nothing to do (exit 0).
    """
    from spxcast.registry import CHALLENGER, CHAMPION, PromotionRefused

    registry = _registry(ctx)
    champion = registry.by_alias(CHAMPION)
    if version is None and champion is not None and registry.by_alias(CHALLENGER) is None:
        console.print(f"nothing to promote: no challenger; v{champion.version} stays the champion")
        return
    try:
        result = registry.promote(version, force=force, reason=reason, actor=actor)
    except PromotionRefused as exc:
        print_table(gates_table("promotion gates: [red]fail[/]", exc.gates))
        raise
    print_table(gates_table("promotion gates", result.gates))
    forced = " [red](gates overridden, audited)[/]" if result.forced else ""
    replaced = (
        f"; v{result.previous_champion} archived and kept as rollback target"
        if result.previous_champion
        else ""
    )
    console.print(f"{registry.name} v{result.version} is the champion{forced}{replaced}")


@app.command("rollback")
@handle_errors
def rollback(ctx: typer.Context, reason: str | None = ReasonOption, actor: str | None = ActorOption) -> None:
    """Restore the previous champion in one step."""
    registry = _registry(ctx)
    restored, replaced = registry.rollback(reason, actor)
    console.print(
        f"{registry.name} v{restored} is the champion again" + (f"; v{replaced} archived" if replaced else "")
    )


@app.command("archive")
@handle_errors
def archive(
    ctx: typer.Context,
    version: int = typer.Argument(..., help="Version to archive"),
    reason: str | None = ReasonOption,
    actor: str | None = ActorOption,
) -> None:
    """Archive a version (not the champion); its aliases are removed."""
    registry = _registry(ctx)
    registry.archive(version, reason, actor)
    console.print(f"{registry.name} v{version} archived")


@app.command("approve")
@handle_errors
def approve(
    ctx: typer.Context,
    version: int = typer.Argument(..., help="Version to approve"),
    reason: str | None = ReasonOption,
    actor: str | None = ActorOption,
) -> None:
    """Record a manual approval (needed when registry.require_manual_approval is on)."""
    registry = _registry(ctx)
    registry.approve(version, reason, actor)
    console.print(f"{registry.name} v{version} approved")


@app.command("reproduce")
@handle_errors
def reproduce(ctx: typer.Context, version: int = typer.Argument(..., help="Version to retrain")) -> None:
    """Retrain a version from its lineage (same lake versions, config, seed); exit 1 unless the
    predictions are identical."""
    from spxcast.registry.reproduce import reproduce_version

    result = reproduce_version(_registry(ctx), version)
    verdict = "[green]identical[/]" if result.identical else "[red]DIFFERENT[/]"
    console.print(
        f"v{result.version} {result.candidate} retrained from lake versions {result.lake_versions}: "
        f"{verdict} predictions on {result.rows} rows (max |difference| {result.max_abs_difference:.3g}, "
        f"features {'match' if result.features_match else 'differ'})"
    )
    if not result.identical:
        raise typer.Exit(1)


@app.command("history")
@handle_errors
def history(
    ctx: typer.Context, version: int | None = typer.Argument(None, help="One version; default all")
) -> None:
    """The audit trail: who moved which version from which state to which, when and why."""
    registry = _registry(ctx)
    steps = registry.history(version)
    if not steps:
        console.print(f"{registry.name}: no audited steps yet")
        return
    table = Table(title=f"{registry.name} audit trail", title_justify="left")
    for column in ("when (UTC)", "version", "action", "from", "to", "by", "forced", "why"):
        table.add_column(column)
    for step in steps:
        table.add_row(
            f"{step.at:%Y-%m-%d %H:%M:%S}",
            str(step.version),
            step.action,
            step.from_state,
            step.to_state,
            step.actor,
            "[red]yes[/]" if step.forced else "",
            step.reason,
        )
    print_table(table)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")
