"""Bronze rules for news: canonical URLs, normalised titles, word-boundary relevance, dedup, quarantine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spxcast.sources.news.records import (
    RawArticle,
    RelevanceFilter,
    article_id,
    canonical_url,
    normalise_title,
    parse_time,
    to_bronze,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TERMS = ["fed", "stock market", "s&p 500", "s&p", "stocks", "dow"]


@pytest.mark.parametrize(
    "variant",
    [
        "https://www.Reuters.com/markets/fed-holds-rates/",
        "http://reuters.com/markets/fed-holds-rates",
        "https://reuters.com/markets/fed-holds-rates?utm_source=twitter&utm_medium=social",
        "https://reuters.com/markets/fed-holds-rates#comments",
        "https://REUTERS.COM:443/markets//fed-holds-rates?fbclid=abc",
    ],
)
def test_url_variants_share_one_canonical_form(variant: str) -> None:
    assert canonical_url(variant) == "https://reuters.com/markets/fed-holds-rates"
    assert article_id(variant) == article_id("https://reuters.com/markets/fed-holds-rates")


def test_meaningful_query_parameters_and_paths_stay_distinct() -> None:
    assert canonical_url("https://x.com/a?id=2&utm_campaign=z&page=1") == "https://x.com/a?id=2&page=1"
    assert article_id("https://x.com/a?id=1") != article_id("https://x.com/a?id=2")
    assert article_id("https://x.com/a") != article_id("https://x.com/b")


def test_normalised_titles() -> None:
    base = normalise_title("Stocks rally as Fed signals cuts")
    assert normalise_title("STOCKS RALLY AS FED SIGNALS CUTS!") == base
    assert normalise_title("Stocks rally as Fed signals cuts - Reuters") == base
    assert normalise_title("  Stocks  rally, as Fed signals cuts | Yahoo Finance ") == base
    assert normalise_title("Stocks fall as Fed signals hikes") != base


@pytest.mark.parametrize(
    ("text", "relevant"),
    [
        ("Fed holds rates steady", True),
        ("The Fed's decision looms", True),
        ("Federal budget talks stall", False),  # 'fed' is not a substring match
        ("Fedex shares slip", False),
        ("US STOCK   MARKET opens higher", True),  # multi-word term, any spacing and case
        ("Stockpiles of grain grow", False),
        ("S&P 500 hits a record", True),
        ("Dow Jones edges up", True),
        ("New download tools released", False),
        ("Local team wins title", False),
    ],
)
def test_relevance_uses_word_boundaries(text: str, relevant: bool) -> None:
    assert RelevanceFilter(TERMS).matches(text) is relevant


def test_relevance_without_terms_keeps_everything_and_checks_the_summary() -> None:
    assert RelevanceFilter([]).matches("anything")
    assert RelevanceFilter(TERMS).matches("Quiet morning", "Analysts expect the Fed to wait")


def test_parse_time_formats() -> None:
    expected = datetime(2024, 1, 2, 15, 30, tzinfo=UTC)
    assert parse_time("20240102T153000Z") == expected
    assert parse_time("2024-01-02T15:30:00Z") == expected
    assert parse_time("2024-01-02T10:30:00-05:00") == expected
    assert parse_time("Tue, 02 Jan 2024 15:30:00 GMT") == expected
    assert parse_time(datetime(2024, 1, 2, 15, 30)) == expected  # naive = UTC  # noqa: DTZ001
    assert parse_time(None) is None
    assert parse_time("  ") is None
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday-ish")


def _article(url: str, title: str, minute: float, **extra: object) -> RawArticle:
    return RawArticle(url=url, title=title, received_at=NOW + timedelta(minutes=minute), **extra)  # type: ignore[typeddict-item]


def _batch(records: list[RawArticle], **kwargs: object):
    return to_bronze(
        records,
        provider="test",
        ingested_at=NOW,
        backfill_latency=timedelta(minutes=5),
        relevance=RelevanceFilter(TERMS),
        **kwargs,  # type: ignore[arg-type]
    )


def test_dedup_keeps_the_earliest_received_copy_by_url_and_by_title() -> None:
    records = [
        _article("https://b.com/story?utm_source=x", "Stocks rally as Fed signals cuts", 7),
        _article("https://b.com/story", "Stocks rally as Fed signals cuts", 3),  # same URL, earlier
        _article("https://c.com/other", "STOCKS RALLY AS FED SIGNALS CUTS - CNBC", 1),  # syndicated, earliest
        _article(
            "https://d.com/x", "Stocks rally as Fed signals cuts", 60 * 24
        ),  # same headline next day: new story
        _article("https://e.com/y", "Dow slips as yields climb", 2),
    ]
    batch = _batch(records)
    assert batch.duplicates == 2
    assert batch.irrelevant == 0
    assert batch.quarantined.height == 0
    kept = {row["url"]: row["received_at"] for row in batch.accepted.iter_rows(named=True)}
    assert kept == {
        "https://c.com/other": NOW + timedelta(minutes=1),
        "https://e.com/y": NOW + timedelta(minutes=2),
        "https://d.com/x": NOW + timedelta(days=1),
    }
    assert batch.input_count == len(records)


def test_articles_already_in_bronze_are_duplicates() -> None:
    record = _article("https://b.com/story", "Stocks rally as Fed signals cuts", 3)
    first = _batch([record])
    again = _batch(
        [record, _article("https://z.com/q", "Stocks rally as Fed signals cuts!", 4)],
        known_article_ids=first.accepted["article_id"].to_list(),
        known_titles={k: [t] for k, t in first.accepted.select("title_key", "received_at").iter_rows()},
    )
    assert again.accepted.is_empty()
    assert again.duplicates == 2


def test_bad_records_are_quarantined_with_reasons_and_nothing_is_lost() -> None:
    records = [
        _article("https://ok.com/1", "Stocks climb", 1),
        RawArticle(title="Stocks without a link", received_at=NOW),
        RawArticle(url="https://x.com/2", title="  ", received_at=NOW),
        RawArticle(url="not a url", title="Stocks odd", received_at=NOW),
        RawArticle(url="https://x.com/3", title="Stocks timeless"),
        RawArticle(url="https://x.com/4", title="Stocks bad time", published_at="31/31/2024 25:61"),
        _article("https://x.com/5", "Cooking tips for summer", 2),
        RawArticle(raw="<<garbage>>"),
    ]
    batch = _batch(records)
    reasons = {tuple(r) for r in batch.quarantined["reasons"].to_list()}
    assert reasons == {
        ("missing_url",),
        ("missing_title",),
        ("invalid_url",),
        ("missing_time",),
        ("unparseable_published_at",),
        ("missing_url", "missing_title", "missing_time"),
    }
    assert batch.accepted.height == 1
    assert batch.irrelevant == 1
    assert batch.accepted.height + batch.quarantined.height + batch.irrelevant + batch.duplicates == len(
        records
    )
    assert all(raw for raw in batch.quarantined["raw"])
    assert "garbage" in "".join(batch.quarantined["raw"])
    assert set(batch.quarantined["table"]) == {"bronze.news"}


def test_markup_is_removed_from_titles_and_summaries() -> None:
    record = _article(
        "https://a.com/1",
        "S&amp;P 500 <b>rallies</b>",
        0,
        summary="<p>Stocks&nbsp;gain on <a href='x'>Fed</a> news.</p>",
    )
    [row] = _batch([record]).accepted.iter_rows(named=True)
    assert row["title"] == "S&P 500 rallies"
    assert row["summary"] == "Stocks gain on Fed news."


def test_backfill_received_at_is_the_later_of_published_and_crawled_plus_latency() -> None:
    published = "2024-05-01T10:00:00Z"
    crawled = "20240501T101500Z"
    batch = _batch(
        [RawArticle(url="https://a.com/1", title="Stocks up", published_at=published, crawled_at=crawled)]
    )
    [row] = batch.accepted.iter_rows(named=True)
    assert row["crawled_at"] == datetime(2024, 5, 1, 10, 15, tzinfo=UTC)
    assert row["received_at"] == datetime(2024, 5, 1, 10, 20, tzinfo=UTC)
    live = _batch([_article("https://a.com/2", "Stocks up again", 0, published_at=published)])
    assert live.accepted["received_at"].item() == NOW  # a live source's first-seen time is kept as is
