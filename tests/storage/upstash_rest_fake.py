"""A loopback stand-in for Upstash's REST API, backed by a real Redis.

It speaks the subset the ``upstash-redis`` SDK sends (read from its ``http.py`` and ``client.py``) with
the shapes Upstash documents (https://upstash.com/docs/redis/features/restapi):

- ``POST /`` with a JSON array ``["SET", "k", "v", "EX", 60]``: ``200 {"result": ...}``, or
  ``400 {"error": "..."}`` when Redis answers an error;
- ``POST /pipeline`` (in order, not atomic) and ``POST /multi-exec`` (MULTI ... EXEC) with an array of
  command arrays: ``200 [{"result": ...} | {"error": "..."}, ...]``;
- ``Authorization: Bearer <token>``, else ``401 {"error": "WRONGPASS invalid or missing auth token"}``;
- ``Upstash-Encoding: base64``: every string in the result is base64 of its bytes, except ``"OK"``;
- an ``Upstash-Sync-Token`` answer header (the SDK sends it back for read-your-writes).

Each command array is sent to Redis as it is (numbers as their decimal text), and the raw reply is
turned into JSON: bulk and simple strings as strings, integers as numbers, nil as null, arrays as lists.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis

UNAUTHORIZED = "WRONGPASS invalid or missing auth token"


def _encode(value: Any, base64_strings: bool) -> Any:
    if isinstance(value, bytes):
        if base64_strings and value != b"OK":
            return base64.b64encode(value).decode("ascii")
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_encode(item, base64_strings) for item in value]
    return value  # int or None


def _args(command: Any) -> list[str | bytes]:
    if not isinstance(command, list) or not command:
        raise ValueError("ERR a command must be a non-empty JSON array")
    args: list[str | bytes] = []
    for item in command:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise ValueError(f"ERR unsupported argument {item!r}")
        args.append(item if isinstance(item, str) else str(item))
    return args


class UpstashRestServer:
    """``url`` and ``token`` are what a client needs; ``requests`` logs (path, headers, body) of each call."""

    def __init__(self, redis_url: str, token: str = "test-upstash-token") -> None:
        self.token = token
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self._pool = redis.ConnectionPool.from_url(redis_url)
        self._sync = itertools.count(1)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._pool.disconnect()

    # -- Redis

    def _run(self, commands: list[Any], transaction: bool) -> list[Any]:
        """One reply per command: the raw reply, or the ResponseError Redis answered."""
        argv = [_args(command) for command in commands]  # all checked before anything is sent
        connection = self._pool.get_connection()
        try:
            if transaction:
                connection.send_command("MULTI")
                connection.read_response()
            replies: list[Any] = []
            for args in argv:
                connection.send_command(*args)
                try:
                    replies.append(connection.read_response())
                except redis.exceptions.ResponseError as exc:
                    replies.append(exc)
            if transaction:
                connection.send_command("EXEC")
                try:
                    replies = list(connection.read_response())
                except redis.exceptions.ResponseError as exc:  # EXECABORT: queued commands had errors
                    replies = [exc for _ in commands]
            return replies
        finally:
            self._pool.release(connection)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Upstash-Sync-Token", str(next(server._sync)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                server.requests.append((self.path, dict(self.headers.items()), body))
                if self.headers.get("Authorization") != f"Bearer {server.token}":
                    self._answer(401, {"error": UNAUTHORIZED})
                    return
                base64_strings = self.headers.get("Upstash-Encoding") == "base64"
                path = self.path.split("?", 1)[0].rstrip("/")
                try:
                    if path == "":
                        (reply,) = server._run([body], transaction=False)
                        if isinstance(reply, Exception):
                            self._answer(400, {"error": str(reply)})
                        else:
                            self._answer(200, {"result": _encode(reply, base64_strings)})
                        return
                    if path in ("/pipeline", "/multi-exec"):
                        if not isinstance(body, list) or not body:
                            raise ValueError("ERR a pipeline must be a non-empty array of commands")
                        replies = server._run(body, transaction=path == "/multi-exec")
                        self._answer(
                            200,
                            [
                                {"error": str(r)}
                                if isinstance(r, Exception)
                                else {"result": _encode(r, base64_strings)}
                                for r in replies
                            ],
                        )
                        return
                    self._answer(400, {"error": f"ERR unknown endpoint {path!r} (this fake serves POST only)"})
                except ValueError as exc:
                    self._answer(400, {"error": str(exc)})

        return Handler


@contextmanager
def upstash_rest_server(redis_url: str) -> Iterator[UpstashRestServer]:
    server = UpstashRestServer(redis_url)
    server.start()
    try:
        yield server
    finally:
        server.stop()
