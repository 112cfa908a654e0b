"""External data sources (network and files): market data in ``sources.market``, news in ``sources.news``."""
