"""The conformal interval: nominal coverage out of sample, and recovery after a volatility jump (ACI)."""

from __future__ import annotations

import numpy as np

from spxcast.serving.conformal import ConformalInterval


def _outcomes(rng: np.random.Generator, n: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    predicted = rng.normal(0, 0.02, n)
    return predicted, predicted + rng.standard_t(6, n) * scale


def _covered(interval: ConformalInterval, predicted: float, actual: float) -> bool:
    lower, upper = interval.interval(predicted)
    return bool(lower <= actual <= upper)


def test_split_conformal_covers_the_nominal_level_out_of_sample() -> None:
    rng = np.random.default_rng(0)
    interval = ConformalInterval(*_outcomes(rng, 2000, 0.05), level=0.9, gamma=0.0)
    predicted, actual = _outcomes(rng, 20_000, 0.05)
    coverage = np.mean([_covered(interval, p, a) for p, a in zip(predicted, actual, strict=True)])
    assert abs(coverage - 0.9) <= 0.02


def test_aci_recovers_after_a_volatility_jump_while_static_split_conformal_falls() -> None:
    rng = np.random.default_rng(1)
    calibration = _outcomes(rng, 2000, 0.05)
    static = ConformalInterval(*calibration, level=0.9, gamma=0.0)
    adaptive = ConformalInterval(*calibration, level=0.9, gamma=0.02)
    predicted, actual = _outcomes(rng, 600, 0.05 * 2.5)  # volatility x 2.5 from now on
    hits: dict[str, list[bool]] = {"static": [], "aci": []}
    for p, a in zip(predicted, actual, strict=True):
        hits["static"].append(_covered(static, p, a))
        hits["aci"].append(_covered(adaptive, p, a))
        adaptive.observe(p, a)  # the realised outcome arrives once the horizon has passed
    static_coverage = np.mean(hits["static"][200:])
    aci_coverage = np.mean(hits["aci"][200:])  # after 200 realised outcomes
    assert static_coverage < 0.7
    assert aci_coverage >= 0.85


def test_observing_a_batch_is_exactly_the_per_outcome_recursion_in_order() -> None:
    rng = np.random.default_rng(2)
    calibration = _outcomes(rng, 300, 0.05)
    one_by_one = ConformalInterval(*calibration, level=0.9, gamma=0.02)
    batched = ConformalInterval(*calibration, level=0.9, gamma=0.02)
    predicted, actual = _outcomes(rng, 120, 0.05 * 2.5)
    for p, a in zip(predicted, actual, strict=True):
        one_by_one.observe(p, a)
    batched.observe_many(predicted[:50].tolist(), actual[:50].tolist())
    batched.observe_many(predicted[50:].tolist(), actual[50:].tolist())
    assert batched.offsets == one_by_one.offsets
    assert batched.observed == one_by_one.observed == 120
    assert batched._mapie.current_alpha == one_by_one._mapie.current_alpha
    np.testing.assert_array_equal(batched._mapie.conformity_scores_, one_by_one._mapie.conformity_scores_)
