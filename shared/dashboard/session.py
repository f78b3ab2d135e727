"""The dashboard's session cookie: who is signed in, until when, signed with the server's secret.

The value is ``<payload>.<signature>``, both base64url: the payload is JSON ``{"t": tenant id, "k":
SHA-256 of the API key signed in with, "e": expiry (Unix seconds)}``, the signature HMAC-SHA256 of
the payload under the session key. The key itself is never stored; its hash lets every request check
that the key is still valid, so revoking a key ends its sessions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

COOKIE_NAME = "vidluxe_session"


@dataclass(frozen=True)
class Session:
    tenant_id: str
    key_hash: str
    expires_at: int  # Unix seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Makes and checks session cookie values under one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("A session key needs at least 16 bytes.")
        self._key = hashlib.sha256(b"vidluxe-dashboard-session\x00" + key).digest()

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def sign(self, session: Session) -> str:
        document = {"t": session.tenant_id, "k": session.key_hash, "e": session.expires_at}
        payload = _b64(json.dumps(document, separators=(",", ":")).encode())
        return f"{payload}.{self._signature(payload)}"

    def verify(self, value: str | None, *, now: datetime) -> Session | None:
        """The session in a cookie value, or None when it is missing, malformed, forged or expired."""
        if not value or len(value) > 1024 or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(signature, self._signature(payload)):
            return None
        try:
            document = json.loads(_unb64(payload))
            session = Session(tenant_id=document["t"], key_hash=document["k"], expires_at=document["e"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if not (isinstance(session.tenant_id, str) and isinstance(session.key_hash, str)):
            return None
        if not isinstance(session.expires_at, int) or session.expires_at <= now.timestamp():
            return None
        return session
