"""Data quality: candle validation (accepted + quarantined = input) and the data-health report."""

from spxcast.quality.candles import ValidationResult, validate_candles
from spxcast.quality.health import HealthReport, candle_health, quarantine_counts

__all__ = ["HealthReport", "ValidationResult", "candle_health", "quarantine_counts", "validate_candles"]
