"""The serving feature source with the live loop's vectors in front of gold: /predict answers for the
newest live bar from memory; a replica fed through the Redis relay gets the same vectors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from spxcast.config import load_settings
from spxcast.features.online import HistoryNeed
from spxcast.serving.errors import NotFound
from spxcast.serving.live.features import LiveFeatureSource

T0 = datetime(2024, 1, 3, 15, 0, tzinfo=UTC)


def test_live_vectors_answer_the_newest_bar_and_relay_frames_are_the_same(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    source = LiveFeatureSource(settings)
    source.refresh()  # no gold yet
    with pytest.raises(NotFound):
        source.row(settings.instrument)
    source.push(T0, 4700.5, ("a", "b"), np.array([1.0, np.nan], np.float32))
    source.push(T0 + timedelta(minutes=1), 4701.0, ("a", "b"), np.array([2.0, 3.0], np.float32))
    newest = source.row(settings.instrument)
    assert newest.bar_ts == T0 + timedelta(minutes=1) and newest.as_of == T0 + timedelta(minutes=2)
    assert newest.price == 4701.0 and newest.vector(["b", "a"]).tolist() == [3.0, 2.0]
    assert np.isnan(source.row(settings.instrument, T0).vector(["b"])[0])
    assert source.size == 2

    replica = LiveFeatureSource(settings)
    replica.push_frame(
        {
            "type": "vector",
            "instrument": settings.instrument,
            "granularity": settings.granularity,
            "ts": T0.isoformat(),
            "price": 4700.5,
            "names": ["a", "b"],
            "values": [1.0, None],
        }
    )
    relayed = replica.row(settings.instrument, T0)
    assert relayed.vector(["a"]).tolist() == [1.0] and np.isnan(relayed.vector(["b"])[0])


@pytest.mark.parametrize("gap_every", [0, 3])
def test_the_window_size_bounds_what_the_newest_bar_needs(gap_every: int) -> None:
    """The live window is sized before its bars are known (``HistoryNeed.most_rows``); every series with
    at most one bar per bar length, gaps or not, needs no more trailing bars than that (``rows_of``)."""
    bar = timedelta(minutes=1)
    for need in (HistoryNeed(30, 10.0, 0.0), HistoryNeed(5, 60.0, 0.0), HistoryNeed(1, 0.0, 0.0)):
        ts = [T0 + i * bar for i in range(200) if not gap_every or i % gap_every]
        ts_us = np.array([int(t.timestamp() * 1_000_000) for t in ts], dtype=np.int64)
        for end in range(1, ts_us.size + 1):
            assert need.rows_of(ts_us[:end]) <= need.most_rows(bar)
        if not gap_every:  # regular bars need all of it once the series is long enough
            assert need.rows_of(ts_us) >= need.most_rows(bar) - 1
