"""The Delta lake: one table catalog (:mod:`spxcast.lake.tables`) and one store (:class:`Lake`)."""

from spxcast.lake.store import Lake, frame_checksum
from spxcast.lake.tables import TABLES, TableSpec, table

__all__ = ["TABLES", "Lake", "TableSpec", "frame_checksum", "table"]
