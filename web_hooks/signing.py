"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A secret is ``whsec_`` followed by the base64 of 24 to 64 random bytes. Each delivery carries

- ``webhook-id``: the event id, the same on every retry;
- ``webhook-timestamp``: the attempt's time in integer Unix seconds;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``, one per valid
  secret, separated by spaces, so that during a rotation's grace period a receiver holding either
  the new or the previous secret can verify.

Any Standard Webhooks library verifies these (tested with the reference ``standardwebhooks`` package).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
from collections.abc import Sequence
from datetime import datetime

from web_hooks.errors import WebhookSecretError

SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64


def generate_secret(key_bytes: int = 32) -> str:
    """A new random ``whsec_`` secret. Raises ValueError outside 24..64 bytes."""
    if not MIN_KEY_BYTES <= key_bytes <= MAX_KEY_BYTES:
        raise ValueError(f"key_bytes must be between {MIN_KEY_BYTES} and {MAX_KEY_BYTES}, not {key_bytes}.")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(key_bytes)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret. Raises WebhookSecretError for a malformed one."""
    if not secret.startswith(SECRET_PREFIX):
        raise WebhookSecretError(f"A webhook signing secret starts with {SECRET_PREFIX!r}.")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookSecretError("A webhook signing secret is whsec_ followed by standard base64.") from exc
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise WebhookSecretError(
            f"A webhook signing secret holds {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, not {len(key)}; "
            "generate one with web_hooks.signing.generate_secret()."
        )
    return key


def unix_seconds(moment: datetime) -> int:
    """``moment`` as whole Unix seconds (rounded down), the ``webhook-timestamp`` value."""
    return math.floor(moment.timestamp())


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature. Raises WebhookSecretError for a malformed secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(msg_id: str, timestamp: datetime, body: bytes, signing_secrets: Sequence[str]) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt, signed with every given secret.

    Raises ValueError for no secret, WebhookSecretError for a malformed one.
    """
    if not signing_secrets:
        raise ValueError("At least one signing secret is needed to sign a webhook.")
    seconds = unix_seconds(timestamp)
    signatures = dict.fromkeys(sign(secret, msg_id, seconds, body) for secret in signing_secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": " ".join(signatures),
    }
