"""The error hierarchy every stage and adapter raises.

Each error carries a stable ``code`` (for users, the task store and webhooks) and a human message.
The class name is what Step Functions matches in Retry/Catch ``ErrorEquals``: a Lambda reports an
unhandled exception's type name as the error, and the local runner does the same.
"""

from __future__ import annotations

import json
from typing import Any


class VidluxeError(Exception):
    """Base of every expected failure. ``code`` is stable; ``message`` says how to fix it."""

    code: str = "INTERNAL_ERROR"
    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    @property
    def error_name(self) -> str:
        """The name Step Functions sees (Lambda's errorType)."""
        return type(self).__name__

    def to_cause(self) -> str:
        """The Step Functions ``Cause``: the same JSON shape a failed Lambda invocation produces."""
        return json.dumps(
            {"errorType": self.error_name, "errorMessage": self.message, "code": self.code, **self.details},
            ensure_ascii=False,
        )

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidInputError(VidluxeError):
    """The user's input cannot be processed (missing file, not a video, bad option)."""

    code = "INVALID_INPUT"


class MediaError(VidluxeError):
    """ffmpeg or the decoder failed on media that passed validation."""

    code = "MEDIA_ERROR"


class TransientError(VidluxeError):
    """A failure worth retrying (network, throttling, a busy provider)."""

    code = "TRANSIENT"
    retryable = True


class ConfigurationError(VidluxeError):
    """Settings are missing or inconsistent (e.g. the S3 backend without a bucket)."""

    code = "CONFIGURATION_ERROR"


class NotFoundError(VidluxeError):
    """A task, object or cache entry that does not exist."""

    code = "NOT_FOUND"


class AuthenticationError(VidluxeError):
    """No credentials, or credentials that name nobody (a missing, unknown or revoked API key)."""

    code = "UNAUTHORIZED"


class PermissionDeniedError(VidluxeError):
    """Credentials that do not allow this (a signed URL with a wrong signature or past its expiry)."""

    code = "FORBIDDEN"


class ConflictError(VidluxeError):
    """The request conflicts with the resource's state (cancel a finished task, reuse an idempotency key)."""

    code = "CONFLICT"


class PayloadTooLargeError(VidluxeError):
    """A request body or upload over its size limit."""

    code = "PAYLOAD_TOO_LARGE"


class StorageKeyError(InvalidInputError):
    """An object key that could escape its bucket or home directory."""

    code = "INVALID_KEY"


def error_from_cause(error: str, cause: str | None) -> tuple[str, str]:
    """Recover (code, message) from a Step Functions error name and cause.

    A cause written by :meth:`VidluxeError.to_cause` carries the code; anything else (a States.*
    error, a foreign exception) is reported under its error name.
    """
    if cause:
        try:
            parsed = json.loads(cause)
        except ValueError:
            return error, cause
        if isinstance(parsed, dict):
            code = parsed.get("code") or error
            message = parsed.get("errorMessage") or cause
            return str(code), str(message)
    return error, cause or error
