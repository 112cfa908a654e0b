"""``spxcast ingest market``."""

from __future__ import annotations

from spxcast.cli._common import fail


def market() -> None:
    """Not built yet: market ingestion arrives with its issue."""
    raise fail("market ingestion is not built yet in this version of spxcast")
