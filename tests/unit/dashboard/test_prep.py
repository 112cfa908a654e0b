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


def test_the_chart_shows_forecasts_and_outcomes_as_of_its_newest_bar() -> None:
    rows = [history_row(i, 0.1, 0.2) for i in range(40)]
    frame = prep.as_of(prep.forecast_frame(rows, horizon_minutes=30), newest_bar=T0 + 35 * MINUTE)
    assert frame["bar_ts"].max() == T0 + 35 * MINUTE  # forecasts of later bars wait for their bar
    known = frame.filter(pl.col("realised_price").is_not_null())
    assert known["target_ts"].max() == T0 + 35 * MINUTE and known.height == 6  # bars 0..5: outcomes shown
    assert frame.filter(pl.col("target_ts") > T0 + 35 * MINUTE)["realised_pct"].null_count() == 30


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


def test_drift_figures_of_a_monitoring_summary_say_what_is_missing() -> None:
    summary = {
        "at": "2024-03-04T15:00:00+00:00",
        "champion": {"model": "spxcast-SPX500_USD-30m", "version": 3},
        "drift_share": 0.25,
        "bar_age_minutes": 3.0,
        "article_age_minutes": None,
        "quarantine_rate": 0.001,
    }
    assert dict(prep.drift_figures(summary)) == {
        "run at (UTC)": "2024-03-04 15:00",
        "drifted features": "25%",
        "bar age (min)": "3",
        "article age (min)": "n/a",
        "quarantine rate": "0.10%",
    }


def test_a_forecast_without_a_finite_interval_keeps_its_null_bounds_and_the_reason() -> None:
    unbounded = {**history_row(1, 0.2, None), "lower_pct": None, "upper_pct": None, "interval_note": "why"}
    one_sided = {**history_row(2, 0.2, None), "upper_pct": None}  # an older API: no note
    frame = prep.forecast_frame([history_row(0, 0.1, None), unbounded, one_sided], horizon_minutes=30)
    assert frame["interval_note"].to_list() == [None, "why", "no interval in the API's log for this forecast"]
    assert frame["lower_price"].null_count() == 1 and frame["upper_price"].null_count() == 2
    assert frame["predicted_price"].null_count() == 0


def test_the_interval_band_is_one_shape_per_run_of_finite_intervals_never_across_a_gap() -> None:
    rows = [history_row(i, 0.1, None) for i in range(5)]
    rows[2] = {**rows[2], "lower_pct": None, "upper_pct": None, "interval_note": "unbounded"}
    frame = prep.forecast_frame(rows, horizon_minutes=30)
    xs, ys = prep.band(frame)
    at = [T0 + (30 + i) * MINUTE for i in range(5)]
    upper, lower = 5000 * 1.002, 5000 * 1.0
    assert xs == [at[0], at[1], at[1], at[0], None, at[3], at[4], at[4], at[3]]
    assert ys == pytest.approx([upper, upper, lower, lower, None, upper, upper, lower, lower])
    assert prep.band(frame.filter(pl.col("interval_note").is_not_null())) == ([], [])


def test_the_live_chart_follows_forecasts_made_now_for_older_stored_bars_only() -> None:
    now = T0 + timedelta(days=300)
    stored = T0 + timedelta(days=200)  # the lake holds bars past the replayed one
    replayed = {"bar_ts": T0.isoformat(), "created_at": (now - 2 * MINUTE).isoformat()}
    assert prep.following(replayed, stored, now, MINUTE) == T0 + MINUTE  # bars up to the forecast's bar
    assert prep.following(replayed, T0, now, MINUTE) is None  # the newest stored bar: nothing to follow
    live = {"bar_ts": (now - 2 * MINUTE).isoformat(), "created_at": (now - MINUTE).isoformat()}
    assert prep.following(live, now - MINUTE, now, MINUTE) is None  # real time: the newest stored bars
    stale = {"bar_ts": T0.isoformat(), "created_at": (T0 + 2 * MINUTE).isoformat()}
    assert prep.following(stale, stored, now, MINUTE) is None  # nothing is being forecast now
    assert prep.following(None, stored, now, MINUTE) is None
    assert prep.following(replayed, None, now, MINUTE) is None  # no /bars
    assert prep.following({"bar_ts": None, "created_at": now.isoformat()}, stored, now, MINUTE) is None


METRICS = {
    "test": {
        "model": {
            "rows": 5000.0,
            "rmse": 0.11,
            "r2_oos": 0.2,
            "directional_accuracy": 0.57,
            "ic": 0.45,
            "backtest_net_return_pct": 12.5,
            "dm_pvalue": 1e-9,
        },
        "zero": {"rmse": 0.13},
    },
    "oot": {"model": {"rmse": 0.12, "r2_oos": float("nan")}},
}


def test_the_figures_a_version_was_promoted_on_line_up_with_the_realised_skill() -> None:
    test = prep.promoted_figures(METRICS, "test")
    assert test == {
        "rows": 5000.0,
        "rmse": 0.11,
        "rmse_zero": 0.13,
        "r2_oos": 0.2,
        "hit_rate": 0.57,
        "mean_ic": None,  # training logs no mean of per-day ICs
        "pooled_ic": 0.45,
        "net_return_pct": 12.5,
    }
    oot = prep.promoted_figures(METRICS, "oot")
    assert oot["rmse"] == 0.12 and oot["r2_oos"] is None and oot["rmse_zero"] is None
    rows = [history_row(i, 0.1 * (-1) ** i, 0.05 * (-1) ** (i // 3)) for i in range(40)]
    realised = prep.skill(prep.realised(rows), 30, 1.0)
    table = prep.skill_table({"v3 (champion)": realised}, {"v3 at promotion: test": test})
    assert table.columns == ["metric", "v3 (champion)", "v3 at promotion: test"]
    by_metric = dict(zip(table["metric"], table["v3 at promotion: test"], strict=True))
    assert by_metric["RMSE (%)"] == 0.11 and by_metric["hit rate"] == 0.57 and by_metric["mean IC"] is None
    assert realised is not None
    own = dict(zip(table["metric"], table["v3 (champion)"], strict=True))
    assert own["IC (all rows)"] == pytest.approx(realised.pooled_ic)


HISTORY = {
    "model_name": "spxcast-SPX500_USD-30m",
    "transitions": [
        {
            "at": "2024-03-05T10:00:00Z",
            "version": 4,
            "action": "promote",
            "from_state": "Staging",
            "to_state": "Production",
            "actor": "carol",
            "reason": "override",
            "forced": True,
            "gates": [
                {"name": "beats_zero_test", "passed": True, "figure": "RMSE 0.1 vs zero 0.2"},
                {"name": "max_test_rmse", "passed": False, "figure": "test RMSE 0.1 (need <= 0.05)"},
            ],
        },
        {
            "at": "2024-03-04T10:00:00Z",
            "version": 3,
            "action": "register",
            "from_state": "None",
            "to_state": "Staging",
            "actor": "ci",
            "reason": "run x",
            "forced": False,
            "gates": None,
        },
    ],
    "slot_changes": [
        {
            "at": "2024-03-05T10:05:00Z",
            "action": "deploy",
            "actor": "dave",
            "reason": "ship v4",
            "live": "green",
            "versions": {"blue": 3, "green": 4},
            "weights": {"blue": 0.0, "green": 1.0},
            "shadow": True,
        }
    ],
}


def test_promotion_history_reads_as_tables_with_each_gate() -> None:
    transitions = prep.transitions_frame(HISTORY)
    first = transitions.row(0, named=True)
    assert first["gates"] == "1/2 passed; failed: max_test_rmse" and first["forced"] == "yes"
    assert first["state"] == "Staging → Production" and first["when (UTC)"] == "2024-03-05 10:00:00"
    assert transitions.row(1, named=True)["gates"] == ""
    promotion = prep.promotion_of(HISTORY, 4)
    assert promotion is not None and promotion["reason"] == "override"
    assert prep.promotion_of(HISTORY, 3) is None  # registered, never promoted
    gates = prep.gates_frame(promotion["gates"])
    assert gates["passed"].to_list() == ["yes", "NO"]
    [change] = prep.slot_changes_frame(HISTORY).to_dicts()
    assert change["live"] == "green v4" and change["slots (traffic)"] == "blue v3 (0%), green v4 (100%)"
    assert change["shadow"] == "on" and change["by"] == "dave"
    empty = {"model_name": "m", "transitions": [], "slot_changes": []}
    assert prep.transitions_frame(empty).height == 0 and prep.slot_changes_frame(empty).height == 0
