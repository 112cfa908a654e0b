"""The serving demo's pieces: which session it replays, the rewind of the live position, and the tally of
served predictions against realised outcomes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from live_factories import store_flat_bars
from spxcast.config import Settings
from spxcast.db import connect
from spxcast.errors import ConfigError
from spxcast.lake import Lake
from spxcast.serving.demo import Tally, newest_session, rewind_position
from spxcast.serving.live import position

M1 = timedelta(minutes=1)
# CFD sessions: Tuesday 2024-01-09 22:00 to Wednesday 21:00, then Wednesday 22:00 to Thursday 21:00.
WEDNESDAY_SESSION = datetime(2024, 1, 9, 22, 0, tzinfo=UTC)
THURSDAY_SESSION = datetime(2024, 1, 10, 22, 0, tzinfo=UTC)


def _store(lake: Lake, start: datetime, count: int) -> None:
    store_flat_bars(lake, start, count)


def test_the_newest_whole_session_is_replayed(settings: Settings) -> None:
    lake = Lake.from_settings(settings)
    with pytest.raises(ConfigError, match="run the pipeline first"):
        newest_session(lake, "SPX500_USD", "M1")
    _store(lake, WEDNESDAY_SESSION + 600 * M1, 780)  # Wednesday 08:00 to the 21:00 close
    only = newest_session(lake, "SPX500_USD", "M1")
    assert (only.start, only.bars) == (WEDNESDAY_SESSION + 600 * M1, 780)
    assert only.last_bar == datetime(2024, 1, 10, 20, 59, tzinfo=UTC) and only.end == only.last_bar + M1

    _store(lake, THURSDAY_SESSION, 90)  # the next session has begun: it is not whole yet
    assert newest_session(lake, "SPX500_USD", "M1") == only
    assert newest_session(lake, "SPX500_USD", "M1").bars == 780


def test_a_lone_partial_session_is_replayed_when_there_is_no_whole_one(settings: Settings) -> None:
    lake = Lake.from_settings(settings)
    _store(lake, THURSDAY_SESSION, 90)
    session = newest_session(lake, "SPX500_USD", "M1")
    assert (session.start, session.bars, session.end) == (THURSDAY_SESSION, 90, THURSDAY_SESSION + 90 * M1)


def _move(engine: Engine, bar_ts: datetime) -> None:
    position.commit(engine, position.Step("SPX500_USD", "M1", 30, position=bar_ts, bars=1), THURSDAY_SESSION)


def test_the_live_position_is_rewound_only_when_the_replay_would_skip_bars(settings: Settings) -> None:
    engine = connect(settings.db_url())
    assert rewind_position(engine, "SPX500_USD", "M1", THURSDAY_SESSION) is None
    _move(engine, THURSDAY_SESSION - M1)
    assert rewind_position(engine, "SPX500_USD", "M1", THURSDAY_SESSION) is None
    assert position.load(engine, "SPX500_USD", "M1") == THURSDAY_SESSION - M1
    _move(engine, THURSDAY_SESSION + 5 * M1)
    assert rewind_position(engine, "SPX500_USD", "M1", THURSDAY_SESSION) == THURSDAY_SESSION + 5 * M1
    assert position.load(engine, "SPX500_USD", "M1") is None


def _bar(ts: datetime, predicted: float, lower: float | None, upper: float | None) -> dict[str, object]:
    served = {"role": "served", "predicted_pct": predicted, "lower_pct": lower, "upper_pct": upper}
    shadow = {**served, "role": "shadow", "predicted_pct": -predicted}
    return {"type": "bar", "ts": ts.isoformat(), "predictions": [shadow, served]}


def _outcome(ts: datetime, realised: float) -> dict[str, object]:
    return {"type": "outcome", "ts": ts.isoformat(), "realised_pct": realised}


def test_the_tally_checks_served_predictions_against_outcomes() -> None:
    tally = Tally()
    t0 = THURSDAY_SESSION
    assert tally.add_outcome(_outcome(t0 - M1, 0.1)) is None, "a bar streamed before the client connected"
    assert math.isnan(tally.coverage) and math.isnan(tally.hit_rate)
    assert tally.add_bar(_bar(t0, 0.05, -0.1, 0.2))["predicted_pct"] == 0.05  # type: ignore[index]
    tally.add_bar(_bar(t0 + M1, -0.05, -0.1, 0.0))
    tally.add_bar(_bar(t0 + 2 * M1, 0.02, None, None))
    assert tally.add_bar({"type": "bar", "ts": (t0 + 3 * M1).isoformat(), "predictions": []}) is None
    tally.add_outcome(_outcome(t0, 0.3))  # right direction, above the interval
    tally.add_outcome(_outcome(t0 + M1, -0.02))  # right direction, inside
    tally.add_outcome(_outcome(t0 + 2 * M1, -0.01))  # wrong direction, no interval
    assert (tally.bars, tally.outcomes, tally.with_interval, tally.inside, tally.right) == (3, 3, 2, 1, 2)
    assert tally.coverage == 0.5 and tally.hit_rate == pytest.approx(2 / 3)
