"""Market tasks: ingest into bronze, then gate the training DAG on the health of bronze.candles."""

from __future__ import annotations

from typing import Any

from spxcast.errors import DataQualityError
from spxcast.pipeline.context import TaskContext


def ingest_market(ctx: TaskContext) -> dict[str, Any]:
    """Ingest the configured market source and range into bronze; returns counts and table versions."""
    from spxcast.ingest.market import ingest_market as run_ingestion

    return run_ingestion(ctx.settings, ctx.lake).to_dict()


def validate_market(ctx: TaskContext) -> dict[str, Any]:
    """Gate: bronze.candles holds the configured series, without duplicate keys, with little quarantined.

    Raises :class:`DataQualityError` naming the failed check; returns the health report otherwise.
    """
    from spxcast.ingest.market import stored_health

    settings, lake = ctx.settings, ctx.lake
    instrument, granularity = settings.instrument, settings.granularity
    if not lake.exists("bronze.candles"):
        raise DataQualityError("bronze.candles does not exist; run `spxcast ingest market` first")
    health = stored_health(lake, instrument, granularity, settings.calendar)
    report = health.report
    if report.rows == 0:
        raise DataQualityError(f"bronze.candles has no {instrument} {granularity} bars; ingest them first")
    if report.duplicate_keys:
        raise DataQualityError(
            f"bronze.candles has {report.duplicate_keys} duplicate {instrument} {granularity} keys"
        )
    limit = settings.quality.max_quarantine_fraction
    if health.quarantine_fraction > limit:
        raise DataQualityError(
            f"{health.quarantined_records} of {health.quarantined_records + report.rows} candle records were "
            f"quarantined ({health.quarantine_fraction:.1%}), more than quality.max_quarantine_fraction = "
            f"{limit:.1%}; see `spxcast data health`"
        )
    return {
        **report.to_dict(),
        "quarantine_fraction": round(health.quarantine_fraction, 6),
        "candles_version": lake.version("bronze.candles"),
    }
