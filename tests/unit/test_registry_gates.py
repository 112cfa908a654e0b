"""Promotion gates as pure functions of recorded metrics: each one reports pass/fail with its figure."""

from __future__ import annotations

import pytest

from spxcast.config import RegistrySettings
from spxcast.registry.gates import (
    ChampionComparison,
    approval_gate,
    beats_zero_gate,
    champion_gate,
    evaluate_gates,
    max_rmse_gate,
)
from spxcast.registry.handoff import Metrics


def _metrics(rmse: float, zero: float, pvalue: float | None) -> Metrics:
    model = {"rmse": rmse} if pvalue is None else {"rmse": rmse, "dm_pvalue": pvalue}
    return {split: {"model": dict(model), "zero": {"rmse": zero}} for split in ("valid", "test", "oot")}


@pytest.mark.parametrize(
    ("rmse", "zero", "pvalue", "passed"),
    [
        (0.10, 0.12, 0.001, True),
        (0.10, 0.12, 0.05, False),  # p must be strictly below the threshold
        (0.10, 0.12, 0.20, False),  # lower RMSE but not significant
        (0.13, 0.12, 0.001, False),  # significantly WORSE than zero: a small p alone is not skill
        (0.12, 0.12, 0.001, False),
    ],
)
def test_beats_zero_needs_lower_rmse_and_significance(
    rmse: float, zero: float, pvalue: float, passed: bool
) -> None:
    result = beats_zero_gate(_metrics(rmse, zero, pvalue), "oot", 0.05)
    assert result.name == "beats_zero_oot"
    assert result.passed is passed
    assert f"RMSE {rmse:.5f} vs zero {zero:.5f}" in result.figure
    assert f"DM p={pvalue:.4g}" in result.figure


def test_missing_metrics_fail_and_say_what_is_missing() -> None:
    result = beats_zero_gate(_metrics(0.1, 0.12, None), "test", 0.05)
    assert not result.passed
    assert "missing metrics on test" in result.figure
    assert not max_rmse_gate({}, 0.18).passed


def test_rmse_threshold_and_its_disabled_form() -> None:
    assert max_rmse_gate(_metrics(0.18, 0.2, 0.01), 0.18).passed
    failed = max_rmse_gate(_metrics(0.1801, 0.2, 0.01), 0.18)
    assert not failed.passed
    assert failed.figure == "test RMSE 0.18010 (need <= 0.18)"
    assert max_rmse_gate(_metrics(5.0, 0.2, 0.01), None).passed


def test_champion_gate_compares_the_same_rows_with_tolerance() -> None:
    worse = ChampionComparison(
        champion_version=3, rows=500, challenger_rmse=0.105, champion_rmse=0.1, window="w"
    )
    assert not champion_gate(worse, 0.0).passed
    assert champion_gate(worse, 0.06).passed
    assert "champion v3 0.10000 on the same 500 rows" in champion_gate(worse, 0.0).figure
    assert champion_gate(None, 0.0).figure == "no champion yet"


def test_manual_approval() -> None:
    assert approval_gate(False, None).passed
    assert not approval_gate(True, None).passed
    assert approval_gate(True, "alice").figure == "approved by alice"


def test_report_lists_every_gate_and_explains_failures() -> None:
    config = RegistrySettings(max_test_rmse=0.05, require_manual_approval=True)
    report = evaluate_gates(_metrics(0.1, 0.12, 0.01), config, None, None)
    assert [r.name for r in report.results] == [
        "beats_zero_test",
        "beats_zero_oot",
        "max_test_rmse",
        "not_worse_than_champion",
        "manual_approval",
    ]
    assert not report.passed
    assert [r.name for r in report.failures] == ["max_test_rmse", "manual_approval"]
    assert report.explain().startswith("max_test_rmse: test RMSE 0.10000 (need <= 0.05); manual_approval:")
    assert report.to_json()[0] == {
        "name": "beats_zero_test",
        "passed": True,
        "figure": report.results[0].figure,
    }


def test_rmse_ceiling_relative_to_the_zero_forecast_scales_with_the_bar_size() -> None:
    """Regression: the absolute 0.18 % ceiling failed every daily model (daily returns are ~1 %)."""
    daily = _metrics(1.05, 1.10, 0.01)  # percent returns of a daily series, with skill
    assert evaluate_gates(daily, RegistrySettings(), None, None).passed
    gate = max_rmse_gate(daily, None, 1.5)
    assert gate.passed
    assert gate.figure == "test RMSE 1.05000 (need <= 1.5 x zero forecast's 1.10000 = 1.65000)"
    assert not max_rmse_gate(_metrics(1.7, 1.1, 0.01), None, 1.5).passed
    assert not max_rmse_gate({"test": {"model": {"rmse": 1.0}}}, None, 1.5).passed
    assert max_rmse_gate(daily, None, None).figure.startswith("disabled")
    assert not max_rmse_gate(daily, 0.18, 1.5).passed, "an absolute threshold, when set, wins"
