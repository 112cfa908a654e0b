"""Validation of raw candle frames: every input row is either accepted into bronze or quarantined.

Reason codes (a row may carry several):

==========================  ====================================================================
``unparseable_record``      the source could not read the record at all (e.g. a line that is not JSON)
``invalid_encoding``        the record's bytes are not UTF-8
``mixed_types``             a JSON line whose field is an object or list where other lines have values
``oversized_field``         a text field longer than 128 KiB
``incomplete_candle``       the source marks the candle as not complete (the bar still forming)
``missing_timestamp``       no timestamp
``unparseable_timestamp``   a timestamp that is neither ISO-8601 nor a number of epoch seconds/ms/us/ns
``misaligned_timestamp``    ``ts`` not on the granularity's grid (bars up to 1 h: a multiple of the bar
                            length; longer bars: a whole hour, since OANDA aligns them to New York time)
``future_timestamp``        the bar closes after ``now + max_future_skew_s`` (an incomplete bar)
``timestamp_out_of_range``  a bar starting before 1970-01-01 (a misread epoch or date)
``missing_price``           open/high/low/close missing
``non_numeric_price``       a price that is not a number (garbage strings, booleans)
``nan_price``               NaN or infinite price
``non_positive_price``      a price <= 0
``high_below_low``          high < low
``open_outside_range``      open outside [low, high]
``close_outside_range``     close outside [low, high]
``non_numeric_volume``      a volume that is not a whole number (below 2**53)
``negative_volume``         volume < 0
``invalid_bid_ask``         a bid/ask close that is present but not a positive number, or bid > ask
``duplicate_key``           the same bar key again with identical content: the first row is kept
``conflicting_duplicate``   the same bar key with different content: every copy is quarantined, since
                            we cannot tell which one is right
==========================  ====================================================================

Timestamps are normalised to UTC: aware values are converted, naive values are read in the given
timezone (``timezone``), numbers are epoch time. Unordered input is sorted, never rejected. The
invariant ``accepted + quarantined == input`` holds for every input (a property test checks it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from spxcast.config import QualitySettings
from spxcast.errors import ConfigError, SchemaError
from spxcast.lake.tables import CANDLES, QUARANTINE, UTC_TS
from spxcast.timeutil import bar_length

REQUIRED_COLUMNS = ("ts", "open", "high", "low", "close")
PRICE_COLUMNS = ("open", "high", "low", "close")

_AWARE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M%:z")
_NAIVE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_UTC_SUFFIX = r"(Z|[+-]00:?00)$"
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_CANDLE_FIELDS = (*REQUIRED_COLUMNS, "volume", "bid_close", "ask_close", "complete")

#: Longest text field read, in bytes (128 KiB); a longer one is garbage or a runaway quote.
MAX_FIELD_BYTES = 128 * 1024

#: Reason codes a source puts in ``record_error`` for a record it could not read (module docstring).
RECORD_ERRORS = ("unparseable_record", "invalid_encoding", "mixed_types")
_MAX_VOLUME = 2.0**53  # beyond this a float no longer holds a whole number exactly


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of validating one raw frame.

    ``accepted`` has the ``bronze.candles`` schema, sorted by ``ts``; ``quarantined`` has the
    ``bronze.quarantine`` schema; ``reasons`` counts quarantined rows per reason code;
    ``normalised_to_utc`` counts accepted or not, the rows whose timestamp was not given in UTC.
    """

    input_rows: int
    accepted: pl.DataFrame
    quarantined: pl.DataFrame
    reasons: dict[str, int] = field(default_factory=dict)
    normalised_to_utc: int = 0


def _is_text(dtype: pl.DataType) -> bool:
    return dtype in (pl.Utf8, pl.Categorical) or isinstance(dtype, pl.Categorical | pl.Enum)


def _as_float(column: str, dtype: pl.DataType) -> pl.Expr:
    """A column read as Float64; anything that is not a number becomes null."""
    expr = pl.col(column)
    if dtype.is_numeric():
        return expr.cast(pl.Float64)
    if _is_text(dtype):
        return expr.cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)
    return pl.lit(None, dtype=pl.Float64)


def _epoch_to_utc(seconds_like: pl.Expr) -> pl.Expr:
    """Epoch numbers to UTC microseconds: seconds, milliseconds, microseconds or nanoseconds by magnitude."""
    size = seconds_like.abs()
    micros = (
        pl.when(size < 1e11)
        .then(seconds_like * 1e6)
        .when(size < 1e14)
        .then(seconds_like * 1e3)
        .when(size < 1e17)
        .then(seconds_like)
        .otherwise(seconds_like / 1e3)
    )
    return micros.round(0).cast(pl.Int64, strict=False).cast(UTC_TS)


def _parse_timestamp(dtype: pl.DataType, timezone: str) -> tuple[pl.Expr, pl.Expr]:
    """Expressions (``ts`` in UTC or null, whether the value was normalised from another zone)."""
    ts = pl.col("ts")
    not_utc_zone = timezone != "UTC"
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            local = ts.dt.replace_time_zone(timezone, ambiguous="null", non_existent="null")
            return local.dt.convert_time_zone("UTC").cast(UTC_TS), ts.is_not_null() & not_utc_zone
        return ts.dt.convert_time_zone("UTC").cast(UTC_TS), ts.is_not_null() & (dtype.time_zone != "UTC")
    if dtype == pl.Date:
        local = ts.cast(pl.Datetime("us")).dt.replace_time_zone(
            timezone, ambiguous="null", non_existent="null"
        )
        return local.dt.convert_time_zone("UTC").cast(UTC_TS), ts.is_not_null() & not_utc_zone
    if dtype.is_numeric():
        return _epoch_to_utc(ts.cast(pl.Float64)), pl.lit(False)
    if not _is_text(dtype):
        return pl.lit(None, dtype=UTC_TS), pl.lit(False)
    text = ts.cast(pl.Utf8).str.strip_chars()
    canonical = text.str.replace(r"Z$", "+00:00").str.replace("T", " ", literal=True)
    aware = pl.coalesce(
        [canonical.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us") for f in _AWARE_FORMATS]
    )
    naive = (
        pl.coalesce([canonical.str.to_datetime(f, strict=False, time_unit="us") for f in _NAIVE_FORMATS])
        .dt.replace_time_zone(timezone, ambiguous="null", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    epoch = _epoch_to_utc(text.cast(pl.Float64, strict=False))
    parsed = pl.coalesce([aware.cast(UTC_TS), naive.cast(UTC_TS), epoch])
    normalised = (aware.is_not_null() & ~text.str.contains(_UTC_SUFFIX)) | (
        aware.is_null() & naive.is_not_null() & not_utc_zone
    )
    return parsed, normalised


def _timestamps(raw: pl.DataFrame, timezone: str) -> pl.DataFrame:
    """Columns ``_ts`` (UTC or null) and ``_normalised`` for ``raw["ts"]`` in text.

    Text is parsed in stages: the common ISO-8601-with-offset form for every row, the other forms only
    for the rows that did not parse (parsing every format for every row costs several times more).
    """
    ts, normalised = _parse_timestamp(raw.schema["ts"], timezone)
    text = pl.col("ts").cast(pl.Utf8).str.strip_chars()
    canonical = text.str.replace(r"Z$", "+00:00").str.replace("T", " ", literal=True)
    fast = canonical.str.to_datetime(_AWARE_FORMATS[0], strict=False, time_zone="UTC", time_unit="us")
    out = raw.select(_ts=fast.cast(UTC_TS), _normalised=fast.is_not_null() & ~text.str.contains(_UTC_SUFFIX))
    rest = out["_ts"].is_null() & raw["ts"].is_not_null()
    if not rest.any():
        return out
    rows = rest.arg_true()
    slow = raw.select(pl.col("ts").gather(rows)).with_columns(_ts=ts, _normalised=normalised)
    return out.with_columns(
        out["_ts"].scatter(rows, slow["_ts"]), out["_normalised"].scatter(rows, slow["_normalised"])
    )


def validate_candles(
    raw: pl.DataFrame,
    *,
    instrument: str,
    granularity: str,
    source: str,
    now: datetime,
    quality: QualitySettings,
    timezone: str = "UTC",
    ingested_at: datetime | None = None,
) -> ValidationResult:
    """Split a raw candle frame into bronze rows and quarantine records.

    Parameters
    ----------
    raw
        Columns ``ts, open, high, low, close`` and optionally ``volume, bid_close, ask_close`` (missing
        volume is taken as 0 ticks), ``complete`` (OANDA's flag) and ``record_error`` (set by a source
        that could not read the record: one of :data:`RECORD_ERRORS`, any other text counts as
        ``unparseable_record``), in any dtype; other columns are kept only in the quarantine record.
        ``ts`` is the bar start.
    now
        The clock (aware UTC); bars closing after ``now + quality.max_future_skew_s`` are quarantined.
    timezone
        IANA zone of naive timestamps.
    """
    _check_input(raw, source, timezone)
    ingested_at = ingested_at or now
    checks = _checks(tuple(raw.schema.items()), granularity)
    latest_close_us = round((now + timedelta(seconds=quality.max_future_skew_s)).timestamp() * 1_000_000)
    flagged = _flag(_parse(raw, timezone), checks, latest_close_us)
    accepted = _bronze_rows(
        flagged.lazy().filter(~pl.col("_bad")), instrument, granularity, source, ingested_at
    )
    normalised = int(flagged["_normalised"].fill_null(False).sum())
    if not flagged["_bad"].any():  # the usual case: nothing to quarantine, nothing to count
        return ValidationResult(raw.height, accepted, pl.DataFrame(schema=QUARANTINE.schema), {}, normalised)
    codes = [*checks, *_DUPLICATE_CODES]
    rejected = flagged.filter(pl.col("_bad")).with_columns(
        _reasons=pl.concat_list(
            [pl.when(pl.col(f"_r_{code}")).then(pl.lit(code)) for code in codes]
        ).list.drop_nulls()
    )
    origin = quarantine_origin(source, instrument, granularity)
    counts = flagged.select([pl.col(f"_r_{code}").sum().alias(code) for code in codes]).row(0, named=True)
    return ValidationResult(
        input_rows=raw.height,
        accepted=accepted,
        quarantined=_quarantine_records(rejected, raw.columns, origin, ingested_at),
        reasons={code: int(n) for code, n in sorted(counts.items()) if n},
        normalised_to_utc=normalised,
    )


def _check_input(raw: pl.DataFrame, source: str, timezone: str) -> None:
    """Refuse input that no row of could be valid: required columns missing, an unknown timezone."""
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise SchemaError(
            f"candle input from {source}: missing columns {missing}; got {raw.columns} "
            "(map the file's columns with --map ts=<column>)"
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"timezone {timezone!r} is not an IANA zone name such as UTC or America/New_York"
        ) from exc


def _parse(raw: pl.DataFrame, timezone: str) -> pl.LazyFrame:
    """``raw`` plus ``_row``, ``_ts`` (UTC), ``_normalised`` and each price, volume and quote as Float64
    (``_open`` … ``_ask_close``; null where the value is not a number), as a query (text timestamps are
    parsed first, in stages: :func:`_timestamps`)."""
    schema = raw.schema
    if _is_text(schema["ts"]):
        parsed = raw.hstack(_timestamps(raw, timezone)).lazy()
    else:
        ts, normalised = _parse_timestamp(schema["ts"], timezone)
        parsed = raw.lazy().with_columns(_ts=ts, _normalised=normalised)
    return parsed.with_row_index("_row").with_columns(
        **{f"_{c}": _as_float(c, schema[c]) for c in PRICE_COLUMNS},
        _volume=_as_float("volume", schema["volume"]) if "volume" in schema else pl.lit(0.0),
        **{
            f"_{c}": _as_float(c, schema[c]) if c in schema else pl.lit(None, dtype=pl.Float64)
            for c in ("bid_close", "ask_close")
        },
    )


@lru_cache(maxsize=64)
def _checks(columns: tuple[tuple[str, pl.DataType], ...], granularity: str) -> dict[str, pl.Expr]:
    """Reason code -> expression true on the parsed rows that fail that check (built once per input
    schema and granularity: building them costs more than running them on a few rows). The clock comes
    in as the column ``_latest_close_us`` (:func:`_flag`). ``columns``: the input's schema as pairs."""
    schema = dict(columns)
    length = bar_length(granularity)
    grid_us = int(min(length, timedelta(hours=1)).total_seconds() * 1_000_000)
    length_us = int(length.total_seconds() * 1_000_000)
    valid_prices = pl.all_horizontal(
        [pl.col(f"_{c}").is_finite() & (pl.col(f"_{c}") > 0) for c in PRICE_COLUMNS]
    ).fill_null(False)
    o, h, lo, c = (pl.col(f"_{x}") for x in PRICE_COLUMNS)
    volume = pl.col("_volume")
    bad_quote = pl.any_horizontal(
        [
            (pl.col(x).is_not_null() & ~(pl.col(f"_{x}").is_finite() & (pl.col(f"_{x}") > 0)).fill_null(True))
            for x in ("bid_close", "ask_close")
            if x in schema
        ]
        or [pl.lit(False)]
    ) | (pl.col("_bid_close") > pl.col("_ask_close"))
    volume_given = pl.col("volume").is_not_null() if "volume" in schema else pl.lit(False)
    text = [name for name in _CANDLE_FIELDS if name in schema and _is_text(schema[name])]
    checks: dict[str, pl.Expr] = {
        "missing_timestamp": pl.col("ts").is_null(),
        "unparseable_timestamp": pl.col("ts").is_not_null() & pl.col("_ts").is_null(),
        "misaligned_timestamp": pl.col("_ts").dt.epoch("us") % grid_us != 0,
        "future_timestamp": pl.col("_ts").dt.epoch("us") + length_us > pl.col("_latest_close_us"),
        "timestamp_out_of_range": pl.col("_ts") < pl.lit(_EARLIEST).cast(UTC_TS),
        "missing_price": pl.any_horizontal([pl.col(x).is_null() for x in PRICE_COLUMNS]),
        "non_numeric_price": pl.any_horizontal(
            [pl.col(x).is_not_null() & pl.col(f"_{x}").is_null() for x in PRICE_COLUMNS]
        ),
        "nan_price": pl.any_horizontal(
            [pl.col(f"_{x}").is_nan() | pl.col(f"_{x}").is_infinite() for x in PRICE_COLUMNS]
        ),
        "non_positive_price": pl.any_horizontal([pl.col(f"_{x}") <= 0 for x in PRICE_COLUMNS]),
        "high_below_low": valid_prices & (h < lo),
        "open_outside_range": valid_prices & (h >= lo) & ((o < lo) | (o > h)),
        "close_outside_range": valid_prices & (h >= lo) & ((c < lo) | (c > h)),
        "non_numeric_volume": volume_given
        & (
            volume.is_null() | ~volume.is_finite() | (volume != volume.floor()) | (volume.abs() > _MAX_VOLUME)
        ),
        "negative_volume": volume < 0,
        "invalid_bid_ask": bad_quote,
    }
    # A record with a field too long to be a value, or that the source could not read, has nothing to
    # judge: that is its only reason.
    oversized = pl.any_horizontal(
        [pl.col(x).cast(pl.Utf8).str.len_bytes() > MAX_FIELD_BYTES for x in text] or [pl.lit(False)]
    ).fill_null(False)
    checks = {code: expr & ~oversized for code, expr in checks.items()}
    checks["oversized_field"] = oversized
    if "record_error" in schema:
        error = pl.col("record_error").cast(pl.Utf8)
        checks = {code: expr & error.is_null() for code, expr in checks.items()}
        for code in RECORD_ERRORS:
            checks[code] = error == code
        checks["unparseable_record"] = error.is_not_null() & ~error.is_in(RECORD_ERRORS[1:])
    if "complete" in schema:
        flag = pl.col("complete").cast(pl.Utf8).str.strip_chars().str.to_lowercase()
        checks["incomplete_candle"] = flag.is_in(["false", "0", "no"])
    return checks


def _flag(parsed: pl.LazyFrame, checks: dict[str, pl.Expr], latest_close_us: int) -> pl.DataFrame:
    """``parsed`` plus a ``_r_<code>`` flag per check and duplicate rule, and ``_bad`` (any flag), in one
    query. ``latest_close_us``: bars closing after it (microseconds since the epoch) are in the future."""
    clean_ts = pl.when(~pl.col("_bad")).then(pl.col("_ts"))
    flagged = (
        parsed.with_columns(_latest_close_us=pl.lit(latest_close_us, dtype=pl.Int64))
        .with_columns(**{f"_r_{code}": expr.fill_null(False) for code, expr in checks.items()})
        .with_columns(_bad=pl.any_horizontal(pl.col("^_r_.*$")))
        .with_columns(_repeated=~pl.col("_bad") & clean_ts.is_duplicated())
        .collect()
        .drop("_latest_close_us")
    )
    return _flag_duplicates(flagged)


def _bronze_rows(
    good: pl.LazyFrame, instrument: str, granularity: str, source: str, ingested_at: datetime
) -> pl.DataFrame:
    """Accepted parsed rows as ``bronze.candles`` rows, sorted by ``ts``."""
    return (
        good.sort("_ts", maintain_order=True)
        .select(
            instrument=pl.lit(instrument),
            granularity=pl.lit(granularity),
            ts=pl.col("_ts"),
            open=pl.col("_open"),
            high=pl.col("_high"),
            low=pl.col("_low"),
            close=pl.col("_close"),
            volume=pl.col("_volume").fill_null(0).cast(pl.Int64),
            bid_close=pl.col("_bid_close"),
            ask_close=pl.col("_ask_close"),
            source=pl.lit(source),
            ingested_at=pl.lit(ingested_at).cast(UTC_TS),
        )
        .select(list(CANDLES.schema))
        .collect()
    )


_DUPLICATE_CODES = ("duplicate_key", "conflicting_duplicate")


def _flag_duplicates(flagged: pl.DataFrame) -> pl.DataFrame:
    """Among otherwise valid rows, flag repeated bar keys (see the module docstring for the rule).

    ``flagged`` marks the valid rows whose key repeats (``_repeated``, dropped here). Adds
    ``_r_duplicate_key`` and ``_r_conflicting_duplicate`` and updates ``_bad``. Only the rows whose key
    repeats are examined in detail, so clean input costs one hash pass.
    """
    repeated = flagged["_repeated"]
    flagged = flagged.drop("_repeated")
    if not repeated.any():
        return flagged.hstack(
            [pl.repeat(False, flagged.height, eager=True).alias(f"_r_{code}") for code in _DUPLICATE_CODES]
        )
    content = pl.struct("_open", "_high", "_low", "_close", "_volume", "_bid_close", "_ask_close").hash(
        seed=0
    )
    copies = (
        flagged.filter(repeated)
        .select("_row", "_ts", _content=content)
        .with_columns(
            _versions=pl.col("_content").n_unique().over("_ts"),
            _occurrence=pl.int_range(pl.len()).over("_ts"),
        )
        .select(
            "_row",
            _r_conflicting_duplicate=pl.col("_versions") > 1,
            _r_duplicate_key=(pl.col("_versions") == 1) & (pl.col("_occurrence") > 0),
        )
    )
    return (
        flagged.join(copies, on="_row", how="left", maintain_order="left")
        .with_columns(pl.col(f"_r_{code}").fill_null(False) for code in _DUPLICATE_CODES)
        .with_columns(_bad=pl.col("_bad") | pl.col("_r_duplicate_key") | pl.col("_r_conflicting_duplicate"))
    )


def quarantine_origin(source: str, instrument: str, granularity: str) -> str:
    """The ``source`` of a quarantined candle record: ``<source>/<instrument>/<granularity>``."""
    return f"{source}/{instrument}/{granularity}"


def _quarantine_records(
    rejected: pl.DataFrame, raw_columns: list[str], source: str, ingested_at: datetime
) -> pl.DataFrame:
    """``bronze.quarantine`` rows: the raw record as JSON, its reasons, a stable record hash.

    The hash covers the origin, the raw record and its occurrence among identical rejected records of
    this input, so re-ingesting the same input adds nothing and identical bad copies stay distinct.
    """
    if rejected.height == 0:
        return pl.DataFrame(schema=QUARANTINE.schema)
    raw_json = rejected.select(
        pl.struct([pl.col(c).cast(pl.Utf8, strict=False) for c in raw_columns])
        .struct.json_encode()
        .alias("raw")
    ).with_columns(_occurrence=pl.int_range(pl.len()).over("raw"))
    hashes = [
        hashlib.sha256(f"{source}\x1f{raw}\x1f{n}".encode()).hexdigest()
        for raw, n in zip(raw_json["raw"].to_list(), raw_json["_occurrence"].to_list(), strict=True)
    ]
    return pl.DataFrame(
        {
            "table": [CANDLES.name] * rejected.height,
            "record_hash": hashes,
            "raw": raw_json["raw"],
            "reasons": rejected["_reasons"],
            "source": [source] * rejected.height,
            "ingested_at": pl.Series([ingested_at] * rejected.height, dtype=UTC_TS),
        },
        schema=QUARANTINE.schema,
    )
