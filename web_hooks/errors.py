"""The webhook errors: each a :class:`~shared.errors.VidluxeError` with a stable code.

URL errors are :class:`~shared.errors.InvalidInputError` subclasses, so the API answers them as a bad
request (400) naming the field; the delivery worker records their code on the attempt.
"""

from __future__ import annotations

from shared.errors import ConfigurationError, InvalidInputError, NotFoundError


class WebhookUrlInvalidError(InvalidInputError):
    """Not a usable webhook URL: bad syntax, a scheme other than https, credentials in it, no host."""

    code = "WEBHOOK_URL_INVALID"


class WebhookUrlForbiddenError(WebhookUrlInvalidError):
    """The host is, or resolves to, an address webhooks may not reach (private, loopback, metadata...)."""

    code = "WEBHOOK_URL_FORBIDDEN"


class WebhookUrlUnresolvableError(WebhookUrlInvalidError):
    """The host name does not resolve (at creation: refused; at delivery: retried like a network error)."""

    code = "WEBHOOK_URL_UNRESOLVABLE"


class WebhookSecretError(ConfigurationError):
    """A signing secret that is not ``whsec_`` + base64 of 24 to 64 bytes."""

    code = "WEBHOOK_SECRET_INVALID"


class WebhookEndpointNotFoundError(NotFoundError):
    """No webhook endpoint with that URL for the tenant."""

    code = "WEBHOOK_ENDPOINT_NOT_FOUND"
