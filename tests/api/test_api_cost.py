"""Per-video cost on a real server: after a real small run, GET /v1/videos/{id} and the task.completed
webhook carry {total_usd, by_stage} from the cost ledger, and the figures are the ledger's entries."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from service_helpers import FlakyReceiver

from shared.cli.serve import LocalService

SMALL = {"preset": "luxury", "output": {"width": 360, "height": 640, "fps": 15}}
STAGES = {"probe", "learn_style", "generate_assets", "matte", "plan_composition", "render_chunk", "assemble",
          "finalize", "delivery"}


def test_a_finished_video_reports_what_it_cost(service: LocalService, client: httpx.Client, clip: Path) -> None:
    assert service.services is not None and service.services.runtime.costs is not None
    receiver = FlakyReceiver(client.get("/v1/webhooks/secret").json()["secret"])
    try:
        created = client.post("/v1/videos", json={"pipeline": "enhance", "options": SMALL,
                                                  "webhook_url": receiver.url}).json()
        task_id = created["task_id"]
        target = created["upload"]
        put = httpx.request(target["method"], target["url"], content=clip.read_bytes(), headers=target["headers"])
        assert put.status_code == 201, put.text

        deadline = time.monotonic() + 120
        while (status := client.get(f"/v1/videos/{task_id}").json())["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        assert status["status"] == "completed", status

        cost = status["cost"]
        assert set(cost) == {"total_usd", "by_stage", "price_versions"}
        assert set(cost["by_stage"]) == STAGES and cost["price_versions"] == ["2026-11"]
        assert cost["total_usd"] == pytest.approx(sum(cost["by_stage"].values()), abs=1e-5)
        entries = service.services.runtime.costs.store.entries(task_id)
        assert cost["total_usd"] == pytest.approx(sum(e.amount_usd for e in entries), abs=1e-6)
        # Each stage run is a Lambda request and a state transition; its CPU time is priced as Lambda time.
        runs = service.services.runtime.tasks.list_stage_runs(task_id)
        assert sum(e.quantity for e in entries if e.resource == "lambda_requests") == len(runs)
        cpu = sum(e.quantity for e in entries if e.resource == "cpu_seconds")
        assert cpu == pytest.approx(sum(r.usage.cpu_seconds for r in runs), rel=1e-6) and cpu > 0
        assert 0 < cost["total_usd"] < 0.05  # a 1.5 s clip at 360x640: cents at most

        # The task.completed webhook carries the same figures.
        deadline = time.monotonic() + 30
        while not receiver.accepted_of("task.completed"):
            assert time.monotonic() < deadline, "no task.completed delivery"
            time.sleep(0.05)
        ((_, completed),) = receiver.accepted_of("task.completed")
        assert completed["data"]["cost"] == cost
    finally:
        receiver.close()
