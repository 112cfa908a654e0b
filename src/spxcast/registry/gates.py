"""Promotion gates: pure checks of a version's recorded metrics, each reported with the figure it judged.

Gates (configured by :class:`spxcast.config.RegistrySettings`):

- ``beats_zero_<split>`` for test and OOT: the model's RMSE is below the zero forecast's on that split AND
  the Diebold–Mariano test against the zero forecast gives p < ``dm_pvalue``.
- ``max_test_rmse``: test RMSE <= ``max_test_rmse_ratio`` x the zero forecast's test RMSE (a limit that
  scales with the bar size and horizon), or <= the absolute ``max_test_rmse`` (percent) when that is set.
- ``not_worse_than_champion``: on the shared most recent window (the same rows for both), the challenger's
  RMSE <= champion RMSE x (1 + ``champion_tolerance``); passes when there is no champion yet.
- ``manual_approval``: when required, someone approved the version (``spxcast models approve``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from spxcast.config import RegistrySettings
from spxcast.registry.handoff import MODEL, Metrics


@dataclass(frozen=True)
class GateResult:
    """One gate: did it pass, and on which figure."""

    name: str
    passed: bool
    figure: str


@dataclass(frozen=True)
class GateReport:
    """Every gate of one version at one moment."""

    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[GateResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.results]

    def explain(self) -> str:
        """One line per failed gate: what was required and what the version scored."""
        return "; ".join(f"{r.name}: {r.figure}" for r in self.failures) or "all gates pass"


@dataclass(frozen=True)
class ChampionComparison:
    """RMSE of challenger and champion on the same most recent rows (percent units)."""

    champion_version: int
    rows: int
    challenger_rmse: float
    champion_rmse: float
    window: str


def _metric(metrics: Metrics, split: str, predictor: str, name: str) -> float | None:
    return metrics.get(split, {}).get(predictor, {}).get(name)


def beats_zero_gate(metrics: Metrics, split: str, max_pvalue: float) -> GateResult:
    name = f"beats_zero_{split}"
    rmse = _metric(metrics, split, MODEL, "rmse")
    zero = _metric(metrics, split, "zero", "rmse")
    pvalue = _metric(metrics, split, MODEL, "dm_pvalue")
    if rmse is None or zero is None or pvalue is None:
        return GateResult(
            name, False, f"missing metrics on {split} (rmse={rmse}, zero rmse={zero}, DM p={pvalue})"
        )
    passed = rmse < zero and pvalue < max_pvalue
    return GateResult(
        name,
        passed,
        f"RMSE {rmse:.5f} vs zero {zero:.5f}, DM p={pvalue:.4g} (need lower RMSE and p < {max_pvalue})",
    )


def max_rmse_gate(metrics: Metrics, threshold: float | None, ratio: float | None = None) -> GateResult:
    """Test RMSE against the absolute ``threshold`` when set, else against ``ratio`` x zero's test RMSE."""
    name = "max_test_rmse"
    rmse = _metric(metrics, "test", MODEL, "rmse")
    if threshold is None and ratio is None:
        return GateResult(name, True, "disabled (registry.max_test_rmse and max_test_rmse_ratio unset)")
    if rmse is None:
        return GateResult(name, False, "missing test RMSE")
    if threshold is not None:
        return GateResult(name, rmse <= threshold, f"test RMSE {rmse:.5f} (need <= {threshold})")
    zero = _metric(metrics, "test", "zero", "rmse")
    if zero is None:
        return GateResult(name, False, f"test RMSE {rmse:.5f}; missing the zero forecast's test RMSE")
    limit = zero * float(ratio or 0.0)
    return GateResult(
        name,
        rmse <= limit,
        f"test RMSE {rmse:.5f} (need <= {ratio:g} x zero forecast's {zero:.5f} = {limit:.5f})",
    )


def champion_gate(comparison: ChampionComparison | None, tolerance: float) -> GateResult:
    name = "not_worse_than_champion"
    if comparison is None:
        return GateResult(name, True, "no champion yet")
    limit = comparison.champion_rmse * (1 + tolerance)
    return GateResult(
        name,
        comparison.challenger_rmse <= limit,
        f"RMSE {comparison.challenger_rmse:.5f} vs champion v{comparison.champion_version} "
        f"{comparison.champion_rmse:.5f} on the same {comparison.rows} rows {comparison.window}"
        + (f" (tolerance {tolerance:.1%})" if tolerance else ""),
    )


def approval_gate(required: bool, approved_by: str | None) -> GateResult:
    if not required:
        return GateResult("manual_approval", True, "not required")
    if approved_by:
        return GateResult("manual_approval", True, f"approved by {approved_by}")
    return GateResult("manual_approval", False, "required and missing (spxcast models approve VERSION)")


def evaluate_gates(
    metrics: Metrics,
    config: RegistrySettings,
    comparison: ChampionComparison | None,
    approved_by: str | None,
) -> GateReport:
    """Every promotion gate for a version with ``metrics`` (see the module docstring)."""
    return GateReport(
        (
            beats_zero_gate(metrics, "test", config.dm_pvalue),
            beats_zero_gate(metrics, "oot", config.dm_pvalue),
            max_rmse_gate(metrics, config.max_test_rmse, config.max_test_rmse_ratio),
            champion_gate(comparison, config.champion_tolerance),
            approval_gate(config.require_manual_approval, approved_by),
        )
    )
