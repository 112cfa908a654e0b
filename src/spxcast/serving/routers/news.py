"""GET /news/recent."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from spxcast.serving.routers.deps import ServiceDep
from spxcast.serving.schemas import NewsItem, NewsResponse

router = APIRouter(tags=["news"])


@router.get("/news/recent", response_model=NewsResponse)
def recent(service: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> NewsResponse:
    """The newest scored articles: when we received them, title, sentiment score (p_pos - p_neg), scorer."""
    return NewsResponse(items=[NewsItem(**item) for item in service.news(limit)])
