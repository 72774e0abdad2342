"""Prometheus scrape endpoint: API requests, Temporal client metrics (behind the bearer token)."""

from fastapi import APIRouter, Response

from core import metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
def scrape() -> Response:
    """Every metric of the API process in Prometheus' text format."""
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
