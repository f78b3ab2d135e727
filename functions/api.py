"""The API Lambda (API Gateway HTTP API, payload v2): Mangum over the same FastAPI app as ``vidluxe serve``.

Each log line carries the API Gateway request id as its correlation id; each call emits ``ApiRequests``
and, for a 5xx answer, ``ApiServerErrors`` (namespace VidLuxe).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from mangum import Mangum

from functions.observability import logger, metrics, tracer
from functions.service import cloud_services
from shared.api.app import create_app


@cache
def _adapter() -> Mangum:
    return Mangum(create_app(cloud_services()), lifespan="off")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = _adapter()(event, context)
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    if int(response.get("statusCode", 500)) >= 500:
        metrics.add_metric(name="ApiServerErrors", unit=MetricUnit.Count, value=1)
    return response
