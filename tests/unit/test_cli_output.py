"""Output for people and machines: redirected tables keep every figure, ``--json`` holds the same
figures, progress callbacks are fed."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from cli_tables import evaluation_cells, table_rows
from registry_factories import GOOD, write_gold, write_run
from spxcast import progress
from spxcast.cli._common import console
from spxcast.cli.main import app
from spxcast.cli.render import bar_per_message, json_ready, print_table
from spxcast.config import Settings
from spxcast.evaluation.report import console_table
from spxcast.registry import register_run

# Figures that need all their characters: eleven such columns do not fit 80 columns.
WIDE = {
    "rmse": 0.0123456789,
    "r2_oos": -0.000123456,
    "directional_accuracy": 0.512345678,
    "ic": 0.0312345678,
    "icir": 1.23456789,
    "dm_pvalue": 0.0456789,
    "backtest": {"net_sharpe": -1.23456789, "max_drawdown_pct": -12.3456789, "turnover": 1234.56789},
}


@pytest.mark.parametrize("terminal", [False, True])
def test_a_table_wider_than_the_console_keeps_every_figure(terminal: bool) -> None:
    evaluation = {"lightgbm": {"valid": WIDE, "test": WIDE}, "persistence": {"valid": WIDE}}
    table = console_table(evaluation, ["valid", "test"], "lightgbm vs baselines")
    squeezed = io.StringIO()
    Console(file=squeezed, width=80, force_terminal=terminal, color_system=None).print(table)
    assert "…" in squeezed.getvalue(), "rich alone squeezes this table at 80 columns (the defect)"

    out = io.StringIO()
    print_table(table, Console(file=out, width=80, force_terminal=terminal, color_system=None))
    rows = table_rows(out.getvalue())
    assert [r[:2] for r in rows] == [["lightgbm", "valid"], ["lightgbm", "test"], ["persistence", "valid"]]
    for row in rows:
        assert row[2:] == evaluation_cells(WIDE)
    assert "…" not in out.getvalue()


def test_json_ready_makes_strict_json() -> None:
    document = {"a": math.nan, "b": (1.5, math.inf), "c": {"d": -math.inf, 2: "x"}}
    assert json.loads(json.dumps(json_ready(document), allow_nan=False)) == {
        "a": None,
        "b": [1.5, None],
        "c": {"d": None, "2": "x"},
    }


def test_models_summary_redirected_and_json_hold_the_same_figures(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "_width", 60)  # stdout is captured: a file, 60 columns as COLUMNS=60 says
    write_gold(settings)
    run_id, run_dir = write_run(settings, {"lightgbm": (GOOD, True)}, "lightgbm")
    evaluation_file = run_dir / "candidates" / "lightgbm" / "evaluation.json"
    evaluation = json.loads(evaluation_file.read_text())
    for split in evaluation["models"]["lightgbm"]:
        evaluation["models"]["lightgbm"][split] |= {
            "rmse": 0.0123456789,
            "mae": 0.00987654321,
            "r2_oos": 0.0123456,
            "directional_accuracy": 0.512345,
            "ic": 0.0312345,
            "dm_pvalue": 0.000456789,
        }
    evaluation_file.write_text(json.dumps(evaluation))
    register_run(settings, run_dir, run_id, actor="alice")

    runner = CliRunner()
    table = runner.invoke(app, ["--home", str(settings.home), "models", "summary"])
    assert table.exit_code == 0, table.output
    as_json = runner.invoke(app, ["--home", str(settings.home), "models", "summary", "--json"])
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)  # one document, nothing else on stdout
    assert document["champion"] is None
    challenger = document["challenger"]
    assert challenger["version"] == 1 and challenger["candidate"] == "lightgbm"
    assert challenger["gates"]["results"], "the challenger's gates are evaluated now"

    from spxcast.cli.models_cmd import _HEADER, _fmt

    lines = table.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["split", "predictor"])
    names = {v: k for k, v in _HEADER.items()}
    columns = [names.get(c, c) for c in lines[header].split()[2:]]
    assert columns[:2] == ["rmse", "mae"]
    split, checked = "", 0
    for line in lines[header + 2 :]:
        cells = line.split()
        if not cells:
            break
        if cells[0] in challenger["metrics"]:
            split, cells = cells[0], cells[1:]
        metrics = challenger["metrics"][split][cells[0]]
        expected = [_fmt(metrics.get(c), c) for c in columns]
        assert cells[1:] == [e for e in expected if e], (split, cells)
        checked += 1
    assert checked == sum(len(by) for by in challenger["metrics"].values())
    model_test = challenger["metrics"]["test"]["model"]
    assert model_test["rmse"] == pytest.approx(0.0123456789)
    assert "0.0123" in table.stdout and "0.00046" in table.stdout


def test_tuning_trials_are_reported_to_the_installed_callback() -> None:
    from spxcast.models.lightgbm import LightGBMForecaster
    from spxcast.models.tuning import TuningConfig, tune_two_stage

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    y = x @ np.array([0.5, -0.2, 0.0]) + rng.normal(scale=0.5, size=600)
    calls: list[tuple[int, int | None, str]] = []
    config = TuningConfig(trials_coarse=3, trials_fine=2, max_rounds=30, seed=1)
    with progress.reporting(lambda done, total, message: calls.append((done, total, message))):
        tune_two_stage(LightGBMForecaster, x[:400], y[:400], x[400:], y[400:], config)
    assert [c for c in calls if c[2] == "lightgbm coarse trials"] == [
        (1, 3, "lightgbm coarse trials"),
        (2, 3, "lightgbm coarse trials"),
        (3, 3, "lightgbm coarse trials"),
    ]
    assert [c[:2] for c in calls if c[2] == "lightgbm fine trials"] == [(1, 2), (2, 2)]
    calls.clear()
    tune_two_stage(LightGBMForecaster, x[:400], y[:400], x[400:], y[400:], config)
    assert calls == [], "nothing is reported outside `reporting`"


def test_bar_per_message_draws_one_bar_per_stage() -> None:
    with Progress(disable=True) as bar:
        show = bar_per_message(bar)
        for done in (1, 2, 3):
            show(done, 3, "lightgbm coarse trials")
        show(1, 2, "lightgbm fine trials")
        tasks = {t.description: (t.completed, t.total) for t in bar.tasks}
    assert tasks == {"lightgbm coarse trials": (3, 3), "lightgbm fine trials": (1, 2)}
