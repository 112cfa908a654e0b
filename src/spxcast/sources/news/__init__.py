"""News sources yielding raw articles (:class:`NewsSource`), and the rules that make bronze rows of them."""

from spxcast.sources.news.base import NewsSource, PoliteClient
from spxcast.sources.news.files import FilesSource
from spxcast.sources.news.gdelt import GdeltSource
from spxcast.sources.news.records import NewsBatch, RawArticle, RelevanceFilter, to_bronze
from spxcast.sources.news.rss import RssSource
from spxcast.sources.news.synthetic import SyntheticNewsSource

__all__ = [
    "FilesSource",
    "GdeltSource",
    "NewsBatch",
    "NewsSource",
    "PoliteClient",
    "RawArticle",
    "RelevanceFilter",
    "RssSource",
    "SyntheticNewsSource",
    "to_bronze",
]
