"""Transformer sequence classifiers (FinBERT and any compatible model), loaded from local files only.

``model`` is a local directory or a hub id already in the local cache (``ProsusAI/finbert`` when the user
has it); nothing is downloaded (``local_files_only=True``). The label order comes from
``config.id2label`` (names containing "pos", "neg", "neu"). Texts are sorted by length and batched with
dynamic padding (each batch padded to its longest text, at most ``max_length`` tokens), run under
``torch.inference_mode`` on the chosen device (auto: cuda, then mps, then cpu), optionally with int8
dynamic quantisation of the Linear layers on CPU, or in bfloat16. Probabilities are computed in float32.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spxcast.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def resolve_device(device: str) -> str:
    """``auto`` → cuda when available, else mps, else cpu; an explicit device must be available."""
    import torch

    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
    }
    if device == "auto":
        return next(name for name in ("cuda", "mps", "cpu") if available[name])
    if not available.get(device, False):
        raise ConfigError(f"sentiment device {device!r} is not available on this machine; use auto or cpu")
    return device


class TransformerScorer:
    """A sequence-classification model as a sentiment scorer."""

    def __init__(
        self,
        model: str,
        *,
        max_length: int = 64,
        batch_size: int = 64,
        device: str = "auto",
        quantize_int8: bool = False,
        dtype: str = "float32",
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.max_length = max_length
        self.batch_size = batch_size
        self.device = resolve_device(device)
        if quantize_int8 and self.device != "cpu":
            raise ConfigError(f"int8 dynamic quantisation runs on CPU only; the device is {self.device}")
        if dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"sentiment dtype must be float32 or bfloat16, got {dtype!r}")
        if quantize_int8 and dtype != "float32":
            raise ConfigError("int8 quantisation starts from float32 weights; use dtype float32 with --int8")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
            network = AutoModelForSequenceClassification.from_pretrained(model, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"sentiment model {model!r} is not available locally ({exc}); spxcast never downloads "
                "models: download it yourself (huggingface-cli download ProsusAI/finbert) and pass its folder"
            ) from exc
        self.label_index = _label_index(network.config.id2label, model)
        network.eval()
        if quantize_int8:
            with warnings.catch_warnings():
                # torch.ao.quantization is deprecated in favour of torchao, which is not a dependency;
                # quantize_dynamic still works in torch 2.13 and the benchmark measures its accuracy.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", UserWarning)
                network = torch.ao.quantization.quantize_dynamic(
                    network, {torch.nn.Linear}, dtype=torch.qint8
                )
        self.model = network.to(self.device, dtype=getattr(torch, dtype))
        self.scorer_id = transformer_scorer_id(
            model, max_length=max_length, quantize_int8=quantize_int8, dtype=dtype, config=network.config
        )

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """(p_pos, p_neg, p_neu) per text, float32; p_neu is 0 for a model without a neutral label."""
        import torch

        out = np.zeros((len(texts), 3), dtype=np.float32)
        if not texts:
            return out
        lengths = [
            len(ids)
            for ids in self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        ]
        order = np.argsort(lengths, kind="stable")
        with torch.inference_mode():
            for first in range(0, len(order), self.batch_size):
                rows = order[first : first + self.batch_size]
                encoded = self.tokenizer(
                    [texts[i] for i in rows],
                    padding="longest",
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                probs = torch.softmax(self.model(**encoded).logits.float(), dim=-1).cpu().numpy()
                for column, index in enumerate(self.label_index):
                    if index is not None:
                        out[rows, column] = probs[:, index]
        return out


def _label_index(id2label: dict[int, str], model: str) -> tuple[int | None, int | None, int | None]:
    found: dict[str, int] = {}
    for index, label in id2label.items():
        for key in ("pos", "neg", "neu"):
            if key in str(label).lower():
                found[key] = int(index)
    if "pos" not in found or "neg" not in found:
        raise ModelError(
            f"sentiment model {model!r} has labels {dict(id2label)}; expected names containing "
            "'positive' and 'negative' (and optionally 'neutral') in config.id2label"
        )
    return found["pos"], found["neg"], found.get("neu")


def transformer_scorer_id(
    model: str, *, max_length: int, quantize_int8: bool, dtype: str, config: Any | None = None
) -> str:
    """Identity of a transformer scorer without loading its weights.

    Model name, a short hash of the exact weights (the hub commit when the config records one, else the
    content of the config and weight files) and the variant (max_length, int8, bf16). ``config`` is the
    model's loaded config when the caller has it; otherwise only the config file is read.
    """
    if config is None:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(model, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"sentiment model {model!r} is not available locally ({exc})") from exc
    name = Path(model).name if Path(model).is_dir() else model
    variant = (
        f"len{max_length}" + ("-int8" if quantize_int8 else "") + ("-bf16" if dtype == "bfloat16" else "")
    )
    return f"transformers:{name}@{_fingerprint(model, config)}:{variant}"


def _fingerprint(model: str, config: Any) -> str:
    """A short hash identifying the exact weights: the hub commit when known, else the files' content."""
    commit = getattr(config, "_commit_hash", None)
    if commit:
        return str(commit)[:12]
    digest = hashlib.sha256()
    directory = Path(model)
    for name in ("config.json", *_WEIGHT_FILES):
        path = directory / name
        if path.is_file():
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:12]
