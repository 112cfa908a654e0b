"""spxcast: point-in-time S&P 500 forecasting from 1-minute candles and news."""

__version__ = "0.1.0"
