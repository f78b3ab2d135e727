"""Standard Webhooks signatures, checked with the reference ``standardwebhooks`` verifier."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from web_hooks.errors import WebhookSecretError
from web_hooks.signing import generate_secret, secret_key, sign, webhook_headers

BODY = json.dumps({"type": "task.completed", "data": {"task_id": "t1", "note": "café"}}, ensure_ascii=False).encode()


def test_known_vector_from_the_standard_webhooks_documentation() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_reference_verifier_accepts_a_delivery() -> None:
    secret = generate_secret()
    headers = webhook_headers("msg_abc", datetime.now(UTC), BODY, [secret])
    assert Webhook(secret).verify(BODY, headers)["data"]["note"] == "café"


def test_during_rotation_either_secret_verifies() -> None:
    current, previous = generate_secret(), generate_secret()
    headers = webhook_headers("msg_abc", datetime.now(UTC), BODY, [current, previous])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(current).verify(BODY, headers)
    Webhook(previous).verify(BODY, headers)


def test_wrong_secret_tampered_body_and_old_timestamp_fail() -> None:
    secret = generate_secret()
    headers = webhook_headers("msg_abc", datetime.now(UTC), BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"t1", b"t2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_other"})
    old = webhook_headers("msg_abc", datetime.now(UTC) - timedelta(minutes=10), BODY, [secret])
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, old)


def test_timestamp_header_is_whole_unix_seconds() -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)
    headers = webhook_headers("msg_abc", moment, b"{}", [generate_secret()])
    assert headers["webhook-timestamp"] == str(int(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()))


@pytest.mark.parametrize(
    "secret",
    ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not*base64!", "whsec_c2hvcnQ="],
)
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(WebhookSecretError):
        secret_key(secret)


def test_no_secret_is_an_error() -> None:
    with pytest.raises(ValueError):
        webhook_headers("msg_abc", datetime.now(UTC), b"{}", [])
