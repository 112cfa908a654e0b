"""Errors a person can act on: config errors name their source and exit 2, `pipeline task` prints one
line, third-party panics stay off the terminal, and secrets appear in no message, log or file.

Regressions: a malformed spxcast.toml or a wrong-typed SPXCAST_* variable exited 70 "unexpected ...";
`pipeline task` printed a traceback; a full disk printed a Rust panic backtrace; an OANDA error body that
echoed the request headers printed the token in full.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import spxcast
from spxcast.cli.main import app
from spxcast.errors import LakeError, SourceError, redact, register_secret
from spxcast.lake import Lake
from spxcast.lake.tables import CANDLES

SRC = str(Path(spxcast.__file__).resolve().parents[1])
TOKEN = "tok-3f9a1c77e0b24d5e8c6a"
runner = CliRunner()


def _cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a fresh process (stderr filter and all)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SPXCAST_")}
    return subprocess.run(
        [sys.executable, "-c", "from spxcast.cli.main import main; main()", "--home", str(home), *args],
        env={**clean, "PYTHONPATH": SRC, "COLUMNS": "300", **(env or {})},
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("toml", "env", "named"),
    [
        ('instrument = "X"\n[training\ntrials_coarse = 3\n', {}, r"spxcast\.toml is not valid TOML.*line 2"),
        (
            'seed = 1\n\n[training]\ntrials_coarse = "many"\n',
            {},
            r"training\.trials_coarse \(from spxcast\.toml line 4\)",
        ),
        ("", {"SPXCAST_SEED": "abc"}, r"seed \(from environment variable SPXCAST_SEED\)"),
        ("", {"SPXCAST_TRAINING__TRIALS_COARSE": "x"}, r"SPXCAST_TRAINING__TRIALS_COARSE"),
        ("", {"SPXCAST_LAKE__STORAGE_OPTIONS": "{bad"}, r"cannot read SPXCAST_LAKE__STORAGE_OPTIONS"),
    ],
)
def test_config_errors_exit_2_naming_their_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, env: dict[str, str], named: str
) -> None:
    if toml:
        (tmp_path / "spxcast.toml").write_text(toml)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "config", "show"], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "unexpected" not in result.output
    assert re.search(named, " ".join(result.output.split())), result.output  # rich may wrap the line


def test_a_failed_task_is_one_line_without_debug(tmp_path: Path) -> None:
    home = tmp_path / "h"
    quiet = _cli(home, "pipeline", "task", "validate_market")
    assert quiet.returncode == 1
    assert "Traceback" not in quiet.stderr
    assert quiet.stderr.strip().count("\n") == 0, quiet.stderr
    assert "task validate_market failed: DataQualityError: bronze.candles does not exist" in quiet.stderr
    loud = _cli(home, "--debug", "pipeline", "task", "validate_market")
    assert "Traceback" in loud.stderr


def test_native_panic_reports_stay_off_the_terminal(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from spxcast.cli._panics import filter_native_panics\n"
        "filter_native_panics()\n"
        "os.write(2, b\"thread 'tokio-rt-worker' (7) panicked at src/buffered.rs:369:41:\\n\")\n"
        "os.write(2, b'Already shut down\\nstack backtrace:\\n   0: frame\\n')\n"
        "os.write(2, b'note: run with `RUST_BACKTRACE=1` for a backtrace\\n')\n"
        "os.write(2, b'native line kept\\n')\n"
        "print('python line kept', file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "panicked" not in result.stderr and "backtrace" not in result.stderr
    assert "native line kept" in result.stderr and "python line kept" in result.stderr


class PanicException(BaseException):
    """Stands in for pyo3's PanicException (a BaseException, one class per Rust binding)."""


def test_a_panic_in_the_delta_library_becomes_a_lake_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import deltalake

    def panic(*args: object, **kwargs: object) -> None:
        raise PanicException("Already shut down: No space left on device (os error 28)")

    monkeypatch.setattr(deltalake, "write_deltalake", panic)
    bar = {"instrument": "SPX500_USD", "granularity": "M1", "ts": datetime(2024, 1, 2, tzinfo=UTC)}
    prices = {"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1, "bid_close": None}
    row = {**bar, **prices, "ask_close": None, "source": "t", "ingested_at": datetime(2024, 1, 2, tzinfo=UTC)}
    with pytest.raises(LakeError, match="the disk is full"):
        Lake(tmp_path).write(CANDLES.name, pl.DataFrame([row], schema=CANDLES.schema))


def test_redact_removes_registered_secrets_and_url_passwords() -> None:
    register_secret("hunter2-password")
    text = redact("postgresql://spx:pw@db/app failed with hunter2-password")
    assert "hunter2-password" not in text and ":pw@" not in text
    assert str(SourceError("token hunter2-password refused")) == "token **** refused"


@pytest.fixture
def echoing_oanda() -> Iterator[str]:
    """A loopback OANDA that answers 500, then 401, echoing the request's headers in the body."""
    calls = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            calls["n"] += 1
            status = 500 if calls["n"] == 1 else 401
            echoed = "; ".join(f"{k}: {v}" for k, v in self.headers.items())
            payload = json.dumps({"errorMessage": f"Insufficient authorization. You sent {echoed}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    thread.join()


def test_the_oanda_token_appears_nowhere_when_the_server_echoes_it(
    tmp_path: Path, echoing_oanda: str
) -> None:
    home = tmp_path / "home"
    env = {
        "SPXCAST_OANDA__TOKEN": TOKEN,
        "SPXCAST_OANDA__BASE_URL": echoing_oanda,
        "SPXCAST_OANDA__MAX_RETRIES": "1",
        "SPXCAST_OANDA__BACKOFF_BASE_S": "0",
        "SPXCAST_MARKET__SOURCE": "oanda",
        "SPXCAST_MARKET__START": "2024-01-02",
        "SPXCAST_MARKET__END": "2024-01-03",
    }
    outputs = []
    for args in (["--debug", "ingest", "market"], ["-v", "pipeline", "task", "ingest_market"]):
        result = _cli(home, *args, env=env)
        assert result.returncode != 0
        outputs.append(result.stdout + result.stderr)
    assert "Insufficient authorization" in outputs[0], "the server's message itself is shown"
    assert all(TOKEN not in text for text in outputs), [t for t in outputs if TOKEN in t]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "spxcast.db" for p in files), "the task's error was recorded"
    assert [p for p in files if TOKEN.encode() in p.read_bytes()] == []
