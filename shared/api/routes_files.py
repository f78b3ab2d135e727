"""The local object store's signed URLs, served by ``vidluxe serve`` (S3 serves its own).

``PUT /v1/uploads/{key}``: the upload. The signature covers the method, key, expiry, content type and
size limit, so the request must send the signed ``Content-Type``; the body is streamed to a staging
file on the store's disk (never held in memory), refused once it passes ``max_bytes``, then renamed
into place, which emits the object-created event that starts the task.

``GET /v1/files/{key}``: a signed download of an output.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from shared.api.deps import ServicesDep
from shared.api.errors import ErrorDocument
from shared.errors import InvalidInputError, NotFoundError, PayloadTooLargeError
from shared.service.services import Services
from shared.storage.local_objects import LocalObjectStore
from shared.storage.presign import DOWNLOAD_ROUTE, UPLOAD_ROUTE, UrlSigner

router = APIRouter(tags=["files"])

_WRITE_BATCH = 1024 * 1024

_SIGNED_URL_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorDocument, "description": description}
    for status, description in (
        (403, "Bad signature, or the URL expired"),
        (404, "Not served here (the object store is not local), or no such object"),
        (409, "The task does not accept this upload any more"),
        (413, "Over the signed size limit"),
    )
}


def _local(services: Services) -> tuple[LocalObjectStore, UrlSigner]:
    if services.local_objects is None or services.url_signer is None:
        raise NotFoundError("Files are served by the object store itself (S3), not by this service.")
    return services.local_objects, services.url_signer


@router.put(UPLOAD_ROUTE + "{key:path}", status_code=201, responses=_SIGNED_URL_ERRORS, summary="Upload (local store)")
async def upload(
    key: str,
    request: Request,
    services: ServicesDep,
    expires: Annotated[int, Query()],
    max_bytes: Annotated[int, Query(ge=1)],
    signature: Annotated[str, Query(max_length=100)],
) -> JSONResponse:
    """The URL comes from `POST /v1/videos` (`upload.url`); send the file as the body, with its headers."""
    store, signer = _local(services)
    content_type = request.headers.get("content-type", "")
    signer.verify(
        signature, "PUT", key, expires, now=services.runtime.clock.now(), content_type=content_type, max_bytes=max_bytes
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"The file is {declared} bytes; this upload takes at most {max_bytes}.")
    await run_in_threadpool(services.videos.check_upload_open, key)
    fd, path = store.staging_file()
    size = 0
    pending = bytearray()  # at most _WRITE_BATCH bytes in memory; disk writes off the event loop
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLargeError(f"The file is over this upload's limit of {max_bytes} bytes.")
                pending += chunk
                if len(pending) >= _WRITE_BATCH:
                    await run_in_threadpool(out.write, bytes(pending))
                    pending.clear()
            if pending:
                await run_in_threadpool(out.write, bytes(pending))
        if size == 0:
            raise InvalidInputError("The upload is empty.", code="EMPTY_UPLOAD")
        await run_in_threadpool(store.move_in, key, path)  # emits the object-created event
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return JSONResponse({"key": key, "size": size}, status_code=201)


@router.get(DOWNLOAD_ROUTE + "{key:path}", responses=_SIGNED_URL_ERRORS, summary="Download (local store)")
def download(
    key: str,
    services: ServicesDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query(max_length=100)],
    filename: Annotated[str | None, Query(max_length=200)] = None,
) -> FileResponse:
    """The URLs are the `outputs` of `GET /v1/videos/{id}`."""
    store, signer = _local(services)
    signer.verify(signature, "GET", key, expires, now=services.runtime.clock.now(), filename=filename or "")
    with store.local_copy(key) as path:  # the local store's own file: still there after the block
        media_type = mimetypes.guess_type(filename or path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type, filename=filename)
