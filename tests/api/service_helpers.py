"""Helpers the API tests import (conftest.py is not importable by name once several directories have one)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.cli.serve import LocalService

ServiceFactory = Callable[..., LocalService]


def issue_key(service: LocalService, tenant: str = "acme") -> str:
    """A new API key for ``tenant`` (created if new) on the running service."""
    assert service.services is not None
    return service.services.tenants.issue_key(tenant).api_key


class FlakyReceiver:
    """A webhook endpoint on loopback that verifies every delivery with the reference ``standardwebhooks``
    package, answers 503 to the first ``fail_first`` attempts of each message (by webhook-id), then
    ``status``. A delivery whose signature does not verify is answered 400 and counted in ``invalid``.

    ``attempts``: webhook-id -> attempts seen; ``accepted``: the verified events answered with a 2xx, as
    (webhook-id, event); ``secret`` may be set after construction (the tenant's, once it has a key).
    """

    def __init__(self, secret: str | None = None, *, fail_first: int = 0, status: int = 204) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.status = status
        self.attempts: Counter[str] = Counter()
        self.accepted: list[tuple[str, dict[str, Any]]] = []
        self.invalid = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                status = receiver.answer(headers, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, name="flaky-receiver", daemon=True)
        self._thread.start()

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        try:
            event = dict(Webhook(self.secret).verify(body, headers)) if self.secret else json.loads(body)
        except (WebhookVerificationError, ValueError):
            with self._lock:
                self.invalid += 1
            return 400
        message_id = headers.get("webhook-id", "")
        with self._lock:
            self.attempts[message_id] += 1
            if self.attempts[message_id] <= self.fail_first:
                return 503
            if 200 <= self.status < 300:
                self.accepted.append((message_id, event))
            return self.status

    def accepted_of(self, event_type: str) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(message_id, event) for message_id, event in self.accepted if event["type"] == event_type]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
