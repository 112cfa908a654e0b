"""Live candle sources: files appearing in a directory (each read once per content) and a replay of stored
bars released as market time passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from spxcast.config import FilesSourceSettings, load_settings
from spxcast.errors import ConfigError
from spxcast.ingest.market import append_bars
from spxcast.lake import Lake
from spxcast.serving.live.sources import DirectorySource, ReplaySource

T0 = datetime(2024, 1, 3, 15, 0, tzinfo=UTC)


def _bars(n: int, start: datetime = T0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [start + timedelta(minutes=i) for i in range(n)],
            "open": [100.0 + i for i in range(n)],
            "high": [101.0 + i for i in range(n)],
            "low": [99.0 + i for i in range(n)],
            "close": [100.5 + i for i in range(n)],
            "volume": [10] * n,
        }
    )


def test_directory_source_reads_new_and_changed_files_once(tmp_path: Path) -> None:
    source = DirectorySource(tmp_path, FilesSourceSettings(), poll_s=1.0)
    assert source.poll(None).is_empty()
    _bars(3).write_csv(tmp_path / "a.csv")
    first = source.poll(None)
    assert first.height == 3
    assert source.poll(None).is_empty(), "a file already read is not read again"
    _bars(2, T0 + timedelta(minutes=3)).write_csv(tmp_path / "b.csv")
    assert source.poll(None).height == 2, "only the new file"
    _bars(4).write_csv(tmp_path / "a.csv")
    assert source.poll(None).height == 4, "a changed file is read again (the loop drops bars it has)"
    with pytest.raises(ConfigError, match="not a directory"):
        DirectorySource(tmp_path / "missing", FilesSourceSettings(), poll_s=1.0)


def test_replay_releases_bars_as_market_time_passes_and_resumes_after_a_position(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    lake = Lake.from_settings(settings)
    now = T0 + timedelta(days=1)
    append_bars(
        lake,
        _bars(10),
        instrument="SPX500_USD",
        granularity="M1",
        source="t",
        now=now,
        quality=settings.quality,
    )
    wall = {"t": 0.0}
    replay = ReplaySource(
        lake, "SPX500_USD", "M1", T0, T0 + timedelta(minutes=8), speed=60.0, wall=lambda: wall["t"]
    )
    assert replay.poll(None).is_empty(), "the first bar closes one market minute after the start"
    wall["t"] = 2.0  # two market minutes at 60x: two bars have closed
    got = replay.poll(None)
    assert got["ts"].to_list() == [T0, T0 + timedelta(minutes=1)]
    assert replay.now() == T0 + timedelta(minutes=2), "the replay clock is the newest close"
    wall["t"] = 100.0
    rest = replay.poll(got["ts"][-1])
    assert rest.height == 6 and replay.finished, "the range end is exclusive"

    resumed = ReplaySource(lake, "SPX500_USD", "M1", T0, T0 + timedelta(minutes=8), speed=None)
    assert resumed.poll(T0 + timedelta(minutes=4))["ts"][0] == T0 + timedelta(minutes=5)
    with pytest.raises(ConfigError, match="no SPX500_USD M1 bars"):
        ReplaySource(lake, "SPX500_USD", "M1", T0 + timedelta(days=3), T0 + timedelta(days=4))
