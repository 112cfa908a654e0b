"""External data sources (network and files), each behind a Protocol.

Market data in ``sources.market``, news in ``sources.news``.
"""
