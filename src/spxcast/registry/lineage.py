"""Lineage of a registered version: what data, code, configuration and seeds made it.

The record is stored on the model version (tag ``spxcast.lineage``) and as ``lineage.json`` in its run,
so a version can be retrained from exactly the lake table versions it saw (Delta time travel).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from spxcast.config import Settings
from spxcast.errors import RegistryError
from spxcast.lake import Lake


@dataclass(frozen=True)
class Lineage:
    """Everything needed to reproduce a registered version.

    ``lake_versions`` maps lake tables to the Delta versions training read; ``split_boundaries`` are the
    UTC bar-start bounds of each split as recorded by training; ``training_config`` is the effective
    training, feature and registry configuration; ``model_sha256`` hashes the saved model directory.
    """

    instrument: str
    granularity: str
    horizon_minutes: int
    candidate: str
    pipeline_run_id: str
    features: tuple[str, ...]
    lake_versions: dict[str, int]
    code_version: str
    git_commit: str | None
    seeds: dict[str, int]
    split_boundaries: dict[str, Any]
    training_config: dict[str, Any]
    model_sha256: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Lineage:
        try:
            value = json.loads(text)
            value["features"] = tuple(value["features"])
            return cls(**value)
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise RegistryError(f"lineage record is malformed ({exc}): {text[:200]!r}") from exc


def git_commit(directory: Path | None = None) -> str | None:
    """The commit of the source tree holding spxcast (``+dirty`` when it has local changes), if it is a
    git checkout; ``None`` for an installed package."""
    where = str(directory or Path(__file__).resolve().parent)
    try:
        head = subprocess.run(
            ["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def directory_sha256(directory: Path, exclude: tuple[str, ...] = ()) -> str:
    """Content hash of every file under ``directory`` but the names in ``exclude`` (relative paths and
    bytes, in sorted order)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name not in exclude):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def training_config(settings: Settings) -> dict[str, Any]:
    """The configuration a retrain must reuse: bars, horizon, seed, training and feature sections."""
    return {
        "instrument": settings.instrument,
        "granularity": settings.granularity,
        "horizon_minutes": settings.horizon_minutes,
        "horizon_bars": settings.horizon_bars,
        "calendar": settings.calendar,
        "seed": settings.seed,
        "training": settings.training.model_dump(mode="json", exclude={"optuna_storage", "trial_workers"}),
        "features": settings.features.model_dump(mode="json"),
    }


def verify_lake_versions(lake: Lake, lineage: Lineage) -> dict[str, int]:
    """Load every lake table at the version the lineage names; returns rows per table.

    Raises :class:`RegistryError` naming the table when a version no longer loads (vacuumed, deleted).
    """
    rows: dict[str, int] = {}
    for name, version in sorted(lineage.lake_versions.items()):
        try:
            rows[name] = int(lake.scan(name, version=version).select(pl.len()).collect().item())
        except Exception as exc:  # LakeError, or Delta's own error surfacing at collect()
            raise RegistryError(
                f"lineage of {lineage.candidate} ({lineage.pipeline_run_id}) names {name} version {version}, "
                f"which no longer loads: {exc}"
            ) from exc
    return rows
