"""Gold-like frames for the training tests: bar key, Float32 features, the label columns, label_ok.

``signal="none"`` gives a pure random walk (features independent of everything). ``signal="planted"``
adds to the forward return a known function of the features at t (linear in ``f0``, nonlinear in ``f1``
and ``f2``): the oracle forecast is that function, and the oracle RMSE is the noise RMSE.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from scipy import stats

from spxcast.features.lags import lags_from_labels

HORIZON = 30
TARGET = f"target_ret_{HORIZON}m_pct"
N_LAGS = 6
PERSISTENCE = 0.9
MINUTE_VOL_PCT = 0.0105  # ~16 % a year on a 24x5 M1 calendar


def feature_names(n_features: int) -> list[str]:
    return [f"f{i}" for i in range(n_features)]


def planted_signal(features: np.ndarray, strength: float) -> np.ndarray:
    """The expected forward return (percent) given the features at t; zero mean (no drift to exploit)."""
    f0, f1, f2 = features[:, 0], features[:, 1], features[:, 2]
    above = (f2 > 0.5) - stats.norm.sf(0.5)
    return strength * (0.6 * f0 + 0.5 * np.tanh(2.0 * f1) + 0.4 * above)


def gold_frame(
    rows: int,
    n_features: int = 8,
    signal: str = "none",
    strength: float = 0.03,
    seed: int = 0,
    halt_every: int | None = 1440,
) -> tuple[pl.DataFrame, np.ndarray]:
    """A gold-shaped frame and the oracle forecast per row (zeros without a signal).

    Bars are 1 minute apart, with a 60-minute halt every ``halt_every`` bars (labels near a halt are
    missing, as after a weekend). Features are persistent AR(1) series (phi 0.9), standardised.
    """
    rng = np.random.default_rng(seed)
    minutes = np.arange(rows, dtype=np.int64)
    if halt_every:
        minutes = minutes + 60 * (minutes // halt_every)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    ts = [start + timedelta(minutes=int(m)) for m in minutes]
    shocks = rng.standard_normal((rows, n_features))
    features = np.empty_like(shocks)
    features[0] = shocks[0]
    for i in range(1, rows):
        features[i] = PERSISTENCE * features[i - 1] + np.sqrt(1 - PERSISTENCE**2) * shocks[i]
    oracle = planted_signal(features, strength) if signal == "planted" else np.zeros(rows)
    log_price = np.cumsum(rng.standard_normal(rows) * MINUTE_VOL_PCT / 100)
    frame = pl.DataFrame(
        {
            "instrument": "SPX500_USD",
            "granularity": "M1",
            "ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")),
            **{name: features[:, i].astype(np.float32) for i, name in enumerate(feature_names(n_features))},
            "_log_price": log_price,
        }
    )
    ahead = frame.select(
        (pl.col("ts") - timedelta(minutes=HORIZON)).alias("ts"), pl.col("_log_price").alias("_ahead")
    )
    frame = frame.join(ahead, on="ts", how="left", maintain_order="left")
    noise = ((pl.col("_ahead") - pl.col("_log_price")).exp() - 1) * 100
    frame = frame.with_columns((noise + pl.Series(oracle)).alias(TARGET)).with_columns(
        pl.col(TARGET).sign().cast(pl.Int8).alias(f"target_dir_{HORIZON}m"),
        pl.col(TARGET).is_not_null().alias("label_ok"),
    )
    frame = frame.drop("_log_price", "_ahead")
    # The horizon lags gold holds (catalog features): the label shifted by k horizons, by time.
    lags = lags_from_labels(frame, TARGET, HORIZON, range(1, N_LAGS + 1))
    return frame.hstack(lags.get_columns()), oracle


def spec(model: str, n_features: int = 8, **changes: object) -> object:
    """A small, fast TrainingSpec (3 + 3 trials) for the factory frames."""
    from spxcast.models.train import TrainingSpec
    from spxcast.models.tuning import TuningConfig

    tuning = TuningConfig(trials_coarse=3, trials_fine=3, max_rounds=300, early_stopping_rounds=20, seed=7)
    base: dict[str, object] = {
        "model": model,
        "features": tuple(feature_names(n_features)),
        "horizon_minutes": HORIZON,
        "horizon_bars": HORIZON,
        "oot2_rows": 2000,
        "tuning": tuning,
    }
    return TrainingSpec(**{**base, **changes})  # type: ignore[arg-type]
