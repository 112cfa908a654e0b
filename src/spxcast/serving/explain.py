"""Per-feature contributions to one prediction that sum to it (percent units).

LightGBM and XGBoost: native TreeSHAP (``pred_contrib`` / ``pred_contribs``), whose last column is the
expected value (the base). AR: coefficient × value, with the intercept as the base (a missing regressor
counts as zero, as the model itself treats it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spxcast.models.base import Forecaster
from spxcast.serving.errors import InvalidInput


@dataclass(frozen=True)
class Explanation:
    """``base + sum(contributions) == prediction`` (up to float rounding)."""

    method: str
    base: float
    contributions: dict[str, float]

    @property
    def total(self) -> float:
        return self.base + float(sum(self.contributions.values()))


def explain(model: Forecaster, x: np.ndarray) -> Explanation:
    """Contributions of each input in ``x`` (one Float32 row in ``model.feature_names`` order)."""
    row = np.asarray(x, dtype=np.float32).reshape(1, -1)
    names = model.feature_names
    if model.kind == "lightgbm":
        booster = model.booster_  # type: ignore[attr-defined]
        shap = booster.predict(row, num_iteration=model.best_rounds_, pred_contrib=True)[0]  # type: ignore[attr-defined]
        return Explanation("treeshap", float(shap[-1]), dict(zip(names, map(float, shap[:-1]), strict=True)))
    if model.kind == "xgboost":
        import xgboost as xgb

        shap = model.booster_.predict(xgb.DMatrix(row), pred_contribs=True)[0]  # type: ignore[attr-defined]
        return Explanation("treeshap", float(shap[-1]), dict(zip(names, map(float, shap[:-1]), strict=True)))
    if model.kind == "ar":
        coef: dict[str, float] = model.coef_  # type: ignore[attr-defined]
        values = np.nan_to_num(row[0].astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        contributions = {
            name: coef[name] * float(value) if name in coef else 0.0
            for name, value in zip(names, values, strict=True)
        }
        return Explanation("coefficient x value", float(model.intercept_), contributions)  # type: ignore[attr-defined]
    raise InvalidInput(f"no explanation for {model.kind!r} models; explain supports lightgbm, xgboost and ar")
