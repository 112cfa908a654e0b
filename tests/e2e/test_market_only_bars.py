"""Market-only data of other bar sizes, from files, through features, training and the gates.

A daily index series stamped at 00:00 UTC on the New York Stock Exchange calendar (weekends and exchange
holidays absent) and an hourly EUR/USD series on the FX 24x5 calendar (weekends and Christmas absent) are
written as CSV files, ingested with the files source and run with no news at all. Only what describes the
data (instrument, granularity, horizon in bars, calendar) and small trial counts are configured: the split,
OOT2 and gate defaults are used as they are. Each series carries a planted, learnable dependence (the next
bar's return is -0.5 x this bar's), so a model is selected and the promotion gates judge it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from features_factory import candles_csv_frame
from spxcast.config import Settings, load_settings
from spxcast.ingest.market import ingest_market
from spxcast.lake import Lake
from spxcast.pipeline.context import TaskContext
from spxcast.pipeline.runner import run_dag
from spxcast.pipeline.tasks import training
from spxcast.pipeline.tasks.features import build_features
from spxcast.registry import ModelRegistry
from spxcast.registry.gates import evaluate_gates
from spxcast.registry.handoff import normalise_metrics
from spxcast.registry.reproduce import reproduce_version

SMALL = {"training.trials_coarse": 2, "training.trials_fine": 1, "training.max_rounds": 120}
# US exchange holidays in the daily series' range that the labels are checked across (by hand).
MLK_2022, GOOD_FRIDAY_2022, THANKSGIVING_2022 = date(2022, 1, 17), date(2022, 4, 15), date(2022, 11, 24)


def write_candles(path: Path, stamps: list[datetime], vol: float, seed: int) -> pl.DataFrame:
    """A CSV of OHLCV bars whose returns follow r_t = -0.5 r_(t-1) + noise; returns the frame written."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal(len(stamps)) * vol
    returns = np.empty_like(shocks)
    returns[0] = shocks[0]
    for i in range(1, len(shocks)):
        returns[i] = -0.5 * returns[i - 1] + shocks[i]
    frame = candles_csv_frame(stamps, returns, 100.0, vol, rng)
    frame.write_csv(path)
    return frame.with_columns(pl.col("ts").str.to_datetime(time_zone="UTC"))


def nyse_days(start: date, end: date) -> list[date]:
    from spxcast.sources.market.calendar import trading_calendar

    sessions = trading_calendar(
        "XNYS",
        datetime(start.year, start.month, start.day, tzinfo=UTC),
        datetime(end.year, end.month, end.day, tzinfo=UTC),
    )
    days = {datetime.fromtimestamp(o / 1e6, UTC).date() for o in sessions.opens}
    return sorted(d for d in days if start <= d <= end)


def fx_hours(start: datetime, end: datetime) -> list[datetime]:
    """Hourly bars from Sunday 17:00 to Friday 17:00 New York time, without Christmas Day (UTC)."""
    new_york = ZoneInfo("America/New_York")
    hours, t = [], start
    while t < end:
        local = t.astimezone(new_york)
        weekend = local.weekday() == 5 or (local.weekday() == 4 and local.hour >= 17)
        weekend |= local.weekday() == 6 and local.hour < 17
        if not weekend and (t.month, t.day) != (12, 25):
            hours.append(t)
        t += timedelta(hours=1)
    return hours


def label_of(gold: pl.DataFrame, candles: pl.DataFrame, ts: datetime) -> tuple[float | None, float | None]:
    """(gold's label at ts, the return to the next bar of ``candles`` computed here by hand)."""
    row = gold.filter(pl.col("ts") == ts)
    later = candles.filter(pl.col("ts") > ts).head(1)
    expected = 100 * (later["close"].item() / candles.filter(pl.col("ts") == ts)["close"].item() - 1)
    return row["target_ret_1b_pct"].item(), expected


def gates_of(run_dir: Path, name: str, settings: Settings) -> dict[str, Any]:
    evaluation = json.loads((run_dir / "candidates" / name / "evaluation.json").read_text())
    metrics = normalise_metrics(name, evaluation["models"], name)
    return {r.name: r for r in evaluate_gates(metrics, settings.registry, None, None).results}


@pytest.mark.slow
def test_daily_index_from_files_through_the_pipeline_and_the_gates(tmp_path: Path) -> None:
    days = nyse_days(date(2018, 1, 2), date(2023, 12, 29))
    stamps = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in days]
    candles = write_candles(tmp_path / "spx_daily.csv", stamps, vol=0.011, seed=11)
    settings = load_settings(
        home=tmp_path / "home",
        instrument="SPX",
        granularity="D",
        horizon_bars=1,
        calendar="XNYS",
        **{
            "market.source": "files",
            "market.files.path": str(tmp_path / "spx_daily.csv"),
            "news.source": "none",
            "pipeline.workers": 2,
            **SMALL,
        },
    )
    result = run_dag(settings, "full")
    assert result.status == "succeeded", result.errors
    out = result.outputs
    assert out["ingest_news"]["market_only"] and out["gold_labels"]["market_only"]
    assert out["validate_market"]["coverage"] == 1.0, "midnight-stamped daily bars on their calendar"
    assert all(g["count"] == 0 for g in out["validate_market"]["gaps"].values())
    assert out["train_lightgbm"]["feature_families"] == [
        "returns",
        "calendar",
        "technical",
        "volatility",
        "microstructure",
        "shape",
        "lags",  # the horizon lags are catalog features (issue 10)
    ]

    gold = Lake.from_settings(settings).read("gold.features").sort("ts")
    assert gold["label_ok"].sum() == len(days) - 1, "only the last bar has no next trading day"
    at = lambda d: datetime(d.year, d.month, d.day, tzinfo=UTC)  # noqa: E731
    for friday in (date(2022, 1, 14), date(2022, 4, 14), date(2022, 11, 23), date(2022, 6, 10)):
        label, by_hand = label_of(gold, candles, at(friday))
        assert label == pytest.approx(by_hand, rel=1e-9), friday
    assert MLK_2022 not in days and GOOD_FRIDAY_2022 not in days and THANKSGIVING_2022 not in days
    later = candles.filter(pl.col("ts") > at(date(2022, 1, 14)))["ts"][0]
    assert later == at(date(2022, 1, 18)), "Friday's next bar is Tuesday after Martin Luther King Day"

    registered = out["register_model"]
    assert registered["selected"] is not None, registered
    assert registered["model_name"] == "spxcast-SPX-D-1b"
    registry = ModelRegistry(settings)
    report = registry.gates(registered["version"])
    gates = {r.name: r for r in report.results}
    assert gates["beats_zero_test"].passed and gates["beats_zero_oot"].passed, report.explain()
    assert gates["max_test_rmse"].passed and "x zero forecast's" in gates["max_test_rmse"].figure
    assert report.passed, report.explain()
    info = registry.get(registered["version"])
    run = registry.client.get_run(info.run_id)
    assert "news" not in run.data.params["candidate.feature_families"]
    assert "returns" in run.data.params["candidate.feature_families"]
    assert reproduce_version(registry, registered["version"]).identical, "lineage holds the bar horizon"


@pytest.mark.slow
def test_hourly_fx_from_files_through_features_training_and_the_gates(tmp_path: Path) -> None:
    hours = fx_hours(datetime(2023, 10, 1, 21, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    candles = write_candles(tmp_path / "eurusd_h1.csv", hours, vol=0.0012, seed=5)
    settings = load_settings(
        home=tmp_path / "home", instrument="EUR_USD", granularity="H1", horizon_bars=1, **SMALL
    )
    lake = Lake.from_settings(settings)
    report = ingest_market(settings, lake, source="files", file=tmp_path / "eurusd_h1.csv")
    assert report.accepted_rows == len(hours)
    features = build_features(settings, "fx-features")
    assert features["gold_labels"]["market_only"] is True
    assert features["gold_news_signals"]["skipped"].startswith("market-only")

    gold = lake.read("gold.features").sort("ts")
    friday_winter = datetime(2023, 12, 8, 21, tzinfo=UTC)  # 16:00 New York, the week's last bar
    label, by_hand = label_of(gold, candles, friday_winter)
    assert label == pytest.approx(by_hand, rel=1e-9)
    assert candles.filter(pl.col("ts") > friday_winter)["ts"][0] == datetime(2023, 12, 10, 22, tzinfo=UTC)
    friday_summer = datetime(2023, 10, 27, 20, tzinfo=UTC)  # 16:00 New York in daylight saving time
    label, by_hand = label_of(gold, candles, friday_summer)
    assert label == pytest.approx(by_hand, rel=1e-9)
    christmas_eve = gold.filter(pl.col("ts") == datetime(2023, 12, 24, 23, tzinfo=UTC))
    assert christmas_eve["label_ok"].item() is False, "its next bar (Christmas Day 00:00 UTC) is missing"

    from spxcast.ingest.market import stored_health

    health = stored_health(lake, "EUR_USD", "H1", settings.calendar).report
    assert health.gaps["6-30 bars"] == {"count": 1, "missing_bars": 24}, "Christmas Day"
    assert sum(g["count"] for g in health.gaps.values()) == 1
    assert health.scheduled["daily_break"] == 0
    assert health.coverage == pytest.approx(len(hours) / (len(hours) + 24))

    run_id = "fx-run"
    for name in ("lightgbm", "ar"):
        output = training.train_model(TaskContext(settings, run_id, f"train_{name}"), name)
        assert output["market_only"] is True
    selection = training.select_model(TaskContext(settings, run_id, "select_model"))
    run_dir = settings.artifacts_dir() / "runs" / run_id
    document = json.loads((run_dir / "selection.json").read_text())
    assert [s["name"] for s in document["split_boundaries"]["splits"]][:3] == ["train", "tune", "valid"]
    assert document["split_boundaries"]["purge_bars"] == 1
    assert document["split_boundaries"]["splits"][-1]["name"] == "oot2"
    assert selection["selected"] is not None, selection["reasons"]
    gates = gates_of(run_dir, selection["selected"], settings)
    assert gates["beats_zero_test"].passed and gates["beats_zero_oot"].passed
    assert gates["max_test_rmse"].passed
    valid = document["candidates"][selection["selected"]]["metrics"]["valid"]
    assert valid["icir_period"] == "day" and valid["icir"] is not None
