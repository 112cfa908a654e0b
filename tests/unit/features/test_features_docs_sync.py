"""The committed docs/features.md is what the catalog generates: a feature change must regenerate it."""

from __future__ import annotations

from pathlib import Path

from spxcast.features.catalog import FeatureContext, default_catalog
from spxcast.features.docs import catalog_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "features.md"


def test_committed_feature_docs_match_the_catalog() -> None:
    context = FeatureContext()
    expected = catalog_markdown(default_catalog(context), context)
    assert DOC.read_text() == expected, "regenerate with: spxcast features docs --out docs/features.md"
