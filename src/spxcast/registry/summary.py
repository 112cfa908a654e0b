"""What ``spxcast models summary`` and ``make demo`` show: champion and challenger, their metrics next to
the baselines, the gate results, and where the report and the MLflow store are."""

from __future__ import annotations

from dataclasses import dataclass

from spxcast.config import mask_secrets
from spxcast.errors import RegistryError
from spxcast.registry.gates import GateReport, GateResult
from spxcast.registry.handoff import Metrics
from spxcast.registry.lifecycle import ModelRegistry, VersionInfo
from spxcast.registry.store import CHALLENGER, CHAMPION, Stage
from spxcast.registry.tracking import TAG_REPORT


@dataclass(frozen=True)
class VersionSummary:
    """One version with its metrics, gates and artifacts.

    ``gates`` are evaluated now for the challenger; for the champion they are the results recorded when it
    was promoted (``gates_note`` says which).
    """

    info: VersionInfo
    metrics: Metrics
    gates: GateReport | None
    gates_note: str
    artifact_uri: str
    report: str | None


@dataclass(frozen=True)
class RegistrySummary:
    model_name: str
    tracking_uri: str
    artifact_root: str
    champion: VersionSummary | None
    challenger: VersionSummary | None
    versions: int


def _report(registry: ModelRegistry, run_id: str) -> str | None:
    run = registry.client.get_run(run_id)
    relative = run.data.tags.get(TAG_REPORT)
    return f"{str(run.info.artifact_uri).rstrip('/')}/{relative}" if relative else None


def _recorded_gates(registry: ModelRegistry, version: int) -> tuple[GateReport | None, str]:
    for step in reversed(registry.history(version)):
        when = f"{step.at:%Y-%m-%d %H:%M} UTC by {step.actor}"
        if step.action in {"promote", "rollback"} and step.to_state == Stage.PRODUCTION.value:
            if step.gates is None:
                return None, f"{step.action} on {when}, no gates recorded"
            forced = " (FORCED: " + step.reason + ")" if step.forced else ""
            report = GateReport(tuple(GateResult(**g) for g in step.gates))
            return report, f"recorded at {step.action} on {when}{forced}"
    return None, "no promotion recorded"


def _version_summary(registry: ModelRegistry, info: VersionInfo, live_gates: bool) -> VersionSummary:
    if live_gates:
        try:
            gates: GateReport | None = registry.gates(info.version)
            note = "evaluated now against the current champion"
        except RegistryError as exc:
            gates, note = None, f"gates could not be evaluated: {exc}"
    else:
        gates, note = _recorded_gates(registry, info.version)
    run = registry.client.get_run(info.run_id)
    return VersionSummary(
        info=info,
        metrics=registry.metrics(info.version),
        gates=gates,
        gates_note=note,
        artifact_uri=str(run.info.artifact_uri),
        report=_report(registry, info.run_id),
    )


def summarize(registry: ModelRegistry) -> RegistrySummary:
    """Champion (with the gates recorded at its promotion) and challenger (gates evaluated now)."""
    champion = registry.by_alias(CHAMPION)
    challenger = registry.by_alias(CHALLENGER)
    return RegistrySummary(
        model_name=registry.name,
        tracking_uri=str(mask_secrets(registry.settings.tracking_uri())),
        artifact_root=registry.settings.mlflow_artifact_root() or "the tracking server's artifact store",
        champion=_version_summary(registry, champion, live_gates=False) if champion else None,
        challenger=_version_summary(registry, challenger, live_gates=True) if challenger else None,
        versions=len(registry.versions()),
    )
