"""A served home for the serving tests: a gold table and real registered versions (LightGBM, XGBoost, AR)
trained by ``spxcast.models.train`` and written in the training hand-off format, predictions included.

Versions share one home per test module (training takes seconds); each test gets its own app database
(:func:`app_settings`), so slot state never leaks between tests.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import polars as pl

from spxcast.config import Settings, load_settings
from spxcast.lake import Lake
from training_factories import gold_frame, spec

N_FEATURES = 4
# Real catalog features (the service checks every model it loads against the running catalog).
FEATURES = ("ret_log_w1", "ret_log_w2", "ret_log_w3", "ret_log_w5")


@dataclass(frozen=True)
class ServedHome:
    settings: Settings
    gold: pl.DataFrame
    versions: dict[str, int]
    """Model name (``lightgbm``, ``xgboost``, ``ar``, ``tampered``, ``other-catalog``) -> version."""


def build_home(root: Path, models: Sequence[str] = ("lightgbm", "ar"), rows: int = 4000) -> ServedHome:
    """Gold + one registered version per model; ``tampered`` is a LightGBM whose recorded predictions were
    altered (its replay must fail) and ``other-catalog`` one saved under another catalog fingerprint."""
    from spxcast.features.catalog import Catalog, feature_catalog
    from spxcast.models.train import train_candidate
    from spxcast.pipeline.tasks.training import write_candidate
    from spxcast.registry import register_run

    settings = load_settings(home=root / "home", **{"serving.feature_refresh_s": 3600.0})
    gold, _ = gold_frame(rows, N_FEATURES, signal="planted", strength=0.03, seed=3)
    gold = gold.rename({f"f{i}": name for i, name in enumerate(FEATURES)})
    gold = gold.with_columns(pl.lit(settings.instrument).alias("instrument"))
    running = feature_catalog(settings)
    # Trained under a catalog whose first feature was defined differently.
    other = Catalog(
        dataclasses.replace(s, description=s.description + " (v0)") if s.name == FEATURES[0] else s
        for s in running
    )
    gold_version = Lake.from_settings(settings).write("gold.features", gold)
    versions: dict[str, int] = {}
    for i, name in enumerate(models):
        kind = "lightgbm" if name in ("tampered", "other-catalog") else name
        training = spec(kind, features=FEATURES, oot2_rows=400 + 40 * i)  # distinct splits: distinct models
        run = train_candidate(gold, training)  # type: ignore[arg-type]
        run_id = f"serve-{name}-{uuid.uuid4().hex[:6]}"
        run_dir = settings.artifacts_dir() / "runs" / run_id
        catalog = other if name == "other-catalog" else running
        lineage = {
            "run_id": run_id,
            "instrument": settings.instrument,
            "granularity": settings.granularity,
            "lake_versions": {"gold.features": gold_version},
            "seed": settings.seed,
        }
        directory = run_dir / "candidates" / kind
        write_candidate(directory, run, training, lineage, catalog, [])  # type: ignore[arg-type]
        if name == "tampered":
            recorded = pl.read_parquet(directory / "predictions.parquet")
            recorded.with_columns(pl.col(kind) + 1e-4).write_parquet(directory / "predictions.parquet")
        selection = {
            "selected": kind,
            "candidates": {kind: {}},
            "reasons": {},
            "split_boundaries": run.boundaries.to_dict(),
            "lake_versions": {"gold.features": gold_version},
        }
        (run_dir / "selection.json").write_text(json.dumps(selection, default=str))
        # The other-catalog version is registered while its catalog was the running one (then it changed).
        with patch("spxcast.registry.registration.feature_catalog", return_value=catalog):
            result = register_run(settings, run_dir, run_id, actor="tests")
        assert result.version is not None, result.message
        versions[name] = result.version
    return ServedHome(settings, gold, versions)


def app_settings(home: ServedHome, tmp_path: Path, **overrides: Any) -> Settings:
    """The home's settings with a fresh app database and spool under ``tmp_path``."""
    serving = home.settings.serving.model_validate(
        {
            **home.settings.serving.model_dump(),
            "spool_path": str(tmp_path / "spool.ndjson"),
            **overrides.pop("serving", {}),
        }
    )
    db = home.settings.db.model_copy(
        update={"url": overrides.pop("db_url", f"sqlite:///{tmp_path / 'app.db'}")}
    )
    return home.settings.model_copy(update={"serving": serving, "db": db, **overrides})


@contextmanager
def client(settings: Settings) -> Iterator[Any]:
    """A TestClient on ``create_app(settings)`` with its lifespan (service started and closed)."""
    from fastapi.testclient import TestClient

    from spxcast.serving import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def wait_for_http(
    url: str, process: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 90
) -> None:
    """Poll ``url`` until it answers 200 while ``process`` runs; on failure show the tail of ``log``.

    ``timeout`` is in seconds (wall clock).
    """

    def tail() -> str:
        if log is None or not log.exists():
            return ""
        return "\n--- last lines of " + str(log) + " ---\n" + log.read_text(errors="replace")[-4000:]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        assert code is None, f"process for {url} exited with code {code}{tail()}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s{tail()}")
