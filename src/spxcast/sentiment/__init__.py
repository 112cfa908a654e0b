"""News sentiment: one scorer protocol, a lexicon scorer (default) and transformer models, cached scores."""

from __future__ import annotations

from spxcast.config import SentimentSettings
from spxcast.sentiment.base import PROBABILITY_COLUMNS, SentimentScorer
from spxcast.sentiment.lexicon import LexiconScorer, lexicon_scorer_id

__all__ = ["PROBABILITY_COLUMNS", "LexiconScorer", "SentimentScorer", "build_scorer", "scorer_id"]


def build_scorer(settings: SentimentSettings) -> SentimentScorer:
    """The scorer ``settings.scorer`` names (transformers are imported only when asked for)."""
    if settings.scorer == "lexicon":
        return LexiconScorer()
    from spxcast.sentiment.transformer import TransformerScorer

    return TransformerScorer(
        settings.finbert_model,
        max_length=settings.max_length,
        batch_size=settings.batch_size,
        device=settings.device,
        quantize_int8=settings.quantize_int8,
        dtype=settings.dtype,
    )


def scorer_id(settings: SentimentSettings) -> str:
    """The id under which ``build_scorer(settings)`` caches its scores, without loading any model."""
    if settings.scorer == "lexicon":
        return lexicon_scorer_id()
    from spxcast.sentiment.transformer import transformer_scorer_id

    return transformer_scorer_id(
        settings.finbert_model,
        max_length=settings.max_length,
        quantize_int8=settings.quantize_int8,
        dtype=settings.dtype,
    )
