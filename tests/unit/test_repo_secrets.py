"""No secret in any committed file: a scan over `git ls-files` for private keys, provider tokens, passwords in
URLs and secret-named settings with literal values in configuration files.

Fake credentials that tests need (to check masking) and the example env file's placeholders are allowed
explicitly, one (path, value) pair at a time, below.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# (path, value): fake values, not secrets. Add a pair only for a value made up for a test or an example.
ALLOWED = {
    ("tests/unit/test_config.py", "hunter2"),
    ("tests/unit/test_registry_store.py", "s3cret"),
    ("tests/unit/test_actionable_errors.py", "pw"),  # issue 9's redaction test (branch issue9-hostile)
    ("deploy/.env.example", "change-me"),
}

_TOKENS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "API secret key": re.compile(r"\bsk-(?:proj-|live-)?[A-Za-z0-9_-]{32,}"),
}
# scheme://user:<password>@ — the password is group 1.
_URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"`]+:([^@\s'\"`/]+)@")
# A secret-named key given a value in a configuration file: `DB_PASSWORD=x`, `password: x`, `token = "x"`.
_SECRET_SETTING = re.compile(
    r"(?i)^\s*(?:export\s+)?[\w.-]*(?:password|passwd|secret|token|api_?key|admin_key|fernet_key)[\w.-]*"
    r"\s*[:=]\s*[\"']?([^\s\"'#,]*)"
)
_CONFIG_SUFFIXES = {".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".json", ".properties", ".sh"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str
    value: str


def _is_placeholder(value: str) -> bool:
    """A reference or an obvious placeholder: ${VAR}, <password>, {password}, ****, ..."""
    return not value or value[0] in "$<{" or set(value) <= {"*", "\\"} or value in {"...", "…"}


def _is_config(path: str) -> bool:
    name = Path(path).name
    return Path(path).suffix in _CONFIG_SUFFIXES or name.startswith(".env") or name == "Dockerfile"


def scan(path: str, text: str) -> list[Finding]:
    """Secrets found in one file's text (allowed pairs excluded)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for kind, pattern in _TOKENS.items():
            found.extend(Finding(path, number, kind, m.group(0)) for m in pattern.finditer(line))
        for match in _URL_PASSWORD.finditer(line):
            if not _is_placeholder(match.group(1)):
                found.append(Finding(path, number, "password in a URL", match.group(1)))
        setting = _SECRET_SETTING.match(line) if _is_config(path) else None
        if setting and not _is_placeholder(setting.group(1)):
            found.append(Finding(path, number, "secret setting with a literal value", setting.group(1)))
    return [f for f in found if (f.path, f.value) not in ALLOWED]


def _committed_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"`git ls-files` failed in {REPO}: {exc}; the secret scan needs a git checkout")
    return [p for p in listed.decode().split("\0") if p]


def test_no_committed_file_holds_a_secret() -> None:
    files = _committed_files()
    assert "deploy/.env.example" in files and "deploy/compose.yaml" in files
    findings = []
    for path in files:
        data = (REPO / path).read_bytes() if (REPO / path).is_file() else b""
        if b"\0" in data:
            continue
        findings.extend(scan(path, data.decode("utf-8", errors="replace")))
    listing = "\n".join(f"  {f.path}:{f.line}: {f.kind}" for f in findings)
    assert not findings, f"secrets in committed files (a fake one for a test goes into ALLOWED):\n{listing}"


def test_the_real_env_file_is_ignored_by_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/.env"], cwd=REPO, check=False, timeout=60)
    assert ignored.returncode == 0, "deploy/.env (the real secrets) must be listed in .gitignore"


# The samples are assembled at run time so that this file itself holds none of them.
@pytest.mark.parametrize(
    ("path", "line", "kind"),
    [
        ("id_rsa", "-----BEGIN OPENSSH " + "PRIVATE KEY-----", "private key"),
        ("src/x.py", 'KEY = "AKIA' + "Q" * 16 + '"', "AWS access key id"),
        ("README.md", "token gh" + "p_" + "a1" * 18, "GitHub token"),
        ("docs/x.md", "url = postgresql://app:" + "Tr0ub4dor" + "@db/app", "password in a URL"),
        ("deploy/.env", "POSTGRES_" + "PASSWORD=Tr0ub4dor", "secret setting with a literal value"),
        ("deploy/x.yaml", "  admin_" + "key: 'Tr0ub4dor'", "secret setting with a literal value"),
        ("deploy/.env.example", "MLFLOW_DB_" + "PASSWORD=real-like", "secret setting with a literal value"),
    ],
)
def test_the_scan_finds_each_kind_of_secret(path: str, line: str, kind: str) -> None:
    assert [f.kind for f in scan(path, f"first line\n{line}\n")] == [kind]


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("deploy/compose.yaml", "  POSTGRES_" + "PASSWORD: ${POSTGRES_PASSWORD:?set it in deploy/.env}"),
        (
            "deploy/compose.yaml",
            "  - --uri=postgresql+psycopg://mlflow:${MLFLOW_DB_PASSWORD}@postgres/mlflow",
        ),
        ("docs/operations.md", "postgresql+psycopg://spxcast:<password>@db-host/spxcast"),
        ("deploy/.env.example", "REDIS_" + "PASSWORD=change-me"),
        ("deploy/.env.example", "SPXCAST_OANDA__" + "TOKEN="),
        ("src/spxcast/config.py", "    token: SecretStr | None = None"),
    ],
)
def test_references_and_placeholders_are_not_secrets(path: str, line: str) -> None:
    assert scan(path, line) == []
