"""Market-data sources: synthetic (embedded default), OANDA v20 REST, and files (CSV/Parquet/NDJSON)."""

from spxcast.sources.market.base import RAW_CANDLE_COLUMNS, CandleSource

__all__ = ["RAW_CANDLE_COLUMNS", "CandleSource"]
