"""External data sources (network and files), each behind a Protocol: market data in ``sources.market``, news in ``sources.news``."""
