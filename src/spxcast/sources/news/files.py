"""Users' own news archives: CSV or JSON Lines with a column mapping (a backfill source).

``columns`` maps bronze names (``url``, ``title``, ``summary``, ``domain``, ``language``,
``published_at``, ``crawled_at``, ``received_at``, ``provider``) to the file's column names; unmapped
bronze names are looked up under their own name. Values are read as text and parsed downstream, so a bad
row is quarantined rather than failing the import. A record the file cannot give is passed on with a
reason code in ``record_error`` (its text in ``raw``) and quarantined alone: ``invalid_encoding`` (bytes
that are not UTF-8), ``unparseable_record`` (a line that is not a JSON object, a CSV row with more fields
than the header). Every record carries its line number, so identical bad lines stay distinct.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

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
        for number, row in self._rows():
            if "record_error" in row:
                yield RawArticle(**row, line=number, provider=self.provider)  # type: ignore[typeddict-item]
                continue
            fields = {name: row.get(column) for name, column in self.columns.items()}
            yield RawArticle(**fields, line=number)  # type: ignore[typeddict-item]

    def commit(self) -> None:
        """A file import keeps no state."""

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        suffix = self.path.suffix.lower()
        if suffix == ".csv":
            yield from self._csv_rows()
        elif suffix in {".jsonl", ".ndjson", ".json"}:
            yield from self._json_rows()
        else:
            raise SourceError(f"news file {self.path} must be .csv or .jsonl, got {suffix or 'no extension'}")

    def _csv_rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        # surrogateescape: undecodable bytes survive as lone surrogates, found per row below.
        with self.path.open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
            reader = csv.DictReader(handle, restkey=_SURPLUS)
            limit = csv.field_size_limit(_CSV_FIELD_LIMIT)  # oversized fields are judged per record
            try:
                for row in reader:
                    text = json.dumps(row, ensure_ascii=False).encode("utf-8", "backslashreplace").decode()
                    if _SURPLUS in row:
                        yield reader.line_num, {"raw": text, "record_error": "unparseable_record"}
                    elif any(isinstance(v, str) and _UNDECODABLE.search(v) for v in row.values()):
                        yield reader.line_num, {"raw": text, "record_error": "invalid_encoding"}
                    else:
                        yield reader.line_num, dict(row)
            except csv.Error as exc:
                raise SourceError(f"news file {self.path} line {reader.line_num}: {exc}") from exc
            finally:
                csv.field_size_limit(limit)

    def _json_rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    text = raw.decode("utf-8", errors="backslashreplace").strip()
                    yield number, {"raw": text, "record_error": "invalid_encoding"}
                    continue
                try:
                    item = json.loads(line)
                except (json.JSONDecodeError, RecursionError):
                    yield number, {"raw": line, "record_error": "unparseable_record"}
                    continue
                if not isinstance(item, dict):
                    yield number, {"raw": line, "record_error": "unparseable_record"}
                    continue
                yield number, item


_SURPLUS = "__surplus_fields__"
_UNDECODABLE = re.compile("[\udc80-\udcff]")
# The csv module's own limit (128 KiB) raises for the whole file; fields up to this size are read and
# then quarantined per record when too long (spxcast.sources.news.records).
_CSV_FIELD_LIMIT = 64 * 1024 * 1024
