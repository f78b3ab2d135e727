"""The /v1 API on a real server: create, idempotency, validation, auth, isolation, polling, listing,
uploads refused for the right reasons, webhook secrets, health, the error shape."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from service_helpers import ServiceFactory, issue_key

from shared.cli.serve import LocalService
from shared.settings import Settings
from shared.settings_service import ServiceSettings
from shared.storage.costs import CostEntry
from shared.storage.tasks import StageReport, StageRunStatus, TaskStatus, TransitionRecord


def _enhance(**fields: Any) -> dict[str, Any]:
    return {"pipeline": "enhance", "options": {"preset": "luxury"}, **fields}


def _error(response: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if field is not None:
        assert body["error"].get("field") == field, body
    return dict(body["error"])


def test_create_returns_a_presigned_upload_and_an_awaiting_task(client: httpx.Client, service: LocalService) -> None:
    response = client.post("/v1/videos", json=_enhance(metadata={"order": 7}, webhook_url="http://127.0.0.1:9/hook"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "awaiting_upload"
    assert response.headers["location"] == f"/v1/videos/{created['task_id']}"
    upload = created["upload"]
    assert upload["method"] == "PUT" and upload["url"].startswith(f"{service.base_url}/v1/uploads/uploads/")
    assert upload["headers"] == {"Content-Type": "video/mp4"}
    assert upload["max_bytes"] == 2 * 1024**3 and created["uploads"] == [upload]

    status = client.get(f"/v1/videos/{created['task_id']}").json()
    assert status["status"] == "awaiting_upload" and status["progress"] == 0.0
    assert status["metadata"] == {"order": 7} and status["webhook_url"] == "http://127.0.0.1:9/hook"
    assert status["upload_expires_at"] == upload["expires_at"]
    assert status["cost"] == {"total_usd": 0.0, "by_stage": {}, "price_versions": []}  # nothing ran yet


def test_idempotency_key_returns_the_same_task(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = client.post("/v1/videos", json=_enhance(), headers=headers)
    again = client.post("/v1/videos", json=_enhance(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = client.post("/v1/videos", json=_enhance(options={"preset": "minimal"}), headers=headers)
    _error(other, 409, "IDEMPOTENCY_KEY_REUSED")
    fresh = client.post("/v1/videos", json=_enhance(), headers={"Idempotency-Key": "order-43"})
    assert fresh.json()["task_id"] != first.json()["task_id"]
    _error(client.post("/v1/videos", json=_enhance(), headers={"Idempotency-Key": "a b"}), 400,
           "INVALID_IDEMPOTENCY_KEY", "Idempotency-Key")


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"pipeline": "nope"}, 422, "VALIDATION_ERROR", "pipeline"),
        ({}, 422, "VALIDATION_ERROR", "pipeline"),
        (_enhance(options={"title": "x" * 201}), 422, "VALIDATION_ERROR", "options.title"),
        (_enhance(options={"output": {"width": 7}}), 422, "VALIDATION_ERROR", "options.output.width"),
        (_enhance(options={"colour": "red"}), 422, "VALIDATION_ERROR", "options.colour"),
        (_enhance(content_type="text/plain"), 422, "VALIDATION_ERROR", "content_type"),
        ({"pipeline": "showcase", "options": {}}, 422, "VALIDATION_ERROR", "options.category"),
        ({"pipeline": "showcase", "options": {"category": "food"}, "photos": 5}, 422, "VALIDATION_ERROR", "photos"),
        (_enhance(options={"preset": "gold-rush"}), 400, "UNKNOWN_PRESET", "options.preset"),
        # the local runner's embedded engine has no Modal: GPU matting needs the Step Functions deployment
        (_enhance(options={"matting": "rvm"}), 400, "MATTING_PROVIDER_UNAVAILABLE", "options.matting"),
        (_enhance(webhook_url="ftp://example.com/x"), 400, "WEBHOOK_URL_INVALID", None),
        (_enhance(metadata={"k": "v" * 5000}), 422, "VALIDATION_ERROR", "metadata"),
    ],
)
def test_create_validation_names_the_field(
    client: httpx.Client, body: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    _error(client.post("/v1/videos", json=body), status, code, field)


def test_webhook_urls_to_private_addresses_are_refused_in_production(start_service: ServiceFactory) -> None:
    service = start_service(webhooks_allow_private=False)
    with httpx.Client(base_url=service.base_url, headers={"Authorization": f"Bearer {issue_key(service)}"}) as http:
        for url in ("http://example.com/hook", "https://127.0.0.1/hook", "https://169.254.169.254/latest"):
            response = http.post("/v1/videos", json=_enhance(webhook_url=url))
            assert response.status_code == 400, (url, response.text)
            assert response.json()["error"]["code"].startswith("WEBHOOK_URL_")


def test_showcase_gets_one_upload_per_photo(client: httpx.Client) -> None:
    body = {"pipeline": "showcase", "options": {"category": "skincare"}, "photos": 3, "content_type": "image/png"}
    created = client.post("/v1/videos", json=body).json()
    assert [u["url"].split("?")[0].rsplit("/", 1)[1] for u in created["uploads"]] == [
        "photo00.png", "photo01.png", "photo02.png"
    ]
    assert created["upload"] == created["uploads"][0]


def test_auth_is_required_and_tenants_are_isolated(client: httpx.Client, service: LocalService) -> None:
    task_id = client.post("/v1/videos", json=_enhance()).json()["task_id"]
    with httpx.Client(base_url=service.base_url) as anonymous:
        response = anonymous.get(f"/v1/videos/{task_id}")
        _error(response, 401, "UNAUTHORIZED")
        assert response.headers["www-authenticate"] == "Bearer"
        _error(anonymous.get("/v1/videos", headers={"Authorization": "Bearer vlx_not-a-key"}), 401, "UNAUTHORIZED")
        _error(anonymous.get("/v1/videos", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "UNAUTHORIZED")
    other = {"Authorization": f"Bearer {issue_key(service, 'globex')}"}
    with httpx.Client(base_url=service.base_url, headers=other) as globex:
        _error(globex.get(f"/v1/videos/{task_id}"), 404, "NOT_FOUND")
        _error(globex.post(f"/v1/videos/{task_id}/cancel"), 404, "NOT_FOUND")
        _error(globex.post(f"/v1/videos/{task_id}/retry"), 404, "NOT_FOUND")
        assert globex.get("/v1/videos").json() == {"data": [], "next_cursor": None}
    _error(client.get("/v1/videos/tsk_unknown"), 404, "NOT_FOUND")


def test_polling_etag_304_and_retry_after(client: httpx.Client) -> None:
    task_id = client.post("/v1/videos", json=_enhance()).json()["task_id"]
    first = client.get(f"/v1/videos/{task_id}")
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and first.headers["retry-after"] == "5"
    again = client.get(f"/v1/videos/{task_id}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    client.post(f"/v1/videos/{task_id}/cancel")
    changed = client.get(f"/v1/videos/{task_id}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["status"] == "cancelled"
    assert "retry-after" not in changed.headers and changed.headers["etag"] != etag


def test_a_running_task_is_polled_from_its_journal(client: httpx.Client, service: LocalService) -> None:
    """Progress from the recorded states, an ETA from when its first stage run started; the poll's
    document is the one the listing shows (the poll reads on the event loop, the listing in a thread)."""
    assert service.services is not None
    tasks = service.services.runtime.tasks
    task_id = client.post("/v1/videos", json=_enhance(metadata={"k": "v"})).json()["task_id"]
    now = datetime.now(UTC)
    assert tasks.update_status_if(task_id, expected=[TaskStatus.AWAITING_UPLOAD], status=TaskStatus.RUNNING)
    journal = [("Probe#1", "Probe", "Task", {}), ("Job#1", "Job", "Pass", {"probe": {"Payload": {"chunks": [{}] * 3}}})]
    for position, name, kind, output in journal:
        tasks.record_transition(TransitionRecord(task_id=task_id, position=position, state_name=name,
                                                 state_type=kind, output=output, recorded_at=now))
    for started in (now - timedelta(seconds=40), now - timedelta(seconds=100)):  # the earliest one counts
        tasks.record_stage_run(StageReport(task_id=task_id, stage="probe", status=StageRunStatus.SUCCEEDED,
                                           started_at=started, ended_at=now, duration_seconds=1.0, input_hash="h"))

    polled = client.get(f"/v1/videos/{task_id}")
    status = polled.json()
    assert status["status"] == "running" and status["progress"] == pytest.approx(1 / 10)
    assert status["eta_seconds"] == pytest.approx(100 * 9, rel=0.05) and polled.headers["retry-after"] == "2"
    listed = client.get("/v1/videos").json()["data"][0]
    assert {**listed, "eta_seconds": None} == {**status, "eta_seconds": None}
    assert client.get(f"/v1/videos/{task_id}", headers={"If-None-Match": polled.headers["etag"]}).status_code == 304

    tasks.record_transition(TransitionRecord(task_id=task_id, position="Prepare#1/b0/LearnStyle#1",
                                             state_name="LearnStyle", state_type="Task", output={}, recorded_at=now))
    moved = client.get(f"/v1/videos/{task_id}", headers={"If-None-Match": polled.headers["etag"]})
    assert moved.status_code == 200 and moved.json()["progress"] == pytest.approx(2 / 10)  # the journal grew


def test_a_poll_is_one_query_until_the_journal_or_the_costs_change(
    client: httpx.Client, service: LocalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal and the cost summary are read again only when the poll's one query says they
    changed; a cost entry added, or a stage's entries replaced by none, shows in the next poll."""
    assert service.services is not None
    videos = service.services.videos
    costs, database, tasks = videos.costs, videos.videos.database, service.services.runtime.tasks
    assert costs is not None
    queries: list[str] = []
    read_async = database.read_async

    async def counted(plan: Any) -> Any:
        def count(request: Any) -> Any:
            queries.append(request[0])
            return request

        def counting() -> Any:  # the same plan, each query it asks for noted on its way to the database
            request = count(next(plan))
            while True:
                try:
                    request = count(plan.send((yield request)))
                except StopIteration as done:
                    return done.value

        return await read_async(counting())

    monkeypatch.setattr(database, "read_async", counted)
    task_id = client.post("/v1/videos", json=_enhance()).json()["task_id"]
    now = datetime.now(UTC)
    assert tasks.update_status_if(task_id, expected=[TaskStatus.AWAITING_UPLOAD], status=TaskStatus.RUNNING)
    tasks.record_transition(TransitionRecord(task_id=task_id, position="Probe#1", state_name="Probe",
                                             state_type="Task", output={}, recorded_at=now))

    def entry(stage: str, amount: float) -> CostEntry:
        return CostEntry(task_id=task_id, stage=stage, provider="aws_lambda", resource="cpu_seconds", quantity=1,
                         unit="s", unit_price_usd=amount, amount_usd=amount, price_version="t", recorded_at=now)

    def poll() -> tuple[int, dict[str, Any]]:
        queries.clear()
        document = client.get(f"/v1/videos/{task_id}").json()
        return len(queries), document["cost"]

    assert poll()[0] == 3  # the first: the video and its task, then the journal, then the costs
    count, cost = poll()
    assert count == 1 and cost["total_usd"] == 0.0
    costs.record([entry("probe", 0.25), entry("matte", 0.5)])
    count, cost = poll()
    assert count == 2 and cost["total_usd"] == pytest.approx(0.75)
    assert poll()[0] == 1
    costs.replace_stage(task_id, "probe", [])  # fewer entries, the same highest id
    count, cost = poll()
    assert count == 2 and cost["total_usd"] == pytest.approx(0.5) and set(cost["by_stage"]) == {"matte"}


def test_cancel_and_retry_answer_conflicts(client: httpx.Client) -> None:
    task_id = client.post("/v1/videos", json=_enhance()).json()["task_id"]
    _error(client.post(f"/v1/videos/{task_id}/retry"), 409, "TASK_NOT_FAILED")
    cancelled = client.post(f"/v1/videos/{task_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.post(f"/v1/videos/{task_id}/cancel").status_code == 200  # cancelling twice is fine


def test_list_pages_with_a_cursor_and_filters_by_status(client: httpx.Client) -> None:
    ids = [client.post("/v1/videos", json=_enhance()).json()["task_id"] for _ in range(5)]
    client.post(f"/v1/videos/{ids[1]}/cancel")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/videos", params=params).json()
        assert len(page["data"]) <= 2
        seen += [item["task_id"] for item in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    cancelled = client.get("/v1/videos", params={"status": "cancelled"}).json()
    assert [item["task_id"] for item in cancelled["data"]] == [ids[1]]
    _error(client.get("/v1/videos", params={"status": "nope"}), 422, "VALIDATION_ERROR", "status")
    _error(client.get("/v1/videos", params={"limit": 0}), 422, "VALIDATION_ERROR", "limit")
    _error(client.get("/v1/videos", params={"cursor": "garbage"}), 400, "INVALID_CURSOR", "cursor")


def test_uploads_are_refused_for_the_wrong_type_size_signature_or_state(
    client: httpx.Client, start_service: ServiceFactory
) -> None:
    upload = client.post("/v1/videos", json=_enhance()).json()["upload"]
    url = upload["url"]
    _error(httpx.put(url, content=b"x", headers={"Content-Type": "video/quicktime"}), 403, "BAD_SIGNATURE")
    _error(httpx.put(url.replace("max_bytes=2147483648", "max_bytes=9999999999"), content=b"x",
                     headers=upload["headers"]), 403, "BAD_SIGNATURE")
    _error(httpx.put(url.replace("/source.mp4", "/other.mp4"), content=b"x", headers=upload["headers"]),
           403, "BAD_SIGNATURE")
    _error(httpx.put(url, content=b"", headers=upload["headers"]), 400, "EMPTY_UPLOAD")


def test_upload_size_limit_is_enforced_while_streaming(start_service: ServiceFactory) -> None:
    service = start_service(upload_max_bytes=1000)
    with httpx.Client(base_url=service.base_url, headers={"Authorization": f"Bearer {issue_key(service)}"}) as http:
        created = http.post("/v1/videos", json=_enhance()).json()
        upload = created["upload"]
        assert upload["max_bytes"] == 1000
        _error(httpx.put(upload["url"], content=b"x" * 1001, headers=upload["headers"]), 413, "PAYLOAD_TOO_LARGE")

        def chunks() -> Any:  # no Content-Length: counted as it streams
            for _ in range(5):
                yield b"y" * 300

        try:
            response = httpx.put(upload["url"], content=chunks(), headers=upload["headers"])
        except httpx.TransportError:
            pass  # the server may close the connection while the client is still sending
        else:
            _error(response, 413, "PAYLOAD_TOO_LARGE")
        assert http.get(f"/v1/videos/{created['task_id']}").json()["status"] == "awaiting_upload"
        assert service.services is not None and service.services.local_objects is not None
        staging = service.services.local_objects.root / ".staging~"
        assert not any(staging.iterdir())  # nothing left behind


def test_expired_upload_url_is_refused(start_service: ServiceFactory) -> None:
    service = start_service(upload_expires_seconds=1)
    with httpx.Client(base_url=service.base_url, headers={"Authorization": f"Bearer {issue_key(service)}"}) as http:
        upload = http.post("/v1/videos", json=_enhance()).json()["upload"]
    import time

    time.sleep(1.1)
    _error(httpx.put(upload["url"], content=b"x", headers=upload["headers"]), 403, "URL_EXPIRED")


def test_a_cancelled_task_takes_no_upload(client: httpx.Client) -> None:
    created = client.post("/v1/videos", json=_enhance()).json()
    client.post(f"/v1/videos/{created['task_id']}/cancel")
    upload = created["upload"]
    _error(httpx.put(upload["url"], content=b"data", headers=upload["headers"]), 409, "UPLOAD_CLOSED")


def test_webhook_secret_and_rotation(client: httpx.Client, service: LocalService) -> None:
    first = client.get("/v1/webhooks/secret").json()
    assert first["secret"].startswith("whsec_") and len(first["secrets"]) == 1
    assert first["secrets"][0]["expires_at"] is None
    rotated = client.post("/v1/webhooks/secret/rotate").json()
    assert rotated["secret"] != first["secret"]
    assert [s["secret"] for s in rotated["secrets"]] == [rotated["secret"], first["secret"]]
    assert rotated["secrets"][1]["expires_at"] is not None
    assert service.services is not None
    tenant = service.services.tenants.authenticate(client.headers["authorization"].split()[1])
    assert tenant is not None
    assert service.services.tenants.signing_secrets(tenant.tenant_id) == [rotated["secret"], first["secret"]]


def test_health_and_readiness(service: LocalService) -> None:
    assert httpx.get(f"{service.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{service.base_url}/readyz").json()
    assert ready == {"status": "ok", "checks": {"task_store": "ok", "object_store": "ok", "cache": "ok"}}


def test_not_ready_when_the_database_is_gone(service: LocalService) -> None:
    assert service.services is not None
    service.services.database.close()
    response = httpx.get(f"{service.base_url}/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "NOT_READY"
    assert response.json()["checks"]["task_store"] != "ok"


def test_every_error_has_the_one_shape(client: httpx.Client) -> None:
    _error(client.get("/v1/nothing-here"), 404, "NOT_FOUND")
    _error(client.delete("/v1/videos"), 405, "METHOD_NOT_ALLOWED")
    _error(client.post("/v1/videos", content=b"{not json", headers={"Content-Type": "application/json"}),
           422, "VALIDATION_ERROR")
    _error(client.post("/v1/videos", json=_enhance(metadata={"k": "v" * 70_000})), 413, "PAYLOAD_TOO_LARGE")

    def chunked() -> Any:  # no Content-Length: counted as it arrives
        yield b'{"pipeline": "enhance", "metadata": {"k": "'
        for _ in range(80):
            yield b"v" * 1000
        yield b'"}}'

    response = client.post("/v1/videos", content=chunked(), headers={"Content-Type": "application/json"})
    _error(response, 413, "PAYLOAD_TOO_LARGE")


def test_cors_preflight_for_the_configured_origin(start_service: ServiceFactory) -> None:
    service = start_service(cors_origins=["https://app.example.com"])
    preflight = httpx.options(
        f"{service.base_url}/v1/videos",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    response = httpx.get(f"{service.base_url}/healthz", headers={"Origin": "https://app.example.com"})
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "etag" in response.headers.get("access-control-expose-headers", "").lower()
    other = httpx.get(f"{service.base_url}/healthz", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers


def test_a_large_upload_streams_to_the_store_intact(client: httpx.Client, service: LocalService) -> None:
    import hashlib
    import os

    data = os.urandom(6 * 1024 * 1024 + 123)
    created = client.post("/v1/videos", json=_enhance()).json()
    upload = created["upload"]

    def chunks() -> Any:
        for start in range(0, len(data), 100_000):
            yield data[start : start + 100_000]

    response = httpx.put(upload["url"], content=chunks(), headers=upload["headers"], timeout=60)
    assert response.status_code == 201 and response.json()["size"] == len(data)
    assert service.services is not None
    key = response.json()["key"]
    assert hashlib.sha256(service.services.runtime.objects.get_bytes(key)).digest() == hashlib.sha256(data).digest()
    assert client.get(f"/v1/videos/{created['task_id']}").json()["status"] != "awaiting_upload"  # the event fired


REMOTION = {
    "renderer": "remotion", "remotion_function_name": "remotion-render-4-0-529-mem2048mb-disk2048mb-120sec",
    "remotion_serve_url": "https://remotionlambda-useast1-abcdefgh.s3.us-east-1.amazonaws.com/sites/vidluxe/index.html",
    "remotion_region": "us-east-1",
}


def _remotion_service(settings: Settings) -> LocalService:
    service = LocalService(settings, ServiceSettings(webhooks_allow_private=True, runner_workers=1), port=0)
    service.__enter__()
    service.start_in_thread()
    return service


def test_the_renderer_setting_reaches_tasks_created_over_http(
    settings: Settings, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = f"vidluxe-api-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    s3 = {"object_store": "s3", "s3_bucket": bucket, "s3_endpoint_url": moto_endpoint, "s3_region": "us-east-1"}
    service = _remotion_service(settings.model_copy(update={**REMOTION, **s3}))
    try:
        headers = {"Authorization": f"Bearer {issue_key(service)}"}
        with httpx.Client(base_url=service.base_url, headers=headers, timeout=30) as http:
            created = http.post("/v1/videos", json=_enhance())
            assert created.status_code == 201, created.text
        assert service.services is not None
        task = service.services.runtime.tasks.get_task(created.json()["task_id"])
        assert task.input["renderer"] == "remotion"
    finally:
        service.close()


def test_a_renderer_that_cannot_run_is_refused_before_a_task_exists(settings: Settings) -> None:
    service = _remotion_service(settings.model_copy(update=REMOTION))  # local store: Remotion can fetch nothing
    try:
        headers = {"Authorization": f"Bearer {issue_key(service)}"}
        with httpx.Client(base_url=service.base_url, headers=headers, timeout=30) as http:
            _error(http.post("/v1/videos", json=_enhance()), 500, "REMOTION_NEEDS_S3")
            assert http.get("/v1/videos").json()["data"] == []
    finally:
        service.close()
