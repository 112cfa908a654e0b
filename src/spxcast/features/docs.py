"""The catalog as Markdown (``docs/features.md`` is generated from it by ``spxcast features docs``)."""

from __future__ import annotations

from spxcast.features.catalog import LAGS_GROUP, Catalog, FeatureContext
from spxcast.lake.tables import GOLD_FEATURES


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def catalog_markdown(catalog: Catalog, context: FeatureContext) -> str:
    """One section per group: a table of name, unit, lookback (bars), silver table and description."""
    lines = [
        "# Feature catalog",
        "",
        "Generated from the feature catalog by `spxcast features docs` for granularity "
        f"{context.granularity} and a {context.horizon_minutes}-minute horizon: {len(catalog)} features "
        f"in {len(catalog.groups())} groups. Do not edit by hand.",
        "",
        "Every market feature at bar t uses only bars up to t's close (`ts` is the bar start); windows "
        "count real bars, gaps are never filled. `lookback` is the number of bars, the current one "
        "included, that determine the value: the online path computes each feature from exactly that "
        "trailing window. `span` is the time the news features and horizon lags need besides: minutes of "
        "articles received before the close (news), minutes of bars before the bar's start (lags).",
        "",
        "| group | features | max lookback (bars) | max span (min) |",
        "|---|---:|---:|---:|",
        *(
            f"| {g} | {len(catalog.names(g))} | {catalog.max_lookback(g)} | "
            f"{max(s.span_minutes for s in catalog if s.group == g):g} |"
            for g in catalog.groups()
        ),
    ]
    for group in catalog.groups():
        lines += [
            "",
            f"## {group}",
            "",
            "| name | unit | lookback | span | table | description |",
            "|---|---|---:|---:|---|---|",
        ]
        for spec in catalog:
            if spec.group == group:
                frame_table = GOLD_FEATURES.name if spec.group == LAGS_GROUP else "gold.news_signals"
                table = spec.silver or frame_table
                cells = (
                    f"`{spec.name}`",
                    _cell(spec.unit),
                    str(spec.lookback),
                    f"{spec.span_minutes:g}",
                    table,
                    _cell(spec.description),
                )
                lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"
