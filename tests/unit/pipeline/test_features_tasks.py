"""The feature tasks on a real (temporary) lake, and the ``spxcast features`` verbs."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from features_factory import NEWS_TEST_FEATURES, news_signals_for, random_candles, stub_news_module
from spxcast.cli.main import app
from spxcast.config import Settings
from spxcast.errors import LakeError
from spxcast.features.catalog import default_catalog, feature_context
from spxcast.lake import Lake
from spxcast.lake.tables import BAR_KEY
from spxcast.pipeline.context import TaskContext
from spxcast.pipeline.runner import resolve_callable
from spxcast.pipeline.spec import NEWS_FEATURE_TASKS, get_dag
from spxcast.pipeline.tasks.features import build_features

# The features DAG without its news tasks, in the spec's order (gold_labels last).
MARKET_ORDER = [name for name in get_dag("features").order() if name not in NEWS_FEATURE_TASKS]


def _run_market_tasks(settings: Settings, run_id: str) -> dict[str, dict[str, object]]:
    dag = get_dag("features")
    return {
        name: dict(resolve_callable(dag.task(name).callable)(TaskContext(settings, run_id, name)) or {})
        for name in MARKET_ORDER
    }


@pytest.fixture
def lake_with_candles(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Lake:
    """bronze.candles with 2,100 M1 bars, gold.news_signals for them, and the news stand-in module."""
    monkeypatch.setitem(sys.modules, "spxcast.features.news", stub_news_module())
    lake = Lake.from_settings(settings)
    candles = random_candles(2100, seed=4).with_columns(
        pl.lit("test").alias("source"), pl.lit(datetime(2024, 2, 1, tzinfo=UTC)).alias("ingested_at")
    )
    lake.write("bronze.candles", candles)
    lake.write("gold.news_signals", news_signals_for(candles))
    return lake


def test_tasks_build_gold_features_that_match_the_catalog(
    settings: Settings, lake_with_candles: Lake
) -> None:
    # The tasks in DAG order with news signals in the lake: gold joins them.
    assert MARKET_ORDER.index("gold_labels") == len(MARKET_ORDER) - 1
    results = _run_market_tasks(settings, "test-run")
    assert "market_only" not in results["gold_labels"]
    gold = lake_with_candles.read("gold.features")
    catalog = default_catalog(feature_context(settings))
    assert gold.columns == [*BAR_KEY, *catalog.names(), "target_ret_30m_pct", "target_dir_30m", "label_ok"]
    assert all(gold.schema[s.name] == s.dtype for s in catalog)
    assert gold.height == results["gold_labels"]["rows"] == 2100
    assert results["gold_labels"]["labelled"] == gold["label_ok"].sum() > 1500
    assert results["silver_technical"] == {
        "table": "silver.technical",
        "version": 0,
        "rows": 2100,
        "features": len(catalog.names("technical")),
        "families": ["technical"],
    }
    assert gold[NEWS_TEST_FEATURES[0]].null_count() == 0
    # A rebuild overwrites atomically: a new version with the same content.
    again = _run_market_tasks(settings, "test-run-2")
    assert again["gold_labels"]["version"] == results["gold_labels"]["version"] + 1
    assert lake_with_candles.read("gold.features").equals(gold)


def test_no_news_builds_market_features_only(settings: Settings, lake_with_candles: Lake) -> None:
    """--no-news means "without news features", even when news signals exist: they are not joined."""
    steps: list[str] = []
    results = build_features(
        settings, "test-run", on_step=lambda task, result: steps.append(task), include_news=False
    )
    assert list(results) == MARKET_ORDER
    assert steps == [name for name in MARKET_ORDER for _ in range(2)]
    assert results["gold_labels"]["market_only"] is True
    assert "turned off" in results["gold_labels"]["news"]
    gold = lake_with_candles.read("gold.features")
    assert gold.height == 2100
    assert gold[NEWS_TEST_FEATURES[0]].null_count() == 2100
    assert gold["vol_parkinson_w20"].null_count() < 100


def test_cli_verbs(settings: Settings, lake_with_candles: Lake, tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(settings.home)]
    built = runner.invoke(app, [*home, "features", "build", "--no-news"])
    assert built.exit_code == 0, built.output
    assert "gold.features" in built.output

    listed = runner.invoke(app, [*home, "features", "list", "--group", "volatility"], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    assert "vol_parkinson_w20" in listed.output
    assert "rsi_w14" not in listed.output
    unknown = runner.invoke(app, [*home, "features", "list", "--group", "astrology"])
    assert unknown.exit_code == 2
    assert "unknown feature group" in unknown.output

    ts = lake_with_candles.read("gold.features")["ts"][1900]
    shown = runner.invoke(app, [*home, "features", "show", "--at", ts.isoformat()], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "adx_w14" in shown.output
    assert "label_ok" in shown.output
    missing = runner.invoke(app, [*home, "features", "show", "--at", "2024-01-06T12:00Z"])  # a Saturday
    assert missing.exit_code == 1
    assert "no SPX500_USD M1 bar" in missing.output

    out = tmp_path / "features.md"
    documented = runner.invoke(app, [*home, "features", "docs", "--out", str(out)])
    assert documented.exit_code == 0, documented.output
    page = out.read_text()
    assert "`vol_yz_w60`" in page
    assert f"`{NEWS_TEST_FEATURES[0]}`" in page


def test_clear_errors_when_inputs_are_missing(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spxcast.features.news", stub_news_module())
    with pytest.raises(LakeError, match=r"bronze\.candles does not exist yet"):
        build_features(settings, "no-candles", include_news=False)
    lake = Lake.from_settings(settings)
    candles = random_candles(300, seed=5).with_columns(
        pl.lit("test").alias("source"), pl.lit(datetime(2024, 2, 1, tzinfo=UTC)).alias("ingested_at")
    )
    lake.write("bronze.candles", candles)
    # No news at all: market-only, said once in the output of gold_labels (regression: this raised
    # "lake table gold.news_signals does not exist yet").
    results = build_features(settings, "no-news")
    assert results["silver_news_sentiment"]["market_only"] is True
    assert results["gold_news_signals"]["skipped"].startswith("market-only: bronze.news does not exist")
    assert results["gold_labels"]["market_only"] is True
    assert lake.read("gold.features").height == 300
    assert not lake.exists("gold.news_signals")
