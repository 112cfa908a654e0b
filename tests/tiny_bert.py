"""A tiny randomly initialised BERT classifier with a WordPiece vocabulary, saved to a directory.

Tests load it through the production loading code (``TransformerScorer``); nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

FINBERT_LABELS = {0: "positive", 1: "negative", 2: "neutral"}


def tiny_model(
    directory: Path, texts: Sequence[str], id2label: dict[int, str] | None = None, seed: int = 0
) -> Path:
    """Save a 2-layer, hidden-32 BERT sequence classifier whose vocabulary covers the words of ``texts``."""
    import torch
    import transformers

    id2label = id2label or FINBERT_LABELS
    torch.manual_seed(seed)
    words = sorted({w for text in texts for w in text.lower().split()} | {"unknownish"})
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    # transformers 5: the vocabulary is passed as ``vocab=`` (``vocab_file=`` is silently ignored).
    tokenizer = transformers.BertTokenizerFast(vocab=vocab, do_lower_case=True)
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    transformers.BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
