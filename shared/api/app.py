"""The HTTP API: one FastAPI app, served by uvicorn (``vidluxe serve``) and by Mangum on AWS Lambda.

Routes live in routers, one module each; :func:`create_app` mounts :data:`ROUTERS` (the API's, and
the cost dashboard's HTML pages at /dashboard, which stay out of the OpenAPI document) plus any the
caller adds. Every error answers in one JSON shape
(:mod:`shared.api.errors`); request bodies are limited in size (:mod:`shared.api.limits`); CORS is on
for the origins in ``VIDLUXE_CORS_ORIGINS``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from shared.api import routes_dashboard, routes_files, routes_health, routes_videos, routes_webhooks
from shared.api.errors import install_error_handlers
from shared.api.limits import BodySizeLimit
from shared.service.services import Services
from shared.settings_service import ServiceSettings
from shared.storage.presign import UPLOAD_ROUTE

API_VERSION = "1.0.0"

ROUTERS: tuple[APIRouter, ...] = (
    routes_videos.router,
    routes_webhooks.router,
    routes_files.router,
    routes_health.router,
    routes_dashboard.router,
)
"""The service's own routers, mounted by every app (integrators append theirs with ``routers=``)."""


def create_app(
    services: Services | None = None,
    *,
    routers: Sequence[APIRouter] = (),
    service_settings: ServiceSettings | None = None,
) -> FastAPI:
    """The API over ``services`` (None builds an app for its OpenAPI document only).

    ``routers`` are mounted after the service's own. ``service_settings`` (default: the services',
    else from the environment) set the CORS origins and the request body limit.
    """
    settings = service_settings or (services.service_settings if services else ServiceSettings())
    app = FastAPI(
        title="VidLuxe API",
        version=API_VERSION,
        description=(
            "Turn a raw talking-head video (or product photos) into a premium one. Create a task, upload "
            "the file to the URL you get back, then poll the task or receive signed webhooks."
        ),
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    for router in (*ROUTERS, *routers):
        app.include_router(router)
    install_error_handlers(app, union_tags=frozenset({"enhance", "showcase"}))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes, exempt_prefixes=(UPLOAD_ROUTE,))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-None-Match"],
            expose_headers=["ETag", "Retry-After", "Location", "Idempotent-Replayed"],
            max_age=600,
        )
    return app
