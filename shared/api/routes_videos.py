"""``/v1/videos``: create (with an upload target), poll, list, cancel, retry."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from shared.api.deps import ServicesDep, TenantDep, services_of
from shared.api.errors import ERROR_RESPONSES, ErrorDocument
from shared.service.models import ApiStatus, CreateVideo, VideoCreated, VideoList, VideoStatus, task_status
from shared.service.videos import check_idempotency_key

router = APIRouter(prefix="/v1/videos", tags=["videos"], responses=ERROR_RESPONSES)

# Seconds a poller should wait before asking again, by status.
_RETRY_AFTER = {"awaiting_upload": 5, "queued": 2, "running": 2}


def _document(status: VideoStatus) -> dict[str, object]:
    document = status.model_dump(mode="json")
    if document.get("cost") is None:
        document.pop("cost", None)  # no cost ledger configured: no made-up figures
    return document


def _body(status: VideoStatus) -> bytes:
    """What :func:`_document` gives, serialised by pydantic straight to JSON bytes (the poll's answer)."""
    return status.model_dump_json(exclude={"cost"} if status.cost is None else None).encode()


def _etag(status: VideoStatus, download_expiry: str) -> str:
    """A weak ETag of what changes the answer: everything but the ETA and the signed URLs' signatures
    (S3 signs with the current second); the URLs' names and expiry window stand in for them. The
    fields serialise in the model's order and the dicts in their stored order, so equal documents
    hash alike."""
    stable = status.model_dump_json(exclude={"eta_seconds", "outputs"})
    names = ",".join(sorted(status.outputs))
    digest = hashlib.sha256(f"{stable}\n{names}\n{download_expiry}".encode()).hexdigest()[:32]
    return f'W/"{digest}"'


def _poll_headers(status: VideoStatus, etag: str) -> dict[str, str]:
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    retry_after = _RETRY_AFTER.get(status.status)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return headers


@router.post(
    "",
    status_code=201,
    response_model=VideoCreated,
    summary="Create a video task and get its upload URL",
    responses={200: {"model": VideoCreated, "description": "A repeat of an earlier request (same Idempotency-Key)"},
               409: {"model": ErrorDocument, "description": "Idempotency-Key reused for another request"}},
)
def create_video(
    services: ServicesDep,
    tenant: TenantDep,
    request: Annotated[CreateVideo, Body()],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="Retries with the same key return the same task.")
    ] = None,
) -> JSONResponse:
    """The task waits in `awaiting_upload`; uploading the file (PUT, or the S3 POST form) starts it."""
    key = check_idempotency_key(idempotency_key) if idempotency_key is not None else None
    created, new = services.videos.create(tenant.tenant_id, request, idempotency_key=key)
    headers = {"Location": f"/v1/videos/{created.task_id}"}
    if not new:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(created.model_dump(mode="json"), status_code=201 if new else 200, headers=headers)


@router.get("", response_model=VideoList, summary="List your videos, newest first")
def list_videos(
    services: ServicesDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    status: Annotated[ApiStatus | None, Query(description="Only videos in this status")] = None,
) -> JSONResponse:
    statuses = [task_status(status)] if status is not None else None
    page = services.videos.list_videos(tenant.tenant_id, limit=limit, cursor=cursor, statuses=statuses)
    return JSONResponse({"data": [_document(item) for item in page.data], "next_cursor": page.next_cursor})


@router.get(
    "/{task_id}",
    response_model=VideoStatus,
    summary="A video's status, progress and outputs",
    responses={304: {"description": "Unchanged since the ETag given in If-None-Match"}},
)
async def get_video(tenant: TenantDep, task_id: str, http_request: Request) -> Response:
    """Cheap to poll: send the last `ETag` as `If-None-Match` for a `304`; wait `Retry-After` seconds."""
    # async: the reads run on the event loop (VideoService.status_async), with no thread hand-off; the
    # services straight from the app: each dependency FastAPI resolves costs on every poll.
    services = services_of(http_request)
    status = await services.videos.status_async(tenant.tenant_id, task_id)
    etag = _etag(status, services.videos.download_expiry().isoformat())
    headers = _poll_headers(status, etag)
    if etag in _etags(http_request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    return Response(_body(status), media_type="application/json", headers=headers)


@router.post("/{task_id}/cancel", response_model=VideoStatus, summary="Stop a task")
def cancel_video(services: ServicesDep, tenant: TenantDep, task_id: str) -> JSONResponse:
    """A running execution stops before its next stage; the task is `cancelled`. A finished one: 409."""
    return JSONResponse(_document(services.videos.cancel(tenant.tenant_id, task_id)))


@router.post("/{task_id}/retry", response_model=VideoStatus, status_code=202, summary="Re-run a failed task")
def retry_video(services: ServicesDep, tenant: TenantDep, task_id: str) -> JSONResponse:
    """Runs again from the stage that failed; finished stages are not recomputed. Not failed: 409."""
    return JSONResponse(_document(services.videos.retry(tenant.tenant_id, task_id)), status_code=202)


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    tags = {tag.strip() for tag in header.split(",") if tag.strip()}
    return tags | {f"W/{tag}" for tag in tags if not tag.startswith("W/")}
