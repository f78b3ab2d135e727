"""Upload-and-forget end to end on a real server: create, PUT a real clip to the signed URL, the
object-created event starts the execution, poll to ``completed`` (ETag, progress), download the
outputs from their signed URLs, receive the signed webhooks. Then cancel and retry on real runs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from shared.cli.serve import LocalService
from shared.errors import MediaError
from shared.pipeline.runtime import ProgressEvent, ProgressKind
from shared.storage.tasks import StageRunStatus

SMALL = {"preset": "luxury", "output": {"width": 360, "height": 640, "fps": 30}}


class Receiver:
    """A webhook endpoint on loopback that records every delivery (and answers 204)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, secret: str) -> list[dict[str, Any]]:
        """Every delivery, verified with the reference Standard Webhooks library."""
        verifier = Webhook(secret)
        return [dict(verifier.verify(body, headers)) for headers, body in self.deliveries]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    yield hooks
    hooks.close()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def upload(created: dict[str, Any], path: Path) -> httpx.Response:
    target = created["upload"]
    with path.open("rb") as handle:
        return httpx.request(target["method"], target["url"], content=handle, headers=target["headers"], timeout=60)


def test_upload_and_forget_end_to_end(
    service: LocalService, client: httpx.Client, clip: Path, receiver: Receiver
) -> None:
    created = client.post(
        "/v1/videos", json={"pipeline": "enhance", "options": SMALL, "webhook_url": receiver.url,
                            "metadata": {"order": "A-1"}},
    ).json()
    task_id = created["task_id"]
    put = upload(created, clip)
    assert put.status_code == 201, put.text
    assert put.json()["size"] == clip.stat().st_size

    # Poll like a browser: If-None-Match, Retry-After; progress never goes back.
    etag, progress, seen = None, 0.0, set()
    for _ in range(1200):
        response = client.get(f"/v1/videos/{task_id}", headers={"If-None-Match": etag} if etag else {})
        if response.status_code == 304:
            time.sleep(0.1)
            continue
        status = response.json()
        etag = response.headers["etag"]
        seen.add(status["status"])
        assert status["progress"] >= progress
        progress = status["progress"]
        if status["status"] not in ("queued", "running", "awaiting_upload"):
            break
        assert response.headers["retry-after"] in ("2", "5")
        time.sleep(0.1)
    assert status["status"] == "completed", status
    assert status["progress"] == 1.0 and status["error"] is None and status["eta_seconds"] is None
    assert "running" in seen or "queued" in seen
    assert set(status["outputs"]) >= {"final.mp4", "comparison.jpg", "assets.zip"}

    final = httpx.get(status["outputs"]["final.mp4"])
    assert final.status_code == 200 and final.content[4:8] == b"ftyp"
    assert final.headers["content-type"] == "video/mp4"
    assert 'filename="final.mp4"' in final.headers["content-disposition"]
    jpeg = httpx.get(status["outputs"]["comparison.jpg"])
    assert jpeg.status_code == 200 and jpeg.content[:2] == b"\xff\xd8"
    tampered = status["outputs"]["final.mp4"].replace("final.mp4", "x.mp4")
    assert httpx.get(tampered).status_code == 403

    # A duplicate object-created event (S3 delivers at least once) starts nothing.
    assert service.services is not None
    runs_before = service.services.runtime.tasks.list_stage_runs(task_id)
    key = created["upload"]["url"].split("/v1/uploads/")[1].split("?")[0]
    assert service.services.videos.upload_landed(key) is False
    assert service.services.runtime.tasks.list_stage_runs(task_id) == runs_before
    assert [r.stage for r in runs_before].count("probe") == 1

    # Webhooks: signed with the tenant's secret, verified by the reference library.
    secret = client.get("/v1/webhooks/secret").json()["secret"]
    wait_for(lambda: any(b"task.completed" in body for _, body in receiver.deliveries), "task.completed", 30)
    events = receiver.events(secret)
    types = [event["type"] for event in events]
    # delivered concurrently: in any order
    assert {"task.created", "task.started"} <= set(types) and types.count("task.completed") == 1
    assert "task.stage_completed" in types
    completed = next(event for event in events if event["type"] == "task.completed")
    assert completed["data"]["task_id"] == task_id and completed["data"]["metadata"] == {"order": "A-1"}
    assert set(completed["data"]["outputs"]) == set(status["outputs"])


def _run_until(service: LocalService, client: httpx.Client, task_id: str, statuses: set[str]) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status: dict[str, Any] = client.get(f"/v1/videos/{task_id}").json()
        return status if status["status"] in statuses else None

    result: dict[str, Any] = wait_for(done, f"task {task_id} to reach {statuses}")
    assert service.runner is not None
    wait_for(lambda: not service.runner.is_active(task_id), "the runner to let go of the task", 30)  # type: ignore[union-attr]
    return result


def test_cancel_stops_a_running_execution_between_states(
    service: LocalService, client: httpx.Client, clip: Path
) -> None:
    assert service.services is not None
    services = service.services
    created = client.post("/v1/videos", json={"pipeline": "enhance", "options": SMALL}).json()
    task_id = created["task_id"]
    tenant_id = services.videos.videos.get(task_id).tenant_id
    forward = services.runtime.on_progress

    def cancel_after_probe(event: ProgressEvent) -> None:
        forward(event)
        if event.task_id == task_id and event.stage == "probe" and event.kind == ProgressKind.FINISHED:
            services.videos.cancel(tenant_id, task_id)  # what POST /cancel does, at a known moment

    services.runtime.on_progress = cancel_after_probe
    assert upload(created, clip).status_code == 201
    status = _run_until(service, client, task_id, {"cancelled", "completed", "failed"})
    assert status["status"] == "cancelled", status
    assert [run.stage for run in services.runtime.tasks.list_stage_runs(task_id)] == ["probe"]
    assert [t.state_name for t in services.runtime.tasks.list_transitions(task_id)] == ["Probe"]
    assert services.runtime.tasks.get_task(task_id).status.value == "cancelled"


def test_retry_reruns_a_failed_task_from_its_failed_stage(
    service: LocalService, client: httpx.Client, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert service.services is not None
    services = service.services
    objects = services.runtime.objects
    real_put_bytes = objects.put_bytes
    failures = [1]

    def failing_put_bytes(key: str, data: bytes, content_type: str | None = None) -> None:
        if "/finalize/" in key and key.endswith("output.json") and failures:
            failures.pop()
            raise MediaError("The disk hiccuped while finalizing (injected).", code="INJECTED_FAILURE")
        real_put_bytes(key, data, content_type)

    monkeypatch.setattr(objects, "put_bytes", failing_put_bytes)
    created = client.post("/v1/videos", json={"pipeline": "enhance", "options": SMALL}).json()
    task_id = created["task_id"]
    assert upload(created, clip).status_code == 201
    failed = _run_until(service, client, task_id, {"failed", "completed"})
    assert failed["status"] == "failed" and failed["error"]["code"] == "INJECTED_FAILURE", failed
    assert failed["stage"] == "Finalize" and 0 < failed["progress"] < 1

    retried = client.post(f"/v1/videos/{task_id}/retry")
    assert retried.status_code == 202 and retried.json()["status"] in ("queued", "running", "completed")
    done = _run_until(service, client, task_id, {"completed", "failed"})
    assert done["status"] == "completed", done
    runs = services.runtime.tasks.list_stage_runs(task_id)
    by_stage: dict[str, list[StageRunStatus]] = {}
    for run in runs:
        by_stage.setdefault(run.stage, []).append(run.status)
    assert by_stage["finalize"] == [StageRunStatus.FAILED, StageRunStatus.SUCCEEDED]
    for stage in ("probe", "learn_style", "generate_assets", "plan_composition", "render_chunk", "assemble"):
        assert len(by_stage[stage]) == 1, (stage, by_stage)  # replayed from the journal, not run again
    assert json.loads(json.dumps(done["outputs"]))
