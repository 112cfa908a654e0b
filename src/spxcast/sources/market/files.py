"""Import of candle files: CSV, Parquet and NDJSON (including OANDA candle dumps), streamed in batches.

Columns are found by a mapping from the bronze name to the file's column (``--map ts=time``, settings
``market.files.columns``); unmapped columns are looked up by common aliases (``time``/``timestamp`` for
``ts``, ``o``/``h``/``l``/``c``, ``vol``…). Nested JSON fields are addressed with dots: an OANDA dump line
``{"time": ..., "volume": ..., "complete": true, "mid": {"o": "...", ...}, "bid": {"c": ...}}`` maps to
``ts=time, open=mid.o, …, bid_close=bid.c`` without any mapping. Values are passed on untouched (as text
for CSV and JSON): validation parses them, normalises timestamps (naive ones are read in the configured
timezone) and quarantines what it cannot use. Blank lines are not records.

A record the source cannot read becomes a row whose ``record_error`` holds a reason code (and
``record_detail`` the details), so that exactly that record is quarantined and the rest of the file is
imported: ``unparseable_record`` (a line that is not a JSON object, a CSV line with more fields than the
header), ``invalid_encoding`` (bytes that are not UTF-8; the record is kept with replacement characters)
and ``mixed_types`` (a JSON line whose field is an object or a list where the other lines have plain
values, or the reverse).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from spxcast.config import FilesSourceSettings
from spxcast.errors import ConfigError, SchemaError, SourceError

log = logging.getLogger(__name__)

_ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "time", "timestamp", "datetime", "date", "mid.time"),
    "open": ("open", "o", "mid.o"),
    "high": ("high", "h", "mid.h"),
    "low": ("low", "l", "mid.l"),
    "close": ("close", "c", "mid.c"),
    "volume": ("volume", "vol", "v", "ticks", "tick_volume"),
    "bid_close": ("bid_close", "bid", "bid.c"),
    "ask_close": ("ask_close", "ask", "ask.c"),
    "complete": ("complete",),
}
_SUFFIX_FORMAT = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}


def parse_column_map(pairs: list[str]) -> dict[str, str]:
    """``["ts=time", "close=Close"]`` -> ``{"ts": "time", "close": "Close"}`` (CLI ``--map``)."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        target, sep, column = pair.partition("=")
        if not sep or not target.strip() or not column.strip():
            raise ConfigError(
                f"column mapping {pair!r} is not of the form bronze_column=file_column (ts=time)"
            )
        mapping[target.strip()] = column.strip()
    return mapping


def resolve_columns(available: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """Bronze column -> file column, from the explicit mapping first, then aliases (case-insensitive)."""
    unknown = sorted(set(mapping) - set(_ALIASES))
    if unknown:
        raise ConfigError(f"column mapping names unknown candle columns {unknown}; known: {sorted(_ALIASES)}")
    missing = {k: v for k, v in mapping.items() if v not in available}
    if missing:
        raise SchemaError(f"mapped columns {missing} are not in the file; it has {available}")
    lowered = {c.lower(): c for c in available}
    resolved = dict(mapping)
    for target, aliases in _ALIASES.items():
        if target not in resolved:
            found = next((lowered[a] for a in aliases if a in lowered), None)
            if found is not None:
                resolved[target] = found
    return resolved


def _flatten(frame: pl.DataFrame) -> pl.DataFrame:
    """Struct columns become dotted columns (``mid`` -> ``mid.o``, ``mid.h``…), recursively."""
    while any(isinstance(dtype, pl.Struct) for dtype in frame.schema.values()):
        columns: list[pl.Expr] = []
        for name, dtype in frame.schema.items():
            if isinstance(dtype, pl.Struct):
                columns.extend(
                    pl.col(name).struct.field(f.name).alias(f"{name}.{f.name}") for f in dtype.fields
                )
            else:
                columns.append(pl.col(name))
        frame = frame.select(columns)
    return frame


_SURPLUS = "__surplus_fields__"
_REPLACEMENT = "\ufffd"


class FileCandleSource:
    """Candles from one file, as a :class:`~spxcast.sources.market.base.CandleSource`."""

    name = "files"

    def __init__(
        self, config: FilesSourceSettings, path: str | Path | None = None, fmt: str | None = None
    ) -> None:
        chosen = path or config.path
        if not chosen:
            raise ConfigError("the files source needs a file: pass --file PATH or set market.files.path")
        self.path = Path(chosen)
        self.config = config
        self.format = self._format(fmt or config.format)

    def _format(self, fmt: str) -> str:
        if fmt != "auto":
            if fmt not in {"csv", "parquet", "ndjson"}:
                raise ConfigError(f"file format {fmt!r} is not one of auto, csv, parquet, ndjson")
            return fmt
        found = _SUFFIX_FORMAT.get(self.path.suffix.lower())
        if found is None:
            raise ConfigError(
                f"cannot tell the format of {self.path} from its suffix; pass --format csv|parquet|ndjson"
            )
        return found

    def fetch(
        self, instrument: str, granularity: str, start: datetime | None, end: datetime | None
    ) -> Iterator[pl.DataFrame]:
        """Yield raw candle frames of at most ``batch_rows`` rows; the file is read whole (no range)."""
        if start is not None or end is not None:
            raise ConfigError("a file import takes the whole file; drop --start/--end for --source files")
        if not self.path.is_file():
            raise SourceError(f"candle file {self.path} does not exist or is not a file")
        readers = {"csv": self._csv, "parquet": self._parquet, "ndjson": self._ndjson}
        try:
            for batch in readers[self.format]():
                yield self._select(_flatten(batch))
        except (OSError, pl.exceptions.PolarsError, ValueError) as exc:
            raise SourceError(f"cannot read {self.format} file {self.path}: {exc}") from exc

    def _select(self, batch: pl.DataFrame) -> pl.DataFrame:
        columns = resolve_columns(batch.columns, self.config.columns)
        selected = [pl.col(source).alias(target) for target, source in columns.items()]
        selected += [pl.col(c) for c in ("line", "record_error", "record_detail") if c in batch.columns]
        return batch.select(selected)

    def _csv(self) -> Iterator[pl.DataFrame]:
        if self.path.stat().st_size == 0:
            return
        separator = "\t" if self.path.suffix.lower() == ".tsv" else ","
        header = pl.read_csv(
            self.path,
            n_rows=0,
            infer_schema=False,
            separator=separator,
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
        ).columns
        # One column more than the header: a line with surplus fields fills it, so it is quarantined as
        # unreadable (its columns may be shifted) instead of being silently truncated.
        schema = dict.fromkeys([*header, _SURPLUS], pl.String())
        lazy = pl.scan_csv(
            self.path,
            has_header=False,
            skip_rows=1,
            schema=schema,
            separator=separator,
            truncate_ragged_lines=True,
            raise_if_empty=False,
            encoding="utf8-lossy",  # bytes that are not UTF-8 become U+FFFD: that record is quarantined
        )
        for batch in lazy.collect_batches(chunk_size=self.config.batch_rows):
            surplus = pl.col(_SURPLUS)
            undecodable = pl.any_horizontal(
                pl.col(c).str.contains(_REPLACEMENT, literal=True) for c in header
            )
            yield batch.with_columns(
                record_error=pl.when(surplus.is_not_null())
                .then(pl.lit("unparseable_record"))
                .when(undecodable)
                .then(pl.lit("invalid_encoding")),
                record_detail=pl.when(surplus.is_not_null())
                .then(
                    pl.format(
                        f"more fields than the {len(header)} of the header; first surplus: {{}}", surplus
                    )
                )
                .when(undecodable)
                .then(pl.lit("bytes that are not UTF-8 (shown as U+FFFD)")),
            ).drop(_SURPLUS)

    def _parquet(self) -> Iterator[pl.DataFrame]:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(self.path)
        except Exception as exc:
            raise SourceError(f"{self.path} is not a readable Parquet file: {exc}") from exc
        for batch in parquet.iter_batches(batch_size=self.config.batch_rows):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            yield frame

    def _ndjson(self) -> Iterator[pl.DataFrame]:
        with self.path.open("rb") as handle:
            lines: list[bytes] = []
            for raw in handle:
                if raw.strip():
                    lines.append(raw.rstrip(b"\r\n"))
                if len(lines) >= self.config.batch_rows:
                    yield _parse_json_lines(lines)
                    lines = []
            if lines:
                yield _parse_json_lines(lines)


def _parse_json_lines(lines: list[bytes]) -> pl.DataFrame:
    """Parse JSON lines (one object each) in one go; with bad lines, line by line so none is lost.

    In the line-by-line fallback every row keeps its original text in ``line``, nested fields become
    dotted columns of text (``mid.o``), and a line that cannot be used gets a reason code in
    ``record_error`` (see the module docstring) and the details in ``record_detail``.
    """
    try:
        parsed = pl.read_ndjson(io.BytesIO(b"\n".join(lines)), infer_schema_length=1000)
        if parsed.height == len(lines) and not _has_coerced_values(_flatten(parsed)):
            return parsed
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
        pass
    log.debug("batch of %d JSON lines has bad lines; parsing line by line", len(lines))
    records = [_read_json_line(raw) for raw in lines]
    shapes = [_shape(fields) if fields is not None else {} for fields, _, _ in records]
    usual = _usual_kinds(shapes)
    rows: list[dict[str, Any]] = []
    for (fields, line, problem), shape in zip(records, shapes, strict=True):
        odd = sorted(path for path, kind in shape.items() if kind != usual[path])
        if problem is None and odd:
            problem = ("mixed_types", f"fields {odd} differ in kind (object, list, value) from other lines")
        if problem is not None:
            rows.append({"line": line, "record_error": problem[0], "record_detail": problem[1]})
        else:
            assert fields is not None
            rows.append({**_dotted_text(fields), "line": line, "record_error": None, "record_detail": None})
    return pl.from_dicts(rows, infer_schema_length=None)


def _has_coerced_values(frame: pl.DataFrame) -> bool:
    """Whether a text column holds an object or list that polars turned into JSON text (a type-mixed line)."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text:
        return False
    found = frame.select(pl.any_horizontal(pl.col(text).str.contains(r"^\s*[\[{]")).any()).item()
    return bool(found)


def _read_json_line(raw: bytes) -> tuple[dict[str, Any] | None, str, tuple[str, str] | None]:
    """``(object or None, the line as text, (reason code, detail) or None)`` for one JSON line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, raw.decode("utf-8", errors="backslashreplace"), ("invalid_encoding", str(exc))
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, line, ("unparseable_record", f"invalid JSON: {getattr(exc, 'msg', exc)}")
    if not isinstance(value, dict):
        return None, line, ("unparseable_record", f"expected a JSON object, got {type(value).__name__}")
    return value, line, None


def _kind(value: Any) -> str:
    return "object" if isinstance(value, dict) else "list" if isinstance(value, list) else "value"


def _shape(value: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted path -> kind (object, list, value) of every non-null field, nested ones included."""
    out: dict[str, str] = {}
    for key, item in value.items():
        if item is None:
            continue
        out[f"{prefix}{key}"] = _kind(item)
        if isinstance(item, dict):
            out.update(_shape(item, f"{prefix}{key}."))
    return out


def _usual_kinds(shapes: list[dict[str, str]]) -> dict[str, str]:
    """Per dotted path, the kind most lines give it."""
    counts: dict[str, dict[str, int]] = {}
    for shape in shapes:
        for path, kind in shape.items():
            kinds = counts.setdefault(path, {})
            kinds[kind] = kinds.get(kind, 0) + 1
    return {path: max(kinds, key=lambda k: kinds[k]) for path, kinds in counts.items()}


def _dotted_text(value: dict[str, Any], prefix: str = "") -> dict[str, str | None]:
    """Nested objects as dotted keys (``mid.o``) with text leaves, so no line can break the frame's types."""
    out: dict[str, str | None] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            out.update(_dotted_text(item, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = None if item is None else str(item)
    return out
