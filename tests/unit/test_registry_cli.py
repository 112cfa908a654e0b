"""``spxcast models``: list, summary, compare, promote, rollback, archive, approve, history."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from registry_factories import BAD, GOOD, write_gold, write_run
from spxcast.cli._common import console
from spxcast.cli.main import app
from spxcast.config import Settings
from spxcast.registry import register_run


def test_models_verbs_end_to_end(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI's console was built at import; a wide one keeps the long gate figures on one line each.
    monkeypatch.setattr(console, "_width", 250)
    runner = CliRunner()
    home = ["--home", str(settings.home)]

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, [*home, "models", *args])
        assert result.exit_code == code, result.output
        return result.output

    assert "no version registered yet" in cli("list")
    write_gold(settings)
    for coef in ((0.3, 0.0), GOOD, BAD):
        run_id, run_dir = write_run(settings, {"lightgbm": (coef, True)}, "lightgbm")
        register_run(settings, run_dir, run_id, actor="alice")
        if coef != BAD:
            promoted = cli("promote", "--by", "bob")
            assert "is the champion" in promoted
            assert "beats_zero_oot" in promoted

    listed = cli("list")
    assert "Production" in listed
    assert "champion" in listed
    assert "previous_champion" in listed
    assert "challenger" in listed

    summary = cli("summary")
    assert "champion:" in summary
    assert "v2 lightgbm" in summary
    assert "challenger:" in summary
    assert "v3 lightgbm" in summary
    assert "persistence" in summary
    assert "not_worse_than_champion" in summary
    assert "FAIL" in summary, "the worse challenger's champion gate must show as failed"
    assert "report:" in summary
    assert "evaluation/report/index.html" in summary
    assert f"sqlite:///{settings.home.resolve()}/mlflow.db" in summary.replace("\n", "")

    refused = cli("promote", code=1)
    assert "not promoted, gates failed: not_worse_than_champion" in " ".join(refused.split())
    assert "FAIL" in refused

    compared = cli("compare", "2", "3")
    assert "shared window" in compared
    assert "lake_versions" in compared

    assert "v1 is the champion again; v2 archived" in cli("rollback", "--reason", "v2 broke", "--by", "erin")
    assert "v3 archived" in cli("archive", "3", "--reason", "worse", "--by", "erin")
    cli("archive", "1", code=1)
    assert "nothing to promote: no challenger; v1 stays the champion" in cli("promote")
    cli("approve", "2", "--by", "dave")

    history = cli("history")
    for action in ("register", "promote", "demote", "promote_refused", "rollback", "archive", "approve"):
        assert action in history
    assert "v2 broke" in history
    assert "erin" in history
