"""Users' own news archives: CSV or JSON Lines with a column mapping (a backfill source).

``columns`` maps bronze names (``url``, ``title``, ``summary``, ``domain``, ``language``,
``published_at``, ``crawled_at``, ``received_at``, ``provider``) to the file's column names; unmapped
bronze names are looked up under their own name. Values are read as text and parsed downstream, so a bad
row is quarantined rather than failing the import.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path

from spxcast.errors import ConfigError, SourceError
from spxcast.sources.news.records import RawArticle

FIELDS = (
    "url",
    "title",
    "summary",
    "domain",
    "language",
    "published_at",
    "crawled_at",
    "received_at",
    "provider",
)


class FilesSource:
    """Articles from one CSV or JSONL file; rows outside ``[start, end)`` are kept (the range is advisory)."""

    provider = "files"

    def __init__(self, path: Path, columns: Mapping[str, str] | None = None) -> None:
        unknown = sorted(set(columns or {}) - set(FIELDS))
        if unknown:
            raise ConfigError(f"news column mapping names unknown fields {unknown}; known: {list(FIELDS)}")
        if not path.is_file():
            raise SourceError(f"news file {path} does not exist")
        self.path = path
        self.columns = {name: (columns or {}).get(name, name) for name in FIELDS}

    def fetch(self, start: datetime | None, end: datetime | None) -> Iterator[RawArticle]:
        """Every row of the file as a raw article."""
        for row in self._rows():
            if "raw" in row:
                yield RawArticle(raw=row, provider=self.provider)
                continue
            yield RawArticle(**{name: row.get(column) for name, column in self.columns.items()})  # type: ignore[typeddict-item]

    def commit(self) -> None:
        """A file import keeps no state."""

    def _rows(self) -> Iterator[dict[str, object]]:
        suffix = self.path.suffix.lower()
        if suffix == ".csv":
            with self.path.open(newline="", encoding="utf-8") as handle:
                yield from csv.DictReader(handle)
        elif suffix in {".jsonl", ".ndjson", ".json"}:
            with self.path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        item = json.loads(line)
                    except json.JSONDecodeError:
                        yield {"raw": line.strip(), "line": number}
                        continue
                    yield item if isinstance(item, dict) else {"raw": item, "line": number}
        else:
            raise SourceError(f"news file {self.path} must be .csv or .jsonl, got {suffix or 'no extension'}")
