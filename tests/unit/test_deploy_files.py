"""deploy/Dockerfile and deploy/compose.yaml, read as files: the images run as a non-root user with a health
check and no compilers; compose has every role and takes every secret from the env file.
tests/integration/test_deploy_compose.py lints compose.yaml with docker-compose itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|cargo|rustc|golang)\b")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile with their (INSTRUCTION, arguments), continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, parts[0]))
        elif stages:
            stages[-1].instructions.append((instruction, args.strip()))
    return stages


def _chain(stages: list[Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    by_name = {s.name: s for s in stages}
    chain = [by_name[name]]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return chain


def _last(chain: list[Stage], instruction: str) -> str | None:
    for stage in chain:
        found = [args for inst, args in stage.instructions if inst == instruction]
        if found:
            return found[-1]
    return None


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _runtime_stages(stages: list[Stage]) -> set[str]:
    """The final stage and every stage compose builds."""
    services = _compose()["services"].values()
    return {s["build"].get("target", stages[-1].name) for s in services if "build" in s} | {stages[-1].name}


def test_every_runtime_image_runs_as_a_non_root_user_with_a_health_check_and_no_compilers() -> None:
    stages = parse_dockerfile((DEPLOY / "Dockerfile").read_text())
    runtime = _runtime_stages(stages)
    assert runtime >= {"app", "airflow"}
    assert stages[-1].name == "app", "the default target (the last stage) is the app image"
    for name in runtime:
        chain = _chain(stages, name)
        user = _last(chain, "USER")
        assert user is not None, f"stage {name} sets no USER: it would run as root"
        assert user.split(":")[0] not in {"root", "0"}, f"stage {name} runs as {user}"
        healthcheck = _last(chain, "HEALTHCHECK")
        assert healthcheck and not healthcheck.upper().startswith("NONE"), f"stage {name} has no HEALTHCHECK"
        for stage in chain:
            runs = " ".join(args for inst, args in stage.instructions if inst == "RUN")
            tools = BUILD_TOOLS.findall(re.sub(r"pip install[^&;]*", "", runs))
            assert not tools, f"stage {name} inherits build tools {tools} from stage {stage.name}"


def test_the_dockerfile_parser_sees_users_and_inheritance() -> None:
    stages = parse_dockerfile(
        "FROM python:3.11 AS build\nRUN apt-get install -y \\\n  build-essential\n"
        "FROM python:3.11 AS base\nUSER app\nFROM base AS final\nUSER root\n"
    )
    assert [s.name for s in stages] == ["build", "base", "final"]
    assert _last(_chain(stages, "final"), "USER") == "root"
    assert [s.name for s in _chain(stages, "final")] == ["final", "base"]
    assert "build-essential" in stages[0].instructions[0][1]


def test_the_build_context_leaves_out_secrets_and_local_environments() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {"deploy/.env", ".venv*", ".spxcast", ".git"} <= ignored


def test_compose_has_every_role_of_the_team_deployment() -> None:
    services = _compose()["services"]
    assert set(services) >= {
        "postgres",
        "redis",
        "mlflow",
        "api-1",
        "api-2",
        "nginx",
        "dashboard",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
    }
    for api in ("api-1", "api-2"):
        assert services[api]["command"][:2] == ["spxcast", "serve"]
    for airflow in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"):
        assert services[airflow]["build"]["target"] == "airflow"
    assert "docker.sock" not in (DEPLOY / "compose.yaml").read_text(), "no service gets the Docker socket"
    for name, service in services.items():
        assert not service.get("privileged"), f"{name} is privileged"


def test_every_compose_variable_is_in_the_example_env_file() -> None:
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)", (DEPLOY / "compose.yaml").read_text()))
    example = (DEPLOY / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert referenced - defined == set(), "variables compose reads but deploy/.env.example does not name"
    secrets = {v for v in defined if re.search(r"PASSWORD|SECRET|KEY|TOKEN", v)}
    for line in example.splitlines():
        key, _, value = line.partition("=")
        if key in secrets:
            assert value in {"", "change-me"}, f"deploy/.env.example gives {key} a value; use change-me"
