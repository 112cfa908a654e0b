"""The embedded default news source: headlines written from the synthetic market's events.

Event articles
    One article per row of ``bronze.synthetic_events``, received exactly at the event's ``received_at``
    (where the market's planted drift starts), published up to two minutes before. The headline is on the
    side of ``direction`` and its strength grows with ``magnitude``: three tiers (magnitude < 1/3, < 2/3,
    above) put one, two or four finance-lexicon words of that side, with an intensifier at the top tier.
Background articles
    Poisson arrivals with intraday seasonality (quiet nights, busy US session 13:30–20:00 UTC, a fifth
    of the weekday rate at weekends) at ``articles_per_day`` per weekday on average; headlines are neutral
    ("Wall Street awaits jobs data") or mixed (one word of each side), plus a share of off-topic items
    that the relevance filter drops.
Duplicates
    A share ``duplicate_rate`` of stories is re-posted 1–3 times, later: syndicated on another domain
    (with a " - Source" suffix or changed case/punctuation) or the same article under a URL variant
    (``http``, ``www.``, ``utm_*`` parameters, a trailing slash, a fragment). Deduplication keeps the
    earliest copy.

Everything is a pure function of the events, the range and the seed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from spxcast.sources.news.records import RawArticle

DOMAINS = ("reuters.com", "bloomberg.com", "cnbc.com", "marketwatch.com", "wsj.com", "ft.com", "apnews.com")
SOURCE_NAMES = {
    "reuters.com": "Reuters",
    "bloomberg.com": "Bloomberg",
    "cnbc.com": "CNBC",
    "marketwatch.com": "MarketWatch",
    "wsj.com": "WSJ",
    "ft.com": "Financial Times",
    "apnews.com": "AP",
}
SUBJECTS = ("Stocks", "US stocks", "Wall Street shares", "S&P 500 futures", "The stock market")
TOPICS = {
    "macro": ("jobs data", "inflation report", "retail sales", "GDP figures", "factory orders"),
    "earnings": ("tech earnings", "bank earnings", "retail earnings", "quarterly results"),
    "fed": ("Fed remarks", "Federal Reserve decision", "Fed minutes", "Treasury auction"),
}
GENERIC_TOPICS = tuple(t for topics in TOPICS.values() for t in topics)
# Per direction, per magnitude tier: templates with {subject}, {topic} and {pct} (a move size that makes
# headlines of different events differ); the lexicon words are fixed (1, 2 and 4 words of the event's
# side), so the score's strength grows with the tier. Every subject is a relevance term.
EVENT_TEMPLATES: dict[int, tuple[tuple[str, ...], ...]] = {
    1: (
        (
            "{subject} edge higher, up {pct}%, after {topic}",
            "{subject} climb {pct}% as investors digest {topic}",
        ),
        (
            "{subject} rise {pct}% after strong {topic}",
            "{subject} rise {pct}% as {topic} improves sentiment",
        ),
        (
            "{subject} surge sharply, up {pct}%, as strong {topic} boosts optimism",
            "{subject} soar {pct}% as upbeat {topic} lifts confidence",
        ),
    ),
    -1: (
        (
            "{subject} edge lower, down {pct}%, after {topic}",
            "{subject} drop {pct}% as investors digest {topic}",
        ),
        ("{subject} fall {pct}% after weak {topic}", "{subject} slide {pct}% as {topic} disappoints"),
        (
            "{subject} plunge sharply, down {pct}%, as weak {topic} stokes recession fears",
            "{subject} tumble {pct}% as dismal {topic} deepens losses",
        ),
    ),
}
BACKGROUND_TEMPLATES = (
    "Wall Street awaits {topic}",
    "Stocks little changed near {level} ahead of {topic}",
    "Stock market investors weigh {topic}",
    "What to watch on Wall Street: {topic}",
    "Stock traders position for {topic}",
    "Stocks mixed as gains in tech offset losses in energy",
    "S&P 500 flat at {level} as investors look to {topic}",
    "10-year Treasury yields steady at {yield_pct}% before {topic}",
)
OFF_TOPIC_TEMPLATES = (
    "City council approves new park budget",
    "Local team wins regional championship",
    "Museum opens exhibition on ancient maps",
)
# Relative article rate per UTC hour of a weekday (US session busiest).
HOURLY_WEIGHTS = np.array([0.3] * 6 + [0.6] * 5 + [1.2, 1.6] + [2.5] * 7 + [1.0] * 2 + [0.5] * 2, dtype=float)
WEEKEND_FACTOR = 0.2
OFF_TOPIC_SHARE = 0.08


class SyntheticNewsSource:
    """Synthetic articles for ``[start, end)`` from the events of one instrument."""

    provider = "synthetic"

    def __init__(
        self, events: pl.DataFrame, *, seed: int, articles_per_day: float = 60.0, duplicate_rate: float = 0.3
    ) -> None:
        self.events = events
        self.seed = seed
        self.articles_per_day = articles_per_day
        self.duplicate_rate = duplicate_rate

    def fetch(self, start: datetime | None, end: datetime | None) -> Iterator[RawArticle]:
        """The stories and their re-posts, in generation order (not sorted by time)."""
        if start is None or end is None or end <= start:
            raise ValueError(f"synthetic news needs a range with start < end; got {start}..{end}")
        rng = np.random.default_rng(self.seed)
        stories = [*self._event_stories(start, end, rng), *self._background_stories(start, end, rng)]
        for number, story in enumerate(stories):
            yield story
            if rng.random() < self.duplicate_rate:
                for copy in range(int(rng.integers(1, 4))):
                    yield _repost(story, number, copy, rng)

    def commit(self) -> None:
        """Synthetic news keeps no state."""

    def _event_stories(self, start: datetime, end: datetime, rng: np.random.Generator) -> list[RawArticle]:
        events = self.events.filter((pl.col("received_at") >= start) & (pl.col("received_at") < end))
        stories: list[RawArticle] = []
        for event in events.sort("received_at", "event_id").iter_rows(named=True):
            direction = 1 if event["direction"] > 0 else -1
            tier = min(2, int(float(event["magnitude"]) * 3))
            template = _choice(rng, EVENT_TEMPLATES[direction][tier])
            topic = _choice(rng, TOPICS.get(str(event["kind"]).lower(), GENERIC_TOPICS))
            pct = round(0.1 + 1.5 * float(event["magnitude"]) + float(rng.uniform(0, 0.3)), 2)
            title = _sentence(template.format(subject=_choice(rng, SUBJECTS), topic=topic, pct=pct))
            received = event["received_at"]
            published = received - timedelta(seconds=float(rng.uniform(0, 120)))
            stories.append(_story(title, published, received, f"event-{event['event_id']}", rng))
        return stories

    def _background_stories(
        self, start: datetime, end: datetime, rng: np.random.Generator
    ) -> list[RawArticle]:
        hours = pl.datetime_range(
            start.replace(minute=0, second=0, microsecond=0), end, "1h", time_zone="UTC", eager=True
        )
        weekday = hours.dt.weekday().to_numpy() <= 5
        weights = HOURLY_WEIGHTS[hours.dt.hour().to_numpy()] * np.where(weekday, 1.0, WEEKEND_FACTOR)
        rates = weights * self.articles_per_day / HOURLY_WEIGHTS.sum()
        counts = rng.poisson(rates)
        stories: list[RawArticle] = []
        for hour, count in zip(hours.to_list(), counts, strict=True):
            for offset in np.sort(rng.uniform(0, 3600, size=count)):
                published = hour + timedelta(seconds=float(offset))
                if not start <= published < end:
                    continue
                received = published + timedelta(seconds=float(rng.uniform(5, 180)))
                if rng.random() < OFF_TOPIC_SHARE:
                    title = _choice(rng, OFF_TOPIC_TEMPLATES)
                else:
                    title = _choice(rng, BACKGROUND_TEMPLATES).format(
                        topic=_choice(rng, GENERIC_TOPICS),
                        level=int(rng.integers(4400, 5200)),
                        yield_pct=round(float(rng.uniform(3.8, 4.8)), 2),
                    )
                stories.append(_story(_sentence(title), published, received, f"bg-{len(stories)}", rng))
        return stories


def _choice(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60]


def _story(
    title: str, published: datetime, received: datetime, tag: str, rng: np.random.Generator
) -> RawArticle:
    domain = _choice(rng, DOMAINS)
    url = f"https://{domain}/markets/{published:%Y/%m/%d}/{_slug(title)}-{tag}"
    return RawArticle(
        url=url,
        title=title,
        domain=domain,
        language="English",
        published_at=published,
        received_at=received,
        provider="synthetic",
    )


def _repost(story: RawArticle, number: int, copy: int, rng: np.random.Generator) -> RawArticle:
    """A later copy of ``story``: syndicated elsewhere (edited title) or a URL variant of the same page."""
    delay = timedelta(minutes=float(rng.uniform(1, 30)))
    title = str(story["title"])
    if rng.random() < 0.5:
        domain = _choice(rng, tuple(d for d in DOMAINS if d != story["domain"]))
        edits = (f"{title} - {SOURCE_NAMES[domain]}", title.upper(), f"{title}!", f"{title.lower()}.")
        url = f"https://{domain}/news/{_slug(title)}-{number}-{copy}"
        return {
            **story,
            "url": url,
            "domain": domain,
            "title": _choice(rng, edits),
            "received_at": story["received_at"] + delay,
        }
    url = str(story["url"])
    variants = (
        url.replace("https://", "http://"),
        url.replace("https://", "https://www."),
        f"{url}?utm_source=twitter&utm_medium=social",
        f"{url}/",
        f"{url}#comments",
    )
    return {**story, "url": _choice(rng, variants), "received_at": story["received_at"] + delay}
