"""The registered model of one instrument and horizon: versions, aliases, lifecycle, gates and audit.

Every state change is a tag change on the version (``spxcast.lifecycle``), an alias move, and a row in the
app database's audit trail (who, when, from which state, to which, why, with the gate results).

- ``register``: None -> Staging, alias ``challenger`` (the previous challenger -> Archived, superseded).
- ``promote``: Staging/Archived -> Production, alias ``champion``, only when every gate passes or with an
  explicit ``force`` and a reason; the previous champion -> Archived and becomes ``previous_champion``.
- ``rollback``: one step back: ``previous_champion`` -> Production + ``champion``; the current champion ->
  Archived.
- ``archive``: any version but the champion -> Archived, its aliases removed.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from spxcast.config import Settings
from spxcast.db import connect
from spxcast.errors import RegistryError
from spxcast.features.catalog import feature_catalog
from spxcast.features.labels import label_names
from spxcast.lake import Lake
from spxcast.registry import audit
from spxcast.registry.gates import ChampionComparison, GateReport, evaluate_gates
from spxcast.registry.handoff import Metrics
from spxcast.registry.lineage import Lineage
from spxcast.registry.store import (
    CHALLENGER,
    CHAMPION,
    LIFECYCLE_TAG,
    PREVIOUS_CHAMPION,
    Stage,
    experiment_id,
    mlflow_client,
    model_name_of,
)
from spxcast.registry.tracking import (
    MODEL_ARTIFACT,
    TAG_CANDIDATE,
    TAG_MODEL_SHA,
    TAG_PIPELINE_RUN,
    metrics_from_keys,
)
from spxcast.registry.window import (
    Predictor,
    default_loader,
    fitted_until,
    recent_window,
    window_rmse,
)

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

TAG_LINEAGE = "spxcast.lineage"
TAG_APPROVED_BY = "spxcast.approved_by"


@dataclass(frozen=True)
class VersionInfo:
    """One registered version as the registry sees it."""

    model_name: str
    version: int
    stage: Stage
    aliases: tuple[str, ...]
    run_id: str
    candidate: str
    created_at: datetime
    tags: dict[str, str] = field(repr=False)

    @property
    def lineage(self) -> Lineage | None:
        text = self.tags.get(TAG_LINEAGE)
        return Lineage.from_json(text) if text else None

    @property
    def approved_by(self) -> str | None:
        return self.tags.get(TAG_APPROVED_BY)


@dataclass(frozen=True)
class PromotionResult:
    """What ``promote`` did: the new champion, the one it replaced, the gates and whether they were forced."""

    version: int
    previous_champion: int | None
    gates: GateReport
    forced: bool


class PromotionRefused(RegistryError):
    """The gates failed and no override was given; ``gates`` holds every result."""

    def __init__(self, message: str, gates: GateReport) -> None:
        super().__init__(message)
        self.gates = gates


class ModelRegistry:
    """The registered model of ``settings``' instrument, bar size and horizon."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = mlflow_client(settings)
        self.engine = connect(settings.db_url(), settings.db.sqlite_busy_timeout_ms)
        self.name = model_name_of(settings)

    # ----- reading
    def experiment_id(self) -> str:
        return experiment_id(self.client, self.settings)

    def _info(self, mv: ModelVersion, aliases: tuple[str, ...] | None = None) -> VersionInfo:
        tags = dict(mv.tags or {})
        created = datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, UTC)
        return VersionInfo(
            model_name=self.name,
            version=int(mv.version),
            stage=Stage(tags.get(LIFECYCLE_TAG, Stage.NONE.value)),
            aliases=tuple(sorted(mv.aliases or ())) if aliases is None else aliases,
            run_id=str(mv.run_id),
            candidate=tags.get(TAG_CANDIDATE, "?"),
            created_at=created,
            tags=tags,
        )

    def exists(self) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            return False
        return True

    def versions(self) -> list[VersionInfo]:
        """Every version, newest first (empty when nothing was ever registered)."""
        if not self.exists():
            return []
        # Version search results carry no aliases; they live on the registered model.
        aliases: dict[int, list[str]] = {}
        for alias, version in (self.client.get_registered_model(self.name).aliases or {}).items():
            aliases.setdefault(int(version), []).append(alias)
        found = self.client.search_model_versions(f"name = '{self.name}'")
        infos = [self._info(mv, tuple(sorted(aliases.get(int(mv.version), ())))) for mv in found]
        return sorted(infos, key=lambda v: -v.version)

    def get(self, version: int) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version(self.name, str(version)))
        except MlflowException as exc:
            known = [v.version for v in self.versions()]
            raise RegistryError(
                f"{self.name} has no version {version}; versions: {known or 'none registered'}"
            ) from exc

    def by_alias(self, alias: str) -> VersionInfo | None:
        from mlflow.exceptions import MlflowException

        if not self.exists():
            return None
        try:
            return self._info(self.client.get_model_version_by_alias(self.name, alias))
        except MlflowException:
            return None

    def metrics(self, version: int) -> Metrics:
        """The version's metrics, ``metrics[split][predictor][metric]``, as logged with its run."""
        return metrics_from_keys(dict(self.client.get_run(self.get(version).run_id).data.metrics))

    def history(self, version: int | None = None) -> list[audit.Transition]:
        return audit.history(self.engine, self.name, version)

    def download(self, version: int, destination: Path) -> Path:
        """Download the saved model directory of ``version`` into ``destination``; returns its path."""
        import mlflow.artifacts

        info = self.get(version)
        path = mlflow.artifacts.download_artifacts(
            run_id=info.run_id,
            artifact_path=MODEL_ARTIFACT,
            dst_path=str(destination),
            tracking_uri=self.settings.tracking_uri(),
        )
        return Path(path)

    # ----- registration
    def register(self, run_id: str, lineage: Lineage, actor: str | None = None) -> tuple[VersionInfo, bool]:
        """Register the model of MLflow run ``run_id`` as the challenger (Staging).

        Returns ``(version, created)``; a model whose directory hash is already registered is not
        registered twice (``created`` is false) and keeps its state.
        """
        from mlflow.exceptions import MlflowException

        for existing in self.versions():
            if existing.tags.get(TAG_MODEL_SHA) == lineage.model_sha256:
                log.info(
                    "%s: model %s already registered as version %d",
                    self.name,
                    lineage.model_sha256[:12],
                    existing.version,
                )
                return existing, False
        if not self.exists():
            try:
                self.client.create_registered_model(
                    self.name,
                    description=f"spxcast forecast of {lineage.instrument} "
                    f"{lineage.horizon_minutes} minutes ahead "
                    f"({lineage.granularity} bars), percent return",
                )
            except MlflowException as exc:
                if not self.exists():
                    raise RegistryError(f"cannot create registered model {self.name}: {exc.message}") from exc
        mv = self.client.create_model_version(
            self.name,
            source=f"runs:/{run_id}/{MODEL_ARTIFACT}",
            run_id=run_id,
            tags={
                LIFECYCLE_TAG: Stage.NONE.value,
                TAG_CANDIDATE: lineage.candidate,
                TAG_PIPELINE_RUN: lineage.pipeline_run_id,
                TAG_MODEL_SHA: lineage.model_sha256,
                TAG_LINEAGE: lineage.to_json(),
                "spxcast.features": ",".join(lineage.features),
                "spxcast.code_version": lineage.code_version,
                "spxcast.git_commit": lineage.git_commit or "unknown",
            },
            description=f"{lineage.candidate} from pipeline run {lineage.pipeline_run_id}",
        )
        version = int(mv.version)
        who = audit.actor_of(self.settings, actor)
        previous = self.by_alias(CHALLENGER)
        self._move(
            version,
            Stage.STAGING,
            "register",
            who,
            f"candidate {lineage.candidate} of pipeline run {lineage.pipeline_run_id}",
        )
        self.client.set_registered_model_alias(self.name, CHALLENGER, str(version))
        if previous is not None and previous.stage == Stage.STAGING:
            self._move(
                previous.version, Stage.ARCHIVED, "supersede", who, f"superseded by challenger v{version}"
            )
        return self.get(version), True

    # ----- gates
    def load(self, version: int, scratch: Path) -> Predictor:
        """The model of ``version``, downloaded under ``scratch`` and loaded (``spxcast.models.io``)."""
        loader = default_loader(feature_catalog(self.settings))
        return loader(self.download(version, scratch / f"v{version}"))

    def compare_on_shared_window(self, challenger: int, champion: int) -> ChampionComparison:
        """RMSE of both versions on the same most recent labelled rows of gold.features, after the
        challenger's training window (rows neither version trained on)."""
        lake = Lake.from_settings(self.settings)
        target = label_names(self.settings.horizon_minutes, self.settings.horizon_bars)[0]
        with tempfile.TemporaryDirectory() as scratch:
            models = {v: self.load(v, Path(scratch)) for v in (challenger, champion)}
        features = sorted({name for model in models.values() for name in model.feature_names})
        lineage = self.get(challenger).lineage
        after = fitted_until(lineage.split_boundaries) if lineage is not None else None
        frame = recent_window(self.settings, lake, self.settings.registry.shared_window_rows, features, after)
        rmse = {v: window_rmse(model, frame, target) for v, model in models.items()}
        stamps = frame["ts"].dt.strftime("%Y-%m-%d %H:%M")
        window = f"{stamps[0]}..{stamps[-1]} UTC"
        return ChampionComparison(champion, frame.height, rmse[challenger], rmse[champion], window)

    def gates(self, version: int) -> GateReport:
        """Every promotion gate of ``version`` against the current champion."""
        info = self.get(version)
        champion = self.by_alias(CHAMPION)
        comparison = None
        if champion is not None and champion.version != version:
            comparison = self.compare_on_shared_window(version, champion.version)
        return evaluate_gates(self.metrics(version), self.settings.registry, comparison, info.approved_by)

    # ----- transitions
    def note(
        self, version: int, action: str, actor: str, reason: str, gates: GateReport | None = None
    ) -> None:
        """Record a step about ``version`` in the audit trail without changing its stage (the monitoring
        loop's gate check and shadow deploy of a retrained challenger)."""
        self._move(version, self.get(version).stage, action, actor, reason, gates=gates)

    def _move(
        self,
        version: int,
        to: Stage,
        action: str,
        actor: str,
        reason: str,
        *,
        forced: bool = False,
        gates: GateReport | None = None,
    ) -> None:
        before = self.get(version).stage
        if to != before:
            self.client.set_model_version_tag(self.name, str(version), LIFECYCLE_TAG, to.value)
        audit.record(
            self.engine,
            audit.Transition(
                model_name=self.name,
                version=version,
                action=action,
                from_state=before.value,
                to_state=to.value,
                actor=actor,
                reason=reason,
                forced=forced,
                gates=None if gates is None else gates.to_json(),
                at=datetime.now(UTC),
            ),
        )

    def _drop_aliases(self, info: VersionInfo, keep: tuple[str, ...] = ()) -> None:
        for alias in info.aliases:
            if alias not in keep:
                self.client.delete_registered_model_alias(self.name, alias)

    def promote(
        self,
        version: int | None = None,
        *,
        force: bool = False,
        reason: str | None = None,
        actor: str | None = None,
    ) -> PromotionResult:
        """Make ``version`` (default: the challenger) the champion if every gate passes.

        With ``force`` the failing gates are overridden; a reason is then mandatory and the audit row is
        marked forced. Raises :class:`PromotionRefused` with every gate result otherwise.
        """
        target = self.get(version) if version is not None else self.by_alias(CHALLENGER)
        if target is None:
            raise RegistryError(f"{self.name} has no challenger to promote; register one or name a VERSION")
        champion = self.by_alias(CHAMPION)
        if champion is not None and champion.version == target.version:
            raise RegistryError(f"{self.name} v{target.version} is already the champion")
        if force and not (reason or "").strip():
            raise RegistryError("a forced promotion overrides the gates and needs --reason explaining why")
        who = audit.actor_of(self.settings, actor)
        report = self.gates(target.version)
        if not report.passed and not force:
            self._move(target.version, target.stage, "promote_refused", who, report.explain(), gates=report)
            raise PromotionRefused(
                f"{self.name} v{target.version} not promoted, gates failed: {report.explain()}", report
            )
        why = reason or "all promotion gates pass"
        self._drop_aliases(target)
        if champion is not None:
            self._move(
                champion.version, Stage.ARCHIVED, "demote", who, f"replaced by v{target.version}: {why}"
            )
            self._drop_aliases(champion)
            self.client.set_registered_model_alias(self.name, PREVIOUS_CHAMPION, str(champion.version))
        self.client.set_registered_model_alias(self.name, CHAMPION, str(target.version))
        self._move(
            target.version, Stage.PRODUCTION, "promote", who, why, forced=not report.passed, gates=report
        )
        return PromotionResult(
            target.version, champion.version if champion else None, report, not report.passed
        )

    def rollback(self, reason: str | None = None, actor: str | None = None) -> tuple[int, int | None]:
        """Restore the previous champion in one step; returns ``(restored, replaced)`` versions."""
        previous = self.by_alias(PREVIOUS_CHAMPION)
        if previous is None:
            raise RegistryError(
                f"{self.name} has no previous champion to roll back to; promote a version explicitly instead"
            )
        current = self.by_alias(CHAMPION)
        who = audit.actor_of(self.settings, actor)
        why = reason or "rollback"
        if current is not None:
            self._move(
                current.version, Stage.ARCHIVED, "rollback", who, f"rolled back to v{previous.version}: {why}"
            )
            self._drop_aliases(current)
        self._drop_aliases(previous)
        self.client.set_registered_model_alias(self.name, CHAMPION, str(previous.version))
        self._move(previous.version, Stage.PRODUCTION, "rollback", who, why)
        return previous.version, current.version if current else None

    def archive(self, version: int, reason: str | None = None, actor: str | None = None) -> None:
        """Archive ``version``; the champion cannot be archived (promote another or roll back first)."""
        info = self.get(version)
        if CHAMPION in info.aliases:
            raise RegistryError(
                f"{self.name} v{version} is the champion and serves predictions; promote another version or "
                "roll back before archiving it"
            )
        self._drop_aliases(info)
        self._move(
            version, Stage.ARCHIVED, "archive", audit.actor_of(self.settings, actor), reason or "archived"
        )

    def approve(self, version: int, reason: str | None = None, actor: str | None = None) -> None:
        """Record a manual approval of ``version`` (the ``manual_approval`` gate)."""
        info = self.get(version)
        who = audit.actor_of(self.settings, actor)
        self.client.set_model_version_tag(self.name, str(version), TAG_APPROVED_BY, who)
        self._move(version, info.stage, "approve", who, reason or "approved")
