"""A size limit on request bodies, as ASGI middleware (uploads have their own, signed, limit).

A declared ``Content-Length`` over the limit is refused before the body is read. Otherwise the body
(small by definition: the limit is tens of KB) is read here first, counting; past the limit the answer
is a 413 at once, else the app gets the same body replayed. Refusing here, not inside the app, keeps
the 413: FastAPI turns any error raised while it reads a JSON body into a 400.
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
        declared, chunked = _body_headers(scope)
        if declared is None and not chunked:  # no Content-Length and no Transfer-Encoding: no body (a poll)
            await self._app(scope, receive, send)
            return
        if declared is not None and declared > self._max:
            await self._refuse(scope, receive, send, f"The request body is {declared} bytes; the limit is {self._max}.")
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: let the app see it
            size += len(message.get("body", b""))
            if size > self._max:
                await self._refuse(scope, receive, send, f"The request body is over the limit of {self._max} bytes.")
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self._app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, message: str) -> None:
        await error_response(413, PayloadTooLargeError.code, message)(scope, receive, send)


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length (None if absent or not a number), and whether a Transfer-Encoding
    (chunked) body follows."""
    length, chunked = None, False
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = -1  # not a number: read and count what comes
        elif name == b"transfer-encoding":
            chunked = True
    return (None if length == -1 else length), chunked or length == -1
