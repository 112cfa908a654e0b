"""``spxcast ingest news``."""

from __future__ import annotations

from spxcast.cli._common import fail


def news() -> None:
    """Not built yet: news ingestion arrives with its issue."""
    raise fail("news ingestion is not built yet in this version of spxcast")
