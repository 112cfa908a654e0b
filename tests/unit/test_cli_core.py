from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from spxcast import __version__
from spxcast.cli.main import app

runner = CliRunner()


def test_version_and_config_show(tmp_path: Path) -> None:
    assert runner.invoke(app, ["--version"]).output.strip() == f"spxcast {__version__}"
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "h" / "lake") in result.output


def test_failed_task_exits_1_with_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "pipeline", "task", "validate_market"])
    assert result.exit_code == 1, result.output
    assert "error:" in result.output
    assert "task validate_market failed" in result.output
    assert "Traceback" not in result.output.splitlines()[0]


def test_bad_settings_exit_2_and_unknown_run_exits_1(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["--granularity", "M7X", "config", "show"])
    assert bad.exit_code == 2
    assert "granularity" in bad.output
    unknown = runner.invoke(app, ["--home", str(tmp_path / "h"), "pipeline", "status", "no-such-run"])
    assert unknown.exit_code == 1
    assert "no pipeline run" in unknown.output


def test_serve_live_with_several_workers_refuses_and_says_how_to_run_the_loop_with_redis(
    tmp_path: Path,
) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "serve", "--live", "--workers", "3"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "cannot feed 3 workers" in text
    assert "spxcast live" in text and "SPXCAST_LIVE__REDIS_URL" in text and "--workers 3" in text
