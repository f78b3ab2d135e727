"""Test helpers for the webhook tests: a settable clock and a real HTTP receiver on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from shared.storage.sql import SqlDatabase

DatabaseFactory = Callable[[], SqlDatabase]


class FakeClock:
    """A settable clock: ``sleep`` and ``advance`` move time forward without waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP endpoint. ``script`` holds the (status, headers) of the next answers; then 200."""

    port: int = 0
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[ReceivedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def answer(self, request: ReceivedRequest) -> tuple[int, dict[str, str]]:
        with self.lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else (200, {})


def make_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, extra = receiver.answer(ReceivedRequest(self.path, headers, body))
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class QuietHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that does not print a client's dropped connection (the worker does not
    read the answer's body, so it may close a kept-alive connection)."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def serve(receiver: Receiver, server: ThreadingHTTPServer) -> Iterator[Receiver]:
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class StaticSecrets:
    """SigningSecrets from a dict: tenant -> [current, previous...]."""

    def __init__(self, secrets: dict[str, list[str]]) -> None:
        self.secrets = secrets

    def signing_secrets(self, tenant_id: str) -> list[str]:
        return list(self.secrets.get(tenant_id, []))
