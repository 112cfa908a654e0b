"""Import of candle files: CSV, Parquet and NDJSON (including OANDA candle dumps), streamed in batches.

Columns are found by a mapping from the bronze name to the file's column (``--map ts=time``, settings
``market.files.columns``); unmapped columns are looked up by common aliases (``time``/``timestamp`` for
``ts``, ``o``/``h``/``l``/``c``, ``vol``…). Nested JSON fields are addressed with dots: an OANDA dump line
``{"time": ..., "volume": ..., "complete": true, "mid": {"o": "...", ...}, "bid": {"c": ...}}`` maps to
``ts=time, open=mid.o, …, bid_close=bid.c`` without any mapping. Values are passed on untouched (as text
for CSV and JSON): validation parses them, normalises timestamps (naive ones are read in the configured
timezone) and quarantines what it cannot use. A JSON line that does not parse becomes a row whose
``record_error`` says why, so it is quarantined rather than lost; blank lines are not records.
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
        selected += [pl.col(c) for c in ("line", "record_error") if c in batch.columns]
        return batch.select(selected)

    def _csv(self) -> Iterator[pl.DataFrame]:
        if self.path.stat().st_size == 0:
            return
        separator = "\t" if self.path.suffix.lower() == ".tsv" else ","
        header = pl.read_csv(
            self.path, n_rows=0, infer_schema=False, separator=separator, truncate_ragged_lines=True
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
        )
        for batch in lazy.collect_batches(chunk_size=self.config.batch_rows):
            surplus = pl.col(_SURPLUS)
            yield batch.with_columns(
                record_error=pl.when(surplus.is_not_null()).then(
                    pl.format(
                        f"more fields than the {len(header)} of the header; first surplus: {{}}", surplus
                    )
                )
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

    In the line-by-line fallback every row keeps its original text in ``line`` and, when it could not be
    read, the reason in ``record_error``.
    """
    try:
        parsed = pl.read_ndjson(io.BytesIO(b"\n".join(lines)), infer_schema_length=1000)
        if parsed.height == len(lines):
            return parsed
    except pl.exceptions.PolarsError:
        log.debug("batch of %d JSON lines has bad lines; parsing line by line", len(lines))
    records: list[dict[str, Any]] = []
    for line in (raw.decode("utf-8", errors="replace") for raw in lines):
        error: str | None
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            value, error = {}, f"invalid JSON: {exc.msg}"
        else:
            error = None if isinstance(value, dict) else f"expected a JSON object, got {type(value).__name__}"
        fields = _stringify(value) if isinstance(value, dict) else {}
        records.append({**fields, "line": line, "record_error": error})
    return pl.from_dicts(records, infer_schema_length=None)


def _stringify(value: dict[str, Any]) -> dict[str, Any]:
    """Leaves as text (so mixed types across lines cannot break the frame); nested objects kept nested."""
    return {
        k: _stringify(v) if isinstance(v, dict) else (None if v is None else str(v)) for k, v in value.items()
    }
