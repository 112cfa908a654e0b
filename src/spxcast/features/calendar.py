"""Calendar and session features on the OANDA CFD calendar, and the gaps between real bars.

The SPX500 CFD trades from Sunday 22:00 to Friday 21:00 UTC with a daily break 21:00-22:00 UTC; a
session runs from 22:00 UTC to 21:00 UTC the next day (23 hours). Everything here is a function of the
bar's start ``ts`` (known before the bar opens) or of the current and previous bar.
"""

from __future__ import annotations

import math

import polars as pl

from spxcast.features.catalog import FeatureContext, FeatureSpec
from spxcast.features.terms import ACROSS_GAPS, Term, market_spec
from spxcast.timeutil import bar_minutes

GROUP = "calendar"
SESSION_OPEN_MINUTE = 22 * 60  # 22:00 UTC
SESSION_MINUTES = 23 * 60  # 22:00 -> 21:00 UTC the next day
WEEK_CLOSE_MINUTE = 4 * 1440 + 21 * 60  # Friday 21:00 UTC, in minutes since Monday 00:00 UTC
WEEK_MINUTES = 7 * 1440
SPAN_WINDOWS = (60, 360)
TS = "ts"


def _minute_of_day() -> pl.Expr:
    ts = pl.col(TS)
    return ts.dt.hour().cast(pl.Float64) * 60 + ts.dt.minute() + ts.dt.second() / 60


def _minute_of_week() -> pl.Expr:
    return (pl.col(TS).dt.weekday().cast(pl.Float64) - 1) * 1440 + _minute_of_day()


def _elapsed_minutes(bars_back: int) -> Term:
    """Minutes from the start of the bar ``bars_back`` real bars earlier to the start of this one."""
    return Term.combine(
        lambda a, b: (a - b).dt.total_microseconds().cast(pl.Float64) / 60e6,
        Term.col(TS),
        Term.col(TS).shift(bars_back),
    )


def specs(context: FeatureContext) -> list[FeatureSpec]:
    """Calendar, session and gap features."""
    bar = bar_minutes(context.granularity)
    minute_of_day = Term(_minute_of_day())
    since_open = minute_of_day.map(lambda e: (e - SESSION_OPEN_MINUTE) % 1440)
    week_to_close = Term(_minute_of_week()).map(lambda e: (WEEK_CLOSE_MINUTE - e - bar) % WEEK_MINUTES)
    gap = _elapsed_minutes(1) - bar
    start = "Function of the bar's start ts alone (UTC), known before the bar opens."
    out = [
        market_spec(
            GROUP,
            minute_of_day.map(lambda e: (2 * math.pi * e / 1440).sin()),
            "unitless [-1, 1]",
            f"sin(2 pi * minute of day / 1440) of the bar start (UTC). {start}",
            "tod_sin",
        ),
        market_spec(
            GROUP,
            minute_of_day.map(lambda e: (2 * math.pi * e / 1440).cos()),
            "unitless [-1, 1]",
            f"cos(2 pi * minute of day / 1440) of the bar start (UTC). {start}",
            "tod_cos",
        ),
        market_spec(
            GROUP,
            Term(_minute_of_week()).map(lambda e: (2 * math.pi * e / WEEK_MINUTES).sin()),
            "unitless [-1, 1]",
            f"sin(2 pi * minute of week / 10080), week from Monday 00:00 UTC. {start}",
            "week_sin",
        ),
        market_spec(
            GROUP,
            Term(_minute_of_week()).map(lambda e: (2 * math.pi * e / WEEK_MINUTES).cos()),
            "unitless [-1, 1]",
            f"cos(2 pi * minute of week / 10080), week from Monday 00:00 UTC. {start}",
            "week_cos",
        ),
        market_spec(
            GROUP,
            Term(pl.col(TS).dt.weekday().cast(pl.Float64) - 1),
            "day index 0-6",
            f"UTC day of week of the bar start, Monday = 0 ... Sunday = 6 (Sunday bars open the week's "
            f"first session at 22:00). {start}",
            "day_of_week",
        ),
        market_spec(
            GROUP,
            since_open,
            "minutes",
            f"Minutes from the session open (22:00 UTC) to the bar start; 0 ... 1379 for M1. The time "
            f"left to the session close (21:00 UTC) is {SESSION_MINUTES} - this - the bar length, an exact "
            f"linear copy, so it is not a column of its own. {start}",
            "minutes_since_session_open",
        ),
        market_spec(
            GROUP,
            week_to_close,
            "minutes",
            f"Minutes from the bar's close to the weekly close (Friday 21:00 UTC), when trading stops for "
            f"the weekend. {start}",
            "minutes_to_week_close",
        ),
        market_spec(
            GROUP,
            gap.map(lambda e: (e > 1e-9).cast(pl.Float64)),
            "flag 0/1",
            "1 when this is the first bar after a gap (weekend, daily break, halt or missing bars: the "
            "previous real bar did not end at this bar's start), else 0; null on a series' first bar. "
            "Known at the bar's start.",
            "first_after_gap",
        ),
        market_spec(
            GROUP,
            gap,
            "minutes",
            "Minutes between the previous real bar's close and this bar's start (0 when contiguous, "
            "about 2940 after a weekend, 60 after the daily break); null on a series' first bar. "
            "Known at the bar's start.",
            "gap_minutes",
        ),
        market_spec(
            GROUP,
            100 * (Term.col("open") / Term.col("close").shift(1)).log(),
            "percent (log return x 100)",
            "100 * ln(open_t / close_(t-1)): the move between the previous real bar's close and this "
            "bar's open - the gap return after a weekend, the daily break or a halt, and the tiny "
            "open/close mismatch between contiguous bars. Known once the bar opens.",
            "gap_ret",
        ),
    ]
    out += [
        market_spec(
            GROUP,
            _elapsed_minutes(w - 1) / ((w - 1) * bar),
            "ratio",
            f"(ts_t - ts_(t-{w - 1})) / ({w - 1} bar lengths): wall-clock span of the last {w} real bars "
            f"relative to a gap-free span; 1 when none of the {w}-bar windows ending here crosses a gap, "
            f"larger when they do. Known at the bar's start. {ACROSS_GAPS}",
            "span_ratio",
            w=w,
        )
        for w in SPAN_WINDOWS
    ]
    return out
