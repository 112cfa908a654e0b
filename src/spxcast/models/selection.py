"""Model selection on validation rows that no tuning saw.

The validation fraction is split in two (:mod:`spxcast.models.splits`): ``tune`` (Optuna's objective, early
stopping, the AR order) and, after a purge gap of the horizon, ``valid``, which no fit, trial or early stop
has seen. Selection judges candidates on ``valid`` only, so skill tuned into the noise of the tuning rows
does not count.

Rule: a candidate is eligible when, on the validation split, its RMSE is below the zero forecast's and
(when a threshold is configured) its one-sided Diebold–Mariano p-value against zero is at most that
threshold. The eligible candidate with the lowest validation RMSE is selected. When none is eligible
nothing is selected (``selected = None``): a model without skill is never promoted. Every candidate gets
a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SELECTION_SPLIT = "valid"


@dataclass
class Selection:
    selected: str | None
    reasons: dict[str, str] = field(default_factory=dict)
    eligible: list[str] = field(default_factory=list)
    rule: str = ""


def beats_zero(candidate: Mapping[str, Any], zero: Mapping[str, Any], dm_pvalue: float | None) -> str | None:
    """``None`` when ``candidate`` beats ``zero`` (metrics of one split), else why not."""
    rmse, zero_rmse = candidate.get("rmse"), zero.get("rmse")
    if rmse is None or zero_rmse is None:
        return "no validation RMSE recorded"
    if rmse >= zero_rmse:
        return f"valid RMSE {rmse:.6g} is not below the zero forecast's {zero_rmse:.6g}"
    if dm_pvalue is not None:
        p = candidate.get("dm_pvalue")
        if p is None or p > dm_pvalue:
            shown = "undefined" if p is None else f"{p:.3g}"
            return (
                f"valid RMSE {rmse:.6g} < zero's {zero_rmse:.6g} but not significantly: "
                f"Diebold–Mariano p-value {shown} > {dm_pvalue:g}"
            )
    return None


def select_candidate(
    evaluations: Mapping[str, Mapping[str, Mapping[str, Any]]], dm_pvalue: float | None
) -> Selection:
    """Pick among candidates.

    Parameters
    ----------
    evaluations : ``{candidate: {model: {split: metrics}}}`` — each candidate's evaluation, which holds
        its own metrics under its name and the zero baseline's under ``"zero"`` (same rows).
    dm_pvalue : significance required against zero (one-sided DM p-value); ``None`` disables the test.
    """
    rule = (
        f"lowest {SELECTION_SPLIT} RMSE among candidates whose {SELECTION_SPLIT} RMSE is below the zero "
        "forecast's"
        + (f" with Diebold–Mariano p <= {dm_pvalue:g}" if dm_pvalue is not None else "")
        + f" ({SELECTION_SPLIT} rows are untouched by tuning and early stopping)"
    )
    selection = Selection(selected=None, rule=rule)
    scores: dict[str, float] = {}
    for name, models in evaluations.items():
        metrics = models.get(name, {}).get(SELECTION_SPLIT, {})
        zero = models.get("zero", {}).get(SELECTION_SPLIT, {})
        why_not = beats_zero(metrics, zero, dm_pvalue)
        if why_not is None:
            selection.eligible.append(name)
            scores[name] = float(metrics["rmse"])
        else:
            selection.reasons[name] = f"not eligible: {why_not}"
    if not scores:
        return selection
    best = min(scores, key=lambda n: (scores[n], n))
    selection.selected = best
    for name in scores:
        if name == best:
            selection.reasons[name] = (
                f"selected: lowest valid RMSE {scores[name]:.6g} among {len(scores)} eligible candidate(s)"
            )
        else:
            selection.reasons[name] = (
                f"eligible but lost: valid RMSE {scores[name]:.6g} >= {best}'s {scores[best]:.6g}"
            )
    return selection
