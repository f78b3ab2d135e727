"""The API Lambda (API Gateway HTTP API, payload v2): Mangum over the same FastAPI app as ``vidluxe serve``."""

from __future__ import annotations

from functools import cache
from typing import Any

from mangum import Mangum

from functions.service import cloud_services
from shared.api.app import create_app


@cache
def _adapter() -> Mangum:
    return Mangum(create_app(cloud_services()), lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = _adapter()(event, context)
    return response
