"""``GET /v1/webhooks/deliveries`` and ``POST /v1/webhooks/endpoints/enable`` on a real server.

The service runs without its delivery thread, so each test drives delivery passes itself (a
DeliveryWorker over the service's outbox) and the listing is deterministic; the receiver is a real
HTTP endpoint on loopback that verifies signatures with the reference ``standardwebhooks`` package.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from service_helpers import FlakyReceiver, issue_key

from shared.cli.serve import LocalService
from shared.clock import SystemClock
from shared.settings import Settings
from shared.settings_service import ServiceSettings
from web_hooks.delivery import DeliveryWorker


@pytest.fixture
def quiet_service(settings: Settings) -> Iterator[LocalService]:
    """A real server whose webhook deliveries happen only when a test runs a pass."""
    service_settings = ServiceSettings(webhooks_allow_private=True, runner_workers=1)
    with LocalService(settings, service_settings, port=0, deliver_webhooks=False) as service:
        service.start_in_thread()
        yield service


@pytest.fixture
def acme(quiet_service: LocalService) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {issue_key(quiet_service)}"}
    with httpx.Client(base_url=quiet_service.base_url, headers=headers, timeout=30) as http:
        yield http


@pytest.fixture
def globex(quiet_service: LocalService) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {issue_key(quiet_service, 'globex')}"}
    with httpx.Client(base_url=quiet_service.base_url, headers=headers, timeout=30) as http:
        yield http


@pytest.fixture
def receiver() -> Iterator[FlakyReceiver]:
    hooks = FlakyReceiver()
    yield hooks
    hooks.close()


def _create(http: httpx.Client, webhook_url: str) -> str:
    response = http.post("/v1/videos", json={"pipeline": "enhance", "webhook_url": webhook_url})
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


def _deliveries(http: httpx.Client, **params: Any) -> dict[str, Any]:
    response = http.get("/v1/webhooks/deliveries", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _deliver(service: LocalService) -> None:
    """One delivery pass over the service's outbox, as the service's own worker would run it."""
    assert service.outbox is not None and service.services is not None
    with DeliveryWorker(service.outbox, service.services.tenants, SystemClock(), allow_private=True) as worker:
        worker.deliver_due()


def _error(response: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    assert error.get("field") == field, error


def test_deliveries_page_newest_first_filter_and_stay_within_the_tenant(
    acme: httpx.Client, globex: httpx.Client, receiver: FlakyReceiver
) -> None:
    tasks = [_create(acme, receiver.url) for _ in range(3)]  # one task.created message each
    theirs = _create(globex, receiver.url)

    everything = _deliveries(acme)
    assert [item["task_id"] for item in everything["data"]] == tasks[::-1]
    assert everything["next_cursor"] is None
    first = everything["data"][0]
    assert first["event_type"] == "task.created" and first["url"] == receiver.url
    assert first["status"] == "pending" and first["held"] is False
    assert first["attempt_count"] == 0 and first["attempts"] == []
    assert "tenant_id" not in first

    page = _deliveries(acme, limit=2)
    assert [item["task_id"] for item in page["data"]] == tasks[:0:-1] and page["next_cursor"]
    rest = _deliveries(acme, limit=2, cursor=page["next_cursor"])
    assert [item["task_id"] for item in rest["data"]] == tasks[:1] and rest["next_cursor"] is None

    assert [item["task_id"] for item in _deliveries(acme, task_id=tasks[1])["data"]] == [tasks[1]]
    assert len(_deliveries(acme, status="pending")["data"]) == 3
    assert _deliveries(acme, status="delivered")["data"] == []
    assert _deliveries(acme, task_id=theirs)["data"] == []  # another tenant's task: nothing, not its events
    assert [item["task_id"] for item in _deliveries(globex)["data"]] == [theirs]


def test_deliveries_show_each_attempt(
    quiet_service: LocalService, acme: httpx.Client, receiver: FlakyReceiver
) -> None:
    receiver.fail_first = 1
    task_id = _create(acme, receiver.url)
    _deliver(quiet_service)  # 503: retried in about 5 s
    pending = _deliveries(acme, task_id=task_id)["data"][0]
    assert pending["status"] == "pending" and pending["attempt_count"] == 1
    assert pending["last_status_code"] == 503 and pending["next_attempt_at"] is not None
    [attempt] = pending["attempts"]
    assert attempt["outcome"] == "retry" and attempt["status_code"] == 503
    assert attempt["next_attempt_at"] == pending["next_attempt_at"]


@pytest.mark.parametrize(
    ("params", "status", "code", "field"),
    [
        ({"limit": 0}, 422, "VALIDATION_ERROR", "limit"),
        ({"limit": 501}, 422, "VALIDATION_ERROR", "limit"),
        ({"limit": "many"}, 422, "VALIDATION_ERROR", "limit"),
        ({"status": "lost"}, 422, "VALIDATION_ERROR", "status"),
        ({"cursor": "not-a-cursor"}, 400, "INVALID_CURSOR", None),
        ({"task_id": "t" * 201}, 422, "VALIDATION_ERROR", "task_id"),
    ],
)
def test_deliveries_query_is_validated(
    acme: httpx.Client, params: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    _error(acme.get("/v1/webhooks/deliveries", params=params), status, code, field)


def test_deliveries_and_enable_need_a_key(quiet_service: LocalService) -> None:
    with httpx.Client(base_url=quiet_service.base_url) as anonymous:
        _error(anonymous.get("/v1/webhooks/deliveries"), 401, "UNAUTHORIZED")
        _error(anonymous.post("/v1/webhooks/endpoints/enable", json={"url": "http://x/"}), 401, "UNAUTHORIZED")


def test_a_410_disables_the_endpoint_until_enabled_then_held_messages_are_delivered(
    quiet_service: LocalService, acme: httpx.Client, globex: httpx.Client, receiver: FlakyReceiver
) -> None:
    receiver.status = 410
    task_id = _create(acme, receiver.url)
    _deliver(quiet_service)
    held = _deliveries(acme, task_id=task_id)["data"][0]
    assert held["status"] == "pending" and held["held"] is True and held["last_status_code"] == 410
    assert [attempt["outcome"] for attempt in held["attempts"]] == ["disable"]
    _deliver(quiet_service)  # held: not attempted again while disabled
    assert _deliveries(acme, task_id=task_id)["data"][0]["attempt_count"] == 1

    # Only the tenant that used the URL can enable it; a URL it never used is a 404.
    _error(globex.post("/v1/webhooks/endpoints/enable", json={"url": receiver.url}), 404, "WEBHOOK_ENDPOINT_NOT_FOUND")
    _error(acme.post("/v1/webhooks/endpoints/enable", json={"url": "http://127.0.0.1:9/never"}), 404,
           "WEBHOOK_ENDPOINT_NOT_FOUND")

    receiver.status = 204
    enabled = acme.post("/v1/webhooks/endpoints/enable", json={"url": receiver.url})
    assert enabled.status_code == 200, enabled.text
    endpoint = enabled.json()
    assert endpoint["url"] == receiver.url and endpoint["enabled"] is True
    assert endpoint["disabled_at"] is None and endpoint["disabled_reason"] is None
    assert _deliveries(acme, task_id=task_id)["data"][0]["held"] is False

    _deliver(quiet_service)
    delivered = _deliveries(acme, task_id=task_id)["data"][0]
    assert delivered["status"] == "delivered" and delivered["delivered_at"] is not None
    assert [attempt["status_code"] for attempt in delivered["attempts"]] == [410, 204]
    assert [message_id for message_id, _ in receiver.accepted] == [delivered["message_id"]]
    again = acme.post("/v1/webhooks/endpoints/enable", json={"url": receiver.url})  # enabled already: no change
    assert again.status_code == 200 and again.json() == endpoint


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "url"), ({"url": ""}, "url"), ({"url": "http://x/", "extra": 1}, "extra"), ({"url": "x" * 2049}, "url")],
)
def test_enable_body_is_validated(acme: httpx.Client, body: dict[str, Any], field: str) -> None:
    _error(acme.post("/v1/webhooks/endpoints/enable", json=body), 422, "VALIDATION_ERROR", field)
