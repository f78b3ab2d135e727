"""A size limit on request bodies, as ASGI middleware (uploads have their own, signed, limit).

A declared ``Content-Length`` over the limit is refused before the body is read; a body sent without
one (chunked) is counted as it arrives and refused once it passes the limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.api.errors import error_response
from shared.errors import PayloadTooLargeError


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt_prefixes: tuple[str, ...] = ()) -> None:
        self._app = app
        self._max = max_bytes
        self._exempt = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self._exempt):
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._max:
            response = error_response(
                413, PayloadTooLargeError.code, f"The request body is {declared} bytes; the limit is {self._max}."
            )
            await response(scope, receive, send)
            return
        seen = 0
        limit = self._max

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLargeError(f"The request body is over the limit of {limit} bytes.")
            return message

        await self._app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
