"""``/healthz`` (the process answers) and ``/readyz`` (task store, object store and cache reachable)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from shared.api.deps import ServicesDep
from shared.api.errors import ErrorDocument

router = APIRouter(tags=["health"])

_PROBE_KEY = "readyz/probe"


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the task store, object store and cache answer",
    responses={503: {"model": ErrorDocument, "description": "A dependency does not answer"}},
)
def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, Callable[[], object]] = {
        "task_store": services.runtime.tasks.ping,
        "object_store": lambda: services.runtime.objects.exists(_PROBE_KEY),
        "cache": services.runtime.cache.ping,
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any driver's error means "not ready"
            results[name] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            results[name] = "ok"
    failed = [name for name, result in results.items() if result != "ok"]
    if failed:
        return JSONResponse(
            {
                "error": {"code": "NOT_READY", "message": f"Not reachable: {', '.join(failed)}."},
                "checks": results,
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok", "checks": results})
