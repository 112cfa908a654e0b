"""Raw news records → bronze rows: parsing, canonical URLs, normalised titles, relevance, dedup.

Every source yields :class:`RawArticle` mappings whose values may still be strings (times as ISO-8601,
RFC 2822 or GDELT's ``YYYYMMDDTHHMMSSZ``). :func:`to_bronze` turns them into ``bronze.news`` rows and
``bronze.quarantine`` rows: a record without URL or title, with a time that cannot be read or lies
outside the plausible range (before 1970, or more than 30 days after the ingestion), with a field that is
an object or list instead of text (``mixed_types``) or longer than 128 KiB (``oversized_field``), or that
its source could not read at all (``record_error``: ``unparseable_record``, ``invalid_encoding``) is
quarantined with its reason codes. Irrelevant articles and duplicates are dropped and counted, so that
``input = accepted + quarantined + irrelevant + duplicates`` always holds.

Time semantics: ``received_at`` is when spxcast could first know the article. Live sources set it to the
time they first saw the item; backfills leave it empty and it becomes
``max(published_at, crawled_at) + backfill latency``.
"""

from __future__ import annotations

import bisect
import hashlib
import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypedDict
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import polars as pl

from spxcast.lake.tables import NEWS, QUARANTINE
from spxcast.quality.candles import MAX_FIELD_BYTES


class RawArticle(TypedDict, total=False):
    """One article as a source saw it; times may be datetimes or strings, anything may be missing."""

    url: Any
    title: Any
    summary: Any
    domain: Any
    language: Any
    published_at: Any
    crawled_at: Any
    received_at: Any
    provider: Any
    raw: Any  # the source's original item when it was not a record at all (kept for the quarantine)
    record_error: Any  # why the source could not read the record (a reason code), with ``raw``
    line: Any  # where the record is in its file (file sources)


_TRACKING_PARAMS = re.compile(r"^(utm_.*|fbclid|gclid|dclid|mc_cid|mc_eid|ocid|cmpid|ref|ref_src|smid|mod)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """The canonical form of an article URL.

    Lower-case scheme and host, ``http`` taken as ``https``, ``www.`` and default ports dropped, tracking
    parameters (``utm_*``, ``fbclid``, ``gclid``, …) removed, the remaining query sorted, the fragment and
    trailing slashes dropped. Two URLs of one article map to one string.
    """
    parts = urlsplit(url.strip())
    scheme = (parts.scheme or "https").lower()
    scheme = "https" if scheme == "http" else scheme
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{parts.port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not _TRACKING_PARAMS.match(k.lower())
    )
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/")
    return urlunsplit((scheme, host, path, urlencode(query), ""))


def article_id(url: str) -> str:
    """The bronze key of an article: a hash of its canonical URL (32 hex characters)."""
    return _hash(canonical_url(url))


# " - Reuters", " | CNBC", " — Yahoo Finance": a source suffix of at most four words after the last separator.
_SOURCE_SUFFIX = re.compile(r"\s+[-|–—]\s+[\w.&' ]{1,40}$")
_PUNCTUATION = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


def normalise_title(title: str) -> str:
    """Casefolded title without a trailing source suffix (" - Reuters"), punctuation or extra spaces."""
    text = title.strip()
    suffix = _SOURCE_SUFFIX.search(text)
    if suffix is not None and len(suffix.group(0).split()) <= 5 and suffix.start() > 0:
        text = text[: suffix.start()]
    text = _PUNCTUATION.sub(" ", text.casefold())
    return _SPACES.sub(" ", text).strip()


def title_key(title: str) -> str:
    """Hash of the normalised title: articles with equal keys are one story."""
    return _hash(normalise_title(title))


def article_text(title: str, summary: str | None) -> str:
    """The text a scorer reads: the title, then the summary when there is one."""
    title = _SPACES.sub(" ", title).strip()
    summary = _SPACES.sub(" ", summary or "").strip()
    return f"{title}. {summary}" if summary else title


def text_hash(text: str) -> str:
    """Key of the score cache (``silver.news_scores``): a hash of the exact text scored."""
    return _hash(text)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class RelevanceFilter:
    """Matches any of ``terms`` as whole words, case-insensitively.

    ``fed`` matches "Fed holds rates" and "the Fed's view" but not "federal"; multi-word terms ("stock
    market") match with any run of spaces between the words; ``s&p`` matches "S&P 500".
    """

    def __init__(self, terms: Sequence[str]) -> None:
        cleaned = sorted({t.strip().casefold() for t in terms if t.strip()}, key=len, reverse=True)
        self.terms = tuple(cleaned)
        alternatives = "|".join(r"\s+".join(re.escape(w) for w in term.split()) for term in cleaned)
        self._pattern = (
            re.compile(rf"(?<![\w&])(?:{alternatives})(?![\w&])", re.IGNORECASE) if cleaned else None
        )

    def matches(self, *texts: str | None) -> bool:
        """True when no terms are configured or one term occurs in one of ``texts``."""
        if self._pattern is None:
            return True
        return any(text and self._pattern.search(text) for text in texts)


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from a datetime or a string (ISO-8601, RFC 2822, GDELT ``20240102T153000Z``).

    Returns ``None`` for ``None``/empty input; raises ``ValueError`` for text that is not a time.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = _parse_text_time(value.strip())
    else:
        raise ValueError(f"not a time: {value!r}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_text_time(text: str) -> datetime:
    compact = re.fullmatch(r"(\d{8})T?(\d{6})Z?", text)
    if compact:
        return datetime.strptime(compact[1] + compact[2], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"not a time: {text!r}") from exc


@dataclass(frozen=True)
class NewsBatch:
    """What :func:`to_bronze` made of one batch of raw records."""

    accepted: pl.DataFrame
    quarantined: pl.DataFrame
    irrelevant: int
    duplicates: int

    @property
    def input_count(self) -> int:
        return self.accepted.height + self.quarantined.height + self.irrelevant + self.duplicates


def to_bronze(
    records: Iterable[Mapping[str, Any]],
    *,
    provider: str,
    ingested_at: datetime,
    backfill_latency: timedelta,
    relevance: RelevanceFilter,
    title_window: timedelta = timedelta(hours=6),
    known_article_ids: Iterable[str] = (),
    known_titles: Mapping[str, Sequence[datetime]] | None = None,
) -> NewsBatch:
    """Parse, check, filter and deduplicate raw records into ``bronze.news`` and ``bronze.quarantine`` rows.

    Parameters
    ----------
    records : raw articles of one source.
    provider : default provider name for records that do not carry one.
    ingested_at : when this ingestion ran (UTC); stamped on every row written.
    backfill_latency : added to ``max(published_at, crawled_at)`` for records without ``received_at``.
    relevance : articles whose title and summary match none of its terms are dropped (counted).
    title_window : an article whose normalised title was received less than this long before (and kept)
        is a re-post of that story; the same headline on another day is a new story.
    known_article_ids : article ids already in bronze (their copies are duplicates).
    known_titles : title key -> received_at of every article already in bronze with that title.

    Returns
    -------
    NewsBatch with accepted rows (one per story: the earliest received copy, by canonical URL and by
    normalised title within ``title_window``), quarantined rows with reason codes, and the irrelevant and
    duplicate counts.
    """
    rows: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    irrelevant = 0
    for record in records:
        row, reasons = _parse_record(record, provider, backfill_latency, ingested_at)
        if reasons:
            bad.append(_quarantine_row(record, reasons, provider, ingested_at))
        elif not relevance.matches(row["title"], row["summary"]):
            irrelevant += 1
        else:
            rows.append(row)
    titles = {key: sorted(times) for key, times in (known_titles or {}).items()}
    accepted = _dedup(rows, set(known_article_ids), titles, title_window, ingested_at)
    quarantined = pl.DataFrame(bad, schema=QUARANTINE.schema)
    return NewsBatch(accepted, quarantined, irrelevant, len(rows) - accepted.height)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


_TAG = re.compile(r"<[^>]*>")


def _plain(value: Any) -> str | None:
    """Text without HTML tags and entities (feeds put markup in titles and summaries)."""
    text = _text(value)
    if text is None:
        return None
    return _text(_SPACES.sub(" ", html.unescape(_TAG.sub(" ", text))))


#: Reason codes a source sets in ``record_error`` (any other value counts as ``unparseable_record``).
RECORD_ERRORS = ("unparseable_record", "invalid_encoding")
_FIELDS = ("url", "title", "summary", "domain", "language", "published_at", "crawled_at", "received_at")
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# Generous: replays and test harnesses run clocks behind their data; a misread date is years off.
_FUTURE_SKEW = timedelta(days=30)


def _parse_record(
    record: Mapping[str, Any], provider: str, latency: timedelta, ingested_at: datetime
) -> tuple[dict[str, Any], list[str]]:
    error = record.get("record_error")
    if error is not None:
        return {}, [error if error in RECORD_ERRORS else "unparseable_record"]
    values = [record.get(name) for name in (*_FIELDS, "provider")]
    if any(isinstance(v, dict | list) for v in values):
        return {}, ["mixed_types"]
    if any(isinstance(v, str) and len(v.encode("utf-8", "surrogatepass")) > MAX_FIELD_BYTES for v in values):
        return {}, ["oversized_field"]
    reasons: list[str] = []
    url, title = _text(record.get("url")), _plain(record.get("title"))
    if url is None:
        reasons.append("missing_url")
    elif not urlsplit(url).hostname:
        reasons.append("invalid_url")
    if title is None:
        reasons.append("missing_title")
    times: dict[str, datetime | None] = {}
    for column in ("published_at", "crawled_at", "received_at"):
        try:
            times[column] = parse_time(record.get(column))
        except (ValueError, OverflowError):
            reasons.append(f"unparseable_{column}")
            times[column] = None
    latest = ingested_at + _FUTURE_SKEW
    if any(t is not None and not _EARLIEST <= t <= latest for t in times.values()):
        reasons.append("time_out_of_range")
    known = [t for t in (times["published_at"], times["crawled_at"]) if t is not None]
    if times["received_at"] is None:
        if known:
            times["received_at"] = max(known) + latency
        elif not any(r.startswith("unparseable") for r in reasons):
            reasons.append("missing_time")
    if reasons:
        return {}, reasons
    assert url is not None
    assert title is not None
    summary = _plain(record.get("summary"))
    text = article_text(title, summary)
    row = {
        "article_id": article_id(url),
        "url": url,
        "title": title,
        "summary": summary,
        "domain": _text(record.get("domain")) or urlsplit(url).hostname,
        "language": _text(record.get("language")),
        **times,
        "provider": _text(record.get("provider")) or provider,
        "title_key": title_key(title),
        "text_hash": text_hash(text),
    }
    return row, []


def _quarantine_row(
    record: Mapping[str, Any], reasons: list[str], provider: str, ingested_at: datetime
) -> dict[str, Any]:
    raw = json.dumps(dict(record), default=str, sort_keys=True)
    return {
        "table": NEWS.name,
        "record_hash": hashlib.sha256(raw.encode()).hexdigest()[:32],
        "raw": raw,
        "reasons": reasons,
        "source": provider,
        "ingested_at": ingested_at,
    }


def _dedup(
    rows: list[dict[str, Any]],
    known_ids: set[str],
    known_titles: dict[str, list[datetime]],
    title_window: timedelta,
    ingested_at: datetime,
) -> pl.DataFrame:
    kept: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (r["received_at"], r["article_id"])):
        times = known_titles.setdefault(row["title_key"], [])
        if row["article_id"] in known_ids or _near(times, row["received_at"], title_window):
            continue
        known_ids.add(row["article_id"])
        bisect.insort(times, row["received_at"])
        kept.append({**row, "ingested_at": ingested_at})
    return pl.DataFrame(kept, schema=NEWS.schema)


def _near(sorted_times: list[datetime], when: datetime, window: timedelta) -> bool:
    """Whether a time in ``sorted_times`` lies less than ``window`` from ``when``."""
    i = bisect.bisect_left(sorted_times, when)
    return any(abs(sorted_times[j] - when) < window for j in (i - 1, i) if 0 <= j < len(sorted_times))
