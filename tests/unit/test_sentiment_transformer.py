"""The transformer scorer end to end with a tiny randomly initialised BERT saved to disk and loaded back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from spxcast.config import SentimentSettings  # noqa: E402
from spxcast.errors import ConfigError, ModelError  # noqa: E402
from spxcast.sentiment import build_scorer, scorer_id  # noqa: E402
from spxcast.sentiment.transformer import TransformerScorer, resolve_device  # noqa: E402
from tiny_bert import tiny_model  # noqa: E402

HEADLINES = [
    "stocks rise",
    "stocks fall sharply after weak jobs data",
    "the fed holds rates steady as inflation cools and markets rally into the close",
    "earnings beat",
    "wall street awaits the jobs report",
    "nasdaq slides",
    "treasury yields climb as traders weigh the fed outlook and strong retail sales figures",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # FinBERT's order: positive, negative, neutral; ours is shuffled to prove the order is read from config.
    return tiny_model(
        tmp_path_factory.mktemp("tinybert"), HEADLINES, {0: "neutral", 1: "positive", 2: "negative"}
    )


def test_loads_from_a_local_directory_and_reads_the_label_order(model_dir: Path) -> None:
    scorer = TransformerScorer(str(model_dir), max_length=64, batch_size=3, device="cpu")
    assert scorer.label_index == (1, 2, 0)
    probs = scorer.score(HEADLINES)
    assert probs.shape == (len(HEADLINES), 3)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # Column order is (pos, neg, neu): compare with the raw model's softmax in its own label order.
    encoded = scorer.tokenizer(HEADLINES[:1], return_tensors="pt")
    with torch.inference_mode():
        raw = torch.softmax(scorer.model(**encoded).logits, dim=-1)[0].numpy()
    np.testing.assert_allclose(probs[0], raw[[1, 2, 0]], atol=1e-5)


def test_batched_scores_equal_one_at_a_time(model_dir: Path) -> None:
    batched = TransformerScorer(str(model_dir), batch_size=4, device="cpu").score(HEADLINES)
    single = TransformerScorer(str(model_dir), batch_size=1, device="cpu")
    one_by_one = np.vstack([single.score([h]) for h in HEADLINES])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_scorer_id_is_stable_and_changes_with_weights_and_settings(model_dir: Path, tmp_path: Path) -> None:
    a = TransformerScorer(str(model_dir), device="cpu").scorer_id
    assert a == TransformerScorer(str(model_dir), device="cpu").scorer_id
    assert a.startswith(f"transformers:{model_dir.name}@")
    assert TransformerScorer(str(model_dir), max_length=32, device="cpu").scorer_id != a
    same = tiny_model(tmp_path / "same", HEADLINES, {0: "neutral", 1: "positive", 2: "negative"}, seed=0)
    other = tiny_model(tmp_path / "other", HEADLINES, {0: "neutral", 1: "positive", 2: "negative"}, seed=1)
    assert TransformerScorer(str(same), device="cpu").scorer_id.split("@")[1] == a.split("@")[1]
    assert TransformerScorer(str(other), device="cpu").scorer_id.split("@")[1] != a.split("@")[1]


@pytest.mark.parametrize(
    "variant",
    [{}, {"max_length": 32}, {"quantize_int8": True}, {"dtype": "bfloat16"}],
)
def test_scorer_id_without_loading_the_model_matches_the_loaded_scorer(
    model_dir: Path, variant: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = SentimentSettings(scorer="finbert", finbert_model=str(model_dir), device="cpu", **variant)
    loaded = build_scorer(settings).scorer_id

    import transformers

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("scorer_id must not load the model's weights")

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", refuse)
    assert scorer_id(settings) == loaded
    assert scorer_id(SentimentSettings()) == build_scorer(SentimentSettings()).scorer_id


def test_int8_quantisation_and_build_scorer(model_dir: Path) -> None:
    settings = SentimentSettings(
        scorer="finbert", finbert_model=str(model_dir), device="cpu", quantize_int8=True
    )
    scorer = build_scorer(settings)
    assert scorer.scorer_id.endswith("-int8")
    probs = scorer.score(HEADLINES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_bfloat16_scores_close_to_float32(model_dir: Path) -> None:
    fp32 = TransformerScorer(str(model_dir), device="cpu")
    bf16 = TransformerScorer(str(model_dir), device="cpu", dtype="bfloat16")
    assert bf16.scorer_id.endswith("-bf16")
    assert bf16.scorer_id != fp32.scorer_id
    probs = bf16.score(HEADLINES)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, fp32.score(HEADLINES), atol=0.03)
    with pytest.raises(ConfigError, match="int8 quantisation starts from float32"):
        TransformerScorer(str(model_dir), device="cpu", dtype="bfloat16", quantize_int8=True)


def test_truncation_at_max_length(model_dir: Path) -> None:
    long_text = " ".join(["stocks rise"] * 100)
    scorer = TransformerScorer(str(model_dir), max_length=16, device="cpu")
    assert scorer.score([long_text]).shape == (1, 3)


def test_missing_models_and_bad_labels_fail_clearly(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="never downloads"):
        TransformerScorer(str(tmp_path / "absent"), device="cpu")
    with pytest.raises(ModelError, match="never downloads"):
        TransformerScorer("some-org/model-that-is-not-cached", device="cpu")
    unlabelled = tiny_model(tmp_path / "unlabelled", HEADLINES, {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(ModelError, match="expected names containing"):
        TransformerScorer(str(unlabelled), device="cpu")
    config = json.loads((model_dir / "config.json").read_text())
    assert config["id2label"]["1"] == "positive"


def test_device_resolution() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="not available"):
            resolve_device("cuda")
