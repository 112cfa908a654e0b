"""The scorer protocol and the shape of its answer.

A scorer maps texts to three probabilities per text, columns ``(p_pos, p_neg, p_neu)``, rows summing to 1.
Its ``scorer_id`` names the model AND its version (word lists, weights, settings that change outputs):
scores are cached in ``silver.news_scores`` under ``(text_hash, scorer_id)``, so two scorers that could
disagree must never share an id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

PROBABILITY_COLUMNS = ("p_pos", "p_neg", "p_neu")


class SentimentScorer(Protocol):
    """Anything that turns texts into (p_pos, p_neg, p_neu)."""

    scorer_id: str

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, shape ``(len(texts), 3)``, float32, columns in :data:`PROBABILITY_COLUMNS` order."""
        ...
