"""Shared fixtures: isolated settings per test and real services on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from services import fresh_postgres_database
from spxcast.config import Settings, load_settings


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's spxcast.toml or SPXCAST_* variables (except the services switch)."""
    import os

    for name in list(os.environ):
        if name.startswith("SPXCAST_") and name != "SPXCAST_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fresh home under the test's temporary directory."""
    return load_settings(home=tmp_path / "home", **{"pipeline.workers": 2})


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url
