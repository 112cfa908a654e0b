"""Forecasters behind one estimator protocol, splits, tuning, selection and the saved-model format.

Boosting libraries load only when their forecaster is used (``spxcast.models.lightgbm``,
``spxcast.models.xgboost``), or through :func:`spxcast.models.io.model_class`.
"""

from spxcast.models.base import Forecaster
from spxcast.models.io import load_model, save_model
from spxcast.models.selection import Selection, select_candidate
from spxcast.models.splits import SplitBoundaries, make_splits

__all__ = [
    "Forecaster",
    "Selection",
    "SplitBoundaries",
    "load_model",
    "make_splits",
    "save_model",
    "select_candidate",
]
