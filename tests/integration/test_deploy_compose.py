"""`docker-compose config -q` on deploy/compose.yaml (Debian's docker-compose; no Docker engine here):
it accepts the file with the committed example env file and refuses it when a secret is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from services import unavailable

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        unavailable("docker-compose is not installed (`make system-deps` installs Debian's package)")
    return found


def _config(*env_file: str) -> subprocess.CompletedProcess[str]:
    command = [_docker_compose(), *env_file, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"]
    return subprocess.run(command, cwd=DEPLOY, capture_output=True, text=True, timeout=120, check=False)


def test_docker_compose_accepts_the_file_with_the_example_env_file() -> None:
    done = _config("--env-file", str(DEPLOY / ".env.example"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_docker_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = _config("--env-file", str(empty))
    assert done.returncode != 0
    assert "in deploy/.env" in done.stderr, done.stderr
