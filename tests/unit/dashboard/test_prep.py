"""The dashboard's pure data preparation: forecasts drawn at their horizon, sessions, market state, skill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from spxcast.dashboard import prep

T0 = datetime(2024, 3, 4, 14, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def history_row(i: int, predicted: float, realised: float | None, price: float = 5000.0) -> dict[str, object]:
    return {
        "prediction_id": f"p{i}",
        "created_at": (T0 + i * MINUTE).isoformat(),
        "bar_ts": (T0 + i * MINUTE).isoformat(),
        "predicted_return_pct": predicted,
        "lower_pct": predicted - 0.1,
        "upper_pct": predicted + 0.1,
        "price": price,
        "model_name": "m",
        "model_version": 3,
        "slot": "blue",
        "realised_return_pct": realised,
    }


def test_a_forecast_is_drawn_at_the_bar_whose_close_it_forecasts_with_its_interval_and_outcome() -> None:
    frame = prep.forecast_frame([history_row(0, 0.2, -0.1), history_row(1, 0.05, None)], horizon_minutes=30)
    first, second = frame.row(0, named=True), frame.row(1, named=True)
    assert first["bar_ts"] == T0 and first["target_ts"] == T0 + 30 * MINUTE
    assert first["predicted_price"] == pytest.approx(5000 * 1.002)
    assert first["lower_price"] == pytest.approx(5000 * 1.001)
    assert first["upper_price"] == pytest.approx(5000 * 1.003)
    assert first["realised_price"] == pytest.approx(5000 * 0.999)
    assert second["realised_price"] is None  # the horizon has not passed: nothing is drawn


def test_rows_without_a_bar_are_left_out_and_the_newest_forecast_of_a_bar_wins() -> None:
    explicit = {**history_row(0, 0.3, None), "bar_ts": None}
    repeated = [history_row(1, 0.1, None), {**history_row(1, 0.2, None), "prediction_id": "again"}]
    frame = prep.forecast_frame([explicit, *repeated], horizon_minutes=30)
    assert frame["prediction_id"].to_list() == ["again"]


def test_the_latest_session_starts_after_the_last_long_gap() -> None:
    stamps = [T0 + i * MINUTE for i in range(10)] + [T0 + timedelta(hours=3) + i * MINUTE for i in range(5)]
    bars = prep.bars_frame(
        [{"ts": ts.isoformat(), "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5} for ts in stamps]
    )
    session = prep.latest_session(bars, MINUTE)
    assert session["ts"][0] == T0 + timedelta(hours=3) and session.height == 5
    assert prep.latest_session(bars, MINUTE, window=2).height == 2
    assert prep.latest_session(bars.head(10), MINUTE).height == 10  # no gap: every bar


def test_market_state_says_closed_when_bars_stop_and_open_when_they_arrive() -> None:
    newest = T0
    assert prep.market_state(newest, T0 + 2 * MINUTE, MINUTE).open
    closed = prep.market_state(newest, T0 + timedelta(days=3), MINUTE)
    assert not closed.open and "market is closed" in closed.message and "2 days" in closed.message
    assert not prep.market_state(None, T0, MINUTE).open


def test_contributions_are_the_largest_by_size_optionally_of_one_prefix() -> None:
    explanation = {"contributions_pct": {"a": 0.1, "news_x": -0.5, "b": 0.3, "news_y": 0.01}}
    assert prep.contributions(explanation, top=2)["feature"].to_list() == ["news_x", "b"]
    assert prep.contributions(explanation, prefix="news_")["feature"].to_list() == ["news_x", "news_y"]


def test_skill_uses_the_evaluation_definitions_and_a_perfect_forecast_has_r2_one() -> None:
    rng = np.random.default_rng(0)
    y = rng.standard_normal(200) * 0.05
    rows = [history_row(i, float(v), float(v)) for i, v in enumerate(y)]
    perfect = prep.skill(prep.realised(rows), horizon_minutes=30, cost_bps=0.0)
    assert perfect is not None
    assert perfect.rmse == pytest.approx(0.0) and perfect.r2_oos == pytest.approx(1.0)
    assert perfect.hit_rate == pytest.approx(1.0) and perfect.mean_ic == pytest.approx(1.0)
    assert perfect.rmse_zero == pytest.approx(float(np.sqrt(np.mean(y**2))))
    # non-overlapping 30-minute entries: every 30th bar, holding sign(y): the PnL is sum |y| there
    assert perfect.net_return_pct == pytest.approx(float(np.abs(y[::30]).sum()))
    costly = prep.skill(prep.realised(rows), horizon_minutes=30, cost_bps=10.0)
    assert costly is not None and costly.net_return_pct < perfect.net_return_pct
    flipped = [history_row(i, -float(v), float(v)) for i, v in enumerate(y)]
    wrong = prep.skill(prep.realised(flipped), horizon_minutes=30, cost_bps=0.0)
    assert wrong is not None and wrong.r2_oos < 0 and wrong.hit_rate == pytest.approx(0.0)


def test_skill_of_no_realised_rows_is_none_and_the_table_keeps_each_column() -> None:
    pending = [history_row(i, 0.1, None) for i in range(5)]
    assert prep.realised(pending).height == 0
    assert prep.skill(prep.realised(pending), 30, 1.0) is None
    rows = [history_row(i, 0.1 * (-1) ** i, 0.05) for i in range(40)]
    table = prep.skill_table({"v3 (champion)": prep.skill(prep.realised(rows), 30, 1.0), "v4 (shadow)": None})
    assert table.columns == ["metric", "v3 (champion)", "v4 (shadow)"]
    assert table.filter(pl.col("metric") == "realised forecasts")["v3 (champion)"][0] == 40
    assert table["v4 (shadow)"].null_count() == table.height


def test_monitoring_summaries_give_promotion_and_drift_figures_and_say_what_is_missing() -> None:
    summary = {
        "at": "2024-03-04T15:00:00+00:00",
        "champion": {"model": "spxcast-SPX500_USD-30m", "version": 3, "test": {"r2_oos": 0.012, "note": "x"}},
        "reference_rmse": 0.0412,
        "drift_share": 0.25,
        "bar_age_minutes": 3.0,
        "article_age_minutes": None,
        "quarantine_rate": 0.001,
    }
    assert prep.promotion_figures(summary) == [
        ("champion", "spxcast-SPX500_USD-30m v3"),
        ("reference (test) RMSE (%)", "0.0412"),
        ("test r2_oos", "0.0120"),
    ]
    assert dict(prep.drift_figures(summary)) == {
        "run at (UTC)": "2024-03-04 15:00",
        "drifted features": "25%",
        "bar age (min)": "3",
        "article age (min)": "n/a",
        "quarantine rate": "0.10%",
    }
    assert prep.promotion_figures({"champion": None}) == []
