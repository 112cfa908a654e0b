"""The feature store pusher of the live loop: batches coalesce between pushes at least the configured
interval apart, a push starts when a batch arrives, a batch left waiting is pushed after twice the interval,
and close pushes what is queued."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import polars as pl

from spxcast.serving.live.loop import BackgroundSink


class Recording:
    def __init__(self) -> None:
        self.pushes: list[tuple[float, pl.DataFrame]] = []

    def push(self, instrument: str, granularity: str, vectors: pl.DataFrame) -> None:
        self.pushes.append((time.monotonic(), vectors))


def _bar(i: int) -> pl.DataFrame:
    ts = datetime(2026, 1, 5, 15, tzinfo=UTC) + timedelta(minutes=i)
    return pl.DataFrame({"ts": [ts], "f": [float(i)]})


def test_pushes_are_at_least_the_interval_apart_and_close_pushes_the_rest() -> None:
    target = Recording()
    sink = BackgroundSink(target, min_interval_s=0.4)
    for i in range(20):
        sink.push("SPX500_USD", "M1", _bar(i))
        time.sleep(0.03)  # 0.6 s of bars: at most two pushes, then close pushes what is left
    closing = time.monotonic()
    sink.close()
    closed = time.monotonic()
    times = [t for t, _ in target.pushes]
    before_close = [t for t in times if t < closing]
    assert len(before_close) <= 1 + (closing - before_close[0]) / 0.39, times
    assert len(times) < 10, "twenty bars coalesce into a few pushes"
    assert all(b - a >= 0.39 for a, b in pairwise(before_close)), "at least the interval apart"
    assert closed - closing < 0.3 and times[-1] >= closing, "close pushes the rest without waiting"
    pushed = pl.concat([v for _, v in target.pushes])
    assert pushed["f"].to_list() == [float(i) for i in range(20)], "every bar, in order, none twice"


def test_without_an_interval_each_batch_is_pushed_as_it_comes() -> None:
    target = Recording()
    sink = BackgroundSink(target)
    for i in range(3):
        sink.push("SPX500_USD", "M1", _bar(i))
        time.sleep(0.1)
    sink.close()
    assert [v["f"].to_list() for _, v in target.pushes] == [[0.0], [1.0], [2.0]]


def test_a_batch_that_arrived_too_soon_waits_for_a_later_one_or_twice_the_interval() -> None:
    target = Recording()
    sink = BackgroundSink(target, min_interval_s=0.3)
    sink.push("SPX500_USD", "M1", _bar(0))
    time.sleep(0.05)
    sink.push("SPX500_USD", "M1", _bar(1))  # within the interval: held
    time.sleep(0.2)
    assert [v["f"].to_list() for _, v in target.pushes] == [[0.0]], "held while the interval runs"
    deadline = time.monotonic() + 2.0
    while len(target.pushes) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    first, second = (t for t, _ in target.pushes)
    assert [v["f"].to_list() for _, v in target.pushes] == [[0.0], [1.0]]
    assert 0.55 <= second - first < 1.2, "pushed about twice the interval after the last push"
    sink.close()
