"""Data drift as calibrated effect sizes (pure functions of arrays and frames).

A served window of ``m`` bars (the *current* window) is compared with the champion's training rows (the
*reference*) feature by feature, with an effect size:

- ``wasserstein``: the Wasserstein-1 distance between the two empirical distributions divided by the
  reference's standard deviation (so 0.5 reads "half a standard deviation of mass moved");
- ``psi``: the population stability index over the reference's deciles.

Neither has a usable textbook cut-off on minute data: the features are strongly autocorrelated, so a window
of ``m`` consecutive bars varies far more than ``m`` independent draws would, and a test that assumes
independence alarms most of the time on stationary data. The threshold of each feature is therefore
*calibrated* on the reference itself: :func:`calibrate` draws ``B`` pseudo-current windows of ``m`` bars
from the reference by a moving-block bootstrap (block length from the feature's autocorrelation time, so
the windows keep the persistence of real windows), computes the same effect size for each, fits a
log-normal to those null values and sets the threshold at its ``1 - alpha`` quantile. ``alpha`` is then the
false-alarm probability of one check of one feature on data that did not drift, a number the tests measure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats

Method = Literal["wasserstein", "psi"]

# Quantile levels at which Wasserstein-1 is evaluated (mid-points of 200 equal probability slices).
_LEVELS = (np.arange(200) + 0.5) / 200
_PSI_FLOOR = 1e-4
_MIN_VALUES = 10


@dataclass(frozen=True)
class Reference:
    """What a check needs of one reference feature: its quantiles, spread, decile edges and shares."""

    quantiles: np.ndarray
    sd: float
    edges: np.ndarray
    shares: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> Reference:
        values = values[np.isfinite(values)]
        edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        return cls(
            quantiles=np.quantile(values, _LEVELS),
            sd=float(np.std(values)),
            edges=edges,
            shares=np.maximum(counts / len(values), _PSI_FLOOR),
        )


def effect_size(reference: Reference, windows: np.ndarray, method: Method) -> np.ndarray:
    """Effect size of each row of ``windows`` (shape ``(B, m)``, finite values) against ``reference``.

    Returns ``B`` non-negative values: normalised Wasserstein-1 (reference standard deviations) or PSI.
    """
    if method == "wasserstein":
        current = np.quantile(windows, _LEVELS, axis=1)  # (levels, B)
        distance = np.mean(np.abs(current - reference.quantiles[:, None]), axis=0)
        return np.asarray(distance / reference.sd if reference.sd > 0 else distance, dtype=np.float64)
    bins = np.searchsorted(reference.edges, windows, side="right")
    k = len(reference.edges) + 1
    counts = np.stack([np.bincount(row, minlength=k) for row in bins])
    shares = np.maximum(counts / windows.shape[1], _PSI_FLOOR)
    return np.asarray(np.sum((shares - reference.shares) * np.log(shares / reference.shares), axis=1))


def autocorrelation_time(values: np.ndarray, max_lag: int = 500) -> float:
    """Integrated autocorrelation time ``1 + 2 Σ ρ_k`` in bars, summed until ρ first drops below 0.05.

    1 for independent bars; ``(1 + φ) / (1 - φ)`` for an AR(1) with coefficient φ (19 for φ = 0.9).
    """
    x = values[np.isfinite(values)]
    x = x - x.mean()
    n = len(x)
    if n < 3 or not np.any(x):
        return 1.0
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(x, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[: min(max_lag, n - 1) + 1]
    acf = acf / acf[0]
    below = np.nonzero(acf[1:] < 0.05)[0]
    stop = int(below[0]) + 1 if len(below) else len(acf)
    return float(1.0 + 2.0 * np.sum(acf[1:stop]))


def block_windows(values: np.ndarray, m: int, block: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` pseudo-windows of ``m`` bars built from moving blocks of ``block`` consecutive bars."""
    block = max(1, min(block, m, len(values)))
    per_window = math.ceil(m / block)
    starts = rng.integers(0, len(values) - block + 1, size=(count, per_window))
    index = (starts[:, :, None] + np.arange(block)).reshape(count, per_window * block)[:, :m]
    return np.asarray(values[index])


@dataclass(frozen=True)
class Threshold:
    """Calibrated threshold of one feature (see the module docstring)."""

    feature: str
    method: str
    threshold: float
    block_bars: int
    null_median: float
    null_p99: float
    calibrated: bool


def calibrate(
    reference: pl.DataFrame,
    features: Sequence[str],
    *,
    window_bars: int,
    alpha: float,
    samples: int,
    seed: int,
    method: Method = "wasserstein",
    per_feature_method: Mapping[str, Method] | None = None,
    fixed: Mapping[str, float] | None = None,
) -> list[Threshold]:
    """Per-feature thresholds that one check of a stationary window exceeds with probability ``alpha``.

    ``reference``: reference rows in time order (one row per bar). The null distribution of the effect size
    of an ``window_bars`` window is sampled with a moving-block bootstrap of the reference (block = twice
    the feature's autocorrelation time, at most the window); the threshold is the ``1 - alpha`` quantile of
    a log-normal fitted to the null values (the tail beyond what ``samples`` draws can resolve). ``fixed``
    thresholds are used as given (``calibrated`` false).
    """
    rng = np.random.default_rng(seed)
    out = []
    z = float(stats.norm.isf(alpha))
    for name in features:
        chosen: Method = (per_feature_method or {}).get(name, method)
        values = reference[name].cast(pl.Float64).to_numpy()
        values = values[np.isfinite(values)]
        if len(values) < max(_MIN_VALUES, window_bars):
            out.append(Threshold(name, chosen, math.inf, 0, math.nan, math.nan, False))
            continue
        block = max(1, min(window_bars, math.ceil(2.0 * autocorrelation_time(values))))
        null = effect_size(
            Reference.of(values), block_windows(values, window_bars, block, samples, rng), chosen
        )
        logs = np.log(np.maximum(null, 1e-12))
        fitted = float(np.exp(logs.mean() + z * logs.std(ddof=1)))
        given = (fixed or {}).get(name)
        out.append(
            Threshold(
                feature=name,
                method=chosen,
                threshold=float(given) if given is not None else fitted,
                block_bars=block,
                null_median=float(np.median(null)),
                null_p99=float(np.quantile(null, 0.99)),
                calibrated=given is None,
            )
        )
    return out


def thresholds_frame(thresholds: Sequence[Threshold]) -> pl.DataFrame:
    return pl.DataFrame([asdict(t) for t in thresholds])


def references(reference: pl.DataFrame, features: Sequence[str]) -> dict[str, Reference]:
    """:class:`Reference` summaries of each feature (computed once per reference, reused by every check)."""
    out = {}
    for name in features:
        values = reference[name].cast(pl.Float64).to_numpy()
        if np.isfinite(values).sum() >= _MIN_VALUES:
            out[name] = Reference.of(values)
    return out


def feature_drift(
    references: Mapping[str, Reference], current: pl.DataFrame, thresholds: Sequence[Threshold]
) -> pl.DataFrame:
    """One row per feature: effect size of ``current`` against ``reference``, its threshold, drifted.

    ``references``: from :func:`references` of the reference rows. Missing values are left out of both
    sides (the missing-value check reports them); a feature with fewer than 10 finite current values gets
    a null statistic and is not called drifted.
    """
    rows = []
    for t in thresholds:
        ref = references.get(t.feature)
        cur = current[t.feature].cast(pl.Float64).to_numpy()
        cur = cur[np.isfinite(cur)]
        statistic = (
            float(effect_size(ref, cur[None, :], t.method)[0])  # type: ignore[arg-type]
            if ref is not None and len(cur) >= _MIN_VALUES
            else None
        )
        rows.append(
            {
                "feature": t.feature,
                "method": t.method,
                "statistic": statistic,
                "threshold": t.threshold,
                "drifted": statistic is not None and statistic > t.threshold,
                "current_rows": len(cur),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "feature": pl.String,
            "method": pl.String,
            "statistic": pl.Float64,
            "threshold": pl.Float64,
            "drifted": pl.Boolean,
            "current_rows": pl.Int64,
        },
    )


def drift_share(drift: pl.DataFrame) -> float:
    """Share of features called drifted (among those with a statistic)."""
    judged = drift.filter(pl.col("statistic").is_not_null())
    return float(judged["drifted"].mean()) if judged.height else 0.0  # type: ignore[arg-type]
