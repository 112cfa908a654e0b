"""Market-only mode: no news (none ingested, an empty or header-only news file, news source none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spxcast.config import Settings, load_settings
from spxcast.ingest.news import ingest_news
from spxcast.lake import Lake
from spxcast.lake.tables import NEWS
from spxcast.pipeline.context import TaskContext
from spxcast.pipeline.tasks import news as news_tasks


@pytest.mark.parametrize("content", ["", "url,title,published_at\n"], ids=["empty", "header-only"])
def test_an_empty_news_file_writes_an_empty_typed_table(tmp_path: Path, content: str) -> None:
    path = tmp_path / "news.csv"
    path.write_text(content)
    settings = load_settings(home=tmp_path / "home", **{"news.source": "files", "news.files_path": str(path)})
    lake = Lake.from_settings(settings)
    result = ingest_news(settings, lake)
    assert (result["input"], result["accepted"], result["quarantined"]) == (0, 0, 0)
    assert result["versions"][NEWS.name] == 0, "the table is created, empty"
    stored = lake.read(NEWS.name)
    assert stored.height == 0
    assert dict(stored.schema) == NEWS.schema
    # Downstream, an empty bronze.news is market-only, said in each news task's output.
    for task in (news_tasks.validate_news, news_tasks.silver_news_sentiment, news_tasks.gold_news_signals):
        output = task(TaskContext(settings, "run", task.__name__))
        assert output == {"market_only": True, "skipped": "market-only: bronze.news holds no articles"}


def test_news_source_none_ingests_nothing(settings: Settings) -> None:
    none = settings.model_copy(update={"news": settings.news.model_copy(update={"source": "none"})})
    output = news_tasks.ingest_news(TaskContext(none, "run", "ingest_news"))
    assert output == {"market_only": True, "skipped": "market-only: news source is 'none'"}
    assert not Lake.from_settings(none).exists(NEWS.name)


def test_news_turned_off_is_market_only_even_with_news(settings: Settings) -> None:
    off = settings.model_copy(update={"features": settings.features.model_copy(update={"use_news": False})})
    lake = Lake.from_settings(off)
    assert news_tasks.signals_absence(off, lake) == (
        "news features are turned off (features.use_news = false / --no-news)"
    )
    assert news_tasks.news_absence(settings, lake) == "bronze.news does not exist (no news ingested)"
