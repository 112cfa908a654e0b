"""The champion comparison window at D: rows after the challenger's training window only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from spxcast.features.labels import label_names
from spxcast.models.splits import SplitBoundaries, SplitRange
from spxcast.registry.window import fitted_until, shared_rows

TARGET = label_names(1440, 1)[0]


def test_daily_window_holds_only_rows_after_the_challengers_valid_split() -> None:
    days = [datetime(2021, 1, 4, tzinfo=UTC) + timedelta(days=i) for i in range(900)]
    frame = pl.DataFrame(
        {
            "ts": days,
            TARGET: np.random.default_rng(1).normal(0, 1, len(days)),
            "label_ok": [True] * (len(days) - 1) + [False],
        }
    )
    cuts = {"train": (0, 500), "valid": (505, 650), "test": (655, 760), "oot": (765, 840), "oot2": (845, 898)}
    boundaries = SplitBoundaries(
        1440,
        1440.0,
        tuple(SplitRange(n, days[a], days[b], b - a + 1, 0) for n, (a, b) in cuts.items()),
        purge_bars=1,
    ).to_dict()
    after = fitted_until(boundaries)
    assert after == days[650]
    window = shared_rows(frame, TARGET, 10_000, after)
    # The default 10 000 rows would be the whole daily history, training rows included.
    assert shared_rows(frame, TARGET, 10_000, None).height == len(days) - 1
    assert window["ts"].min() == days[651] and window["ts"].max() == days[898]
    assert window.height == 898 - 650
    assert shared_rows(frame, TARGET, 100, after)["ts"].to_list() == days[799:899]
    assert fitted_until({}) is None
