"""``GET /metrics``: the app's Prometheus registry in text format."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.http.deps import MetricsDep
from service.http.policy import OPEN, needs
from service.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
@needs(OPEN)
async def metrics(metrics: MetricsDep) -> Response:
    """Request counts and latency, predictions, batch sizes, models loaded (Prometheus text)."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)
