"""Sentiment scoring throughput: lexicon, and a BERT-base-sized classifier on CPU (fp32 / batched / int8).

The transformer is BERT-base shaped (12 layers, hidden 768, 12 heads, vocabulary 30,522: FinBERT's
compute), randomly initialised, with a WordPiece vocabulary built from the benchmark headlines (so about
one token per word; real FinBERT tokenisation gives slightly longer sequences). Nothing is downloaded.
Headlines come from the synthetic news source. Prints a table; run with ``python bench/sentiment.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl


def headlines(n: int) -> list[str]:
    from spxcast.lake.tables import SYNTHETIC_EVENTS
    from spxcast.sources.news import SyntheticNewsSource

    start = datetime(2024, 1, 1, tzinfo=UTC)
    rng = np.random.default_rng(0)
    events = pl.DataFrame(
        {
            "instrument": "SPX500_USD",
            "event_id": [str(i) for i in range(400)],
            "received_at": [start + timedelta(minutes=int(m)) for m in rng.uniform(0, 60 * 1440, 400)],
            "direction": rng.choice([-1, 1], 400),
            "magnitude": rng.uniform(0, 1, 400),
            "kind": "macro",
        },
        schema=SYNTHETIC_EVENTS.schema,
    )
    titles = [
        str(r["title"]) for r in SyntheticNewsSource(events, seed=0).fetch(start, start + timedelta(days=60))
    ]
    return (titles * (n // len(titles) + 1))[:n]


def timed(function, repeats: int) -> float:
    """Median wall time of ``repeats`` calls, seconds."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def bench_lexicon(texts: list[str], repeats: int) -> float:
    from spxcast.sentiment.lexicon import LexiconScorer

    scorer = LexiconScorer()
    return len(texts) / timed(lambda: scorer.score(texts), repeats)


def build_bert_base(directory: Path, texts: list[str]) -> None:
    import torch
    import transformers

    torch.manual_seed(0)
    words = sorted({w for t in texts for w in t.lower().replace(",", " ").replace("%", " %").split()})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + words)}
    tokenizer = transformers.BertTokenizerFast(vocab=vocab, do_lower_case=True)
    config = transformers.BertConfig(
        vocab_size=30522,
        num_labels=3,
        id2label={0: "positive", 1: "negative", 2: "neutral"},
        label2id={"positive": 0, "negative": 1, "neutral": 2},
    )
    transformers.BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lexicon-headlines", type=int, default=50_000)
    parser.add_argument("--single-headlines", type=int, default=128)
    parser.add_argument("--batched-headlines", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--threads", type=int, default=2, help="CPU threads for torch (the goal is on 2 cores)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch
    import transformers

    from spxcast.sentiment.transformer import TransformerScorer

    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    rows: list[tuple[str, int, str]] = []
    texts = headlines(args.lexicon_headlines)
    rows.append(("lexicon (pure Python, 1 core)", len(texts), f"{bench_lexicon(texts, args.repeats):,.0f}"))

    batched_texts = headlines(args.batched_headlines)
    single_texts = batched_texts[: args.single_headlines]
    with tempfile.TemporaryDirectory() as tmp:
        build_bert_base(Path(tmp), batched_texts)
        fp32 = TransformerScorer(tmp, batch_size=args.batch_size, device="cpu")
        one = TransformerScorer(tmp, batch_size=1, device="cpu")
        int8 = TransformerScorer(tmp, batch_size=args.batch_size, device="cpu", quantize_int8=True)
        bf16 = TransformerScorer(tmp, batch_size=args.batch_size, device="cpu", dtype="bfloat16")
        for warm in (fp32, int8, bf16):
            warm.score(batched_texts[:8])
        single_rate = len(single_texts) / timed(lambda: [one.score([t]) for t in single_texts], 1)
        batched_rate = len(batched_texts) / timed(lambda: fp32.score(batched_texts), args.repeats)
        int8_rate = len(batched_texts) / timed(lambda: int8.score(batched_texts), args.repeats)
        bf16_rate = len(batched_texts) / timed(lambda: bf16.score(batched_texts), args.repeats)
        p32 = fp32.score(batched_texts)
        reduced = {"int8": int8.score(batched_texts), "bf16": bf16.score(batched_texts)}
    bert = f"BERT-base CPU, {args.threads} threads"
    rows += [
        (f"{bert}, one at a time", len(single_texts), f"{single_rate:,.1f}"),
        (f"{bert}, batched {args.batch_size}, fp32", len(batched_texts), f"{batched_rate:,.1f}"),
        (f"{bert}, batched {args.batch_size}, int8 dynamic", len(batched_texts), f"{int8_rate:,.1f}"),
        (f"{bert}, batched {args.batch_size}, bfloat16", len(batched_texts), f"{bf16_rate:,.1f}"),
        ("BERT-base GPU, batched", 0, "not measured: no GPU lent"),
    ]
    print(f"machine: {os.cpu_count()} cores; torch {torch.__version__}; median of {args.repeats} runs")
    print(f"{'mode':<52} {'headlines':>9}  headlines/s")
    for mode, n, rate in rows:
        print(f"{mode:<52} {n:>9}  {rate}")
    print(f"batched fp32 / one-at-a-time speed-up: {batched_rate / single_rate:.1f}x")
    for name, probs in reduced.items():
        agreement = float(np.mean(p32.argmax(axis=1) == probs.argmax(axis=1)))
        print(
            f"{name} vs fp32 on the same {len(batched_texts)} headlines: argmax agreement {agreement:.1%}, "
            f"max |prob difference| {float(np.abs(p32 - probs).max()):.4f}"
        )


if __name__ == "__main__":
    main()
