"""Tasks created and uploaded concurrently all complete, and each gets exactly one task.completed
delivery, although the receiver fails the first two attempts of every message.

The fast CI variant of benchmarks/service_e2e.py: 4 tiny clips on the in-process server, with the
retry schedule scaled down (VIDLUXE_WEBHOOKS_RETRY_SCALE) so that the 5 min step takes 0.6 s.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from service_helpers import FlakyReceiver, ServiceFactory, issue_key

from shared.media.ffmpeg import ffmpeg_exe
from shared.settings_service import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
TINY = {"preset": "luxury", "output": {"width": 180, "height": 320, "fps": 15}}
TASKS = 4


@pytest.fixture(scope="module")
def tiny_clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four different 1-second 180x320 cuts of the shipped sample."""
    folder = tmp_path_factory.mktemp("tiny")
    clips = []
    for index in range(TASKS):
        out = folder / f"tiny{index}.mp4"
        subprocess.run(
            [ffmpeg_exe(), "-loglevel", "error", "-y", "-ss", f"{index * 2.5}", "-i", str(ROOT / "samples" /
             "talking_head.mp4"), "-t", "1", "-an", "-vf", "scale=180:320", "-c:v", "libx264", "-preset",
             "ultrafast", "-crf", "28", str(out)],
            check=True,
        )
        clips.append(out)
    return clips


def _wait_for(condition: Callable[[], Any], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_retry_scale_is_a_service_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().webhooks_retry_scale == 1.0
    monkeypatch.setenv("VIDLUXE_WEBHOOKS_RETRY_SCALE", "0.01")
    assert ServiceSettings().webhooks_retry_scale == 0.01
    for wrong in ("0", "2"):
        monkeypatch.setenv("VIDLUXE_WEBHOOKS_RETRY_SCALE", wrong)
        with pytest.raises(ValidationError):
            ServiceSettings()


@pytest.mark.timeout(120)
def test_concurrent_tasks_complete_with_one_completed_delivery_each_despite_two_failed_attempts(
    start_service: ServiceFactory, tiny_clips: list[Path]
) -> None:
    service = start_service(webhooks_retry_scale=0.002, runner_workers=2)  # 5 s, 5 min: 0.01 s, 0.6 s
    headers = {"Authorization": f"Bearer {issue_key(service)}"}
    with httpx.Client(base_url=service.base_url, headers=headers, timeout=30) as http:
        receiver = FlakyReceiver(http.get("/v1/webhooks/secret").json()["secret"], fail_first=2)
        try:
            _run(http, receiver, tiny_clips)
        finally:
            receiver.close()


def _run(http: httpx.Client, receiver: FlakyReceiver, clips: list[Path]) -> None:
    def create_and_upload(clip: Path) -> str:
        created = http.post("/v1/videos", json={"pipeline": "enhance", "options": TINY, "webhook_url": receiver.url})
        assert created.status_code == 201, created.text
        target = created.json()["upload"]
        put = httpx.request(target["method"], target["url"], content=clip.read_bytes(), headers=target["headers"])
        assert put.status_code == 201, put.text
        return str(created.json()["task_id"])

    with ThreadPoolExecutor(len(clips)) as pool:
        task_ids = list(pool.map(create_and_upload, clips))

    def finished() -> list[dict[str, Any]] | None:
        statuses = [http.get(f"/v1/videos/{task_id}").json() for task_id in task_ids]
        return statuses if all(s["status"] in ("completed", "failed", "cancelled") for s in statuses) else None

    statuses = _wait_for(finished, "every task to finish", 90)
    assert [s["status"] for s in statuses] == ["completed"] * len(clips), statuses

    def settled() -> bool:
        completed = {event["data"]["task_id"] for _, event in receiver.accepted_of("task.completed")}
        pending = http.get("/v1/webhooks/deliveries", params={"status": "pending"}).json()["data"]
        return completed == set(task_ids) and not pending

    _wait_for(settled, "every message to be delivered", 60)
    time.sleep(0.3)  # a duplicate would arrive now, if one were sent

    assert receiver.invalid == 0
    completed = receiver.accepted_of("task.completed")
    assert Counter(event["data"]["task_id"] for _, event in completed) == Counter(task_ids)
    assert len({message_id for message_id, _ in completed}) == len(task_ids)
    assert set(Counter(message_id for message_id, _ in receiver.accepted).values()) == {1}  # no message twice
    assert set(receiver.attempts.values()) == {3}  # 503, 503, then accepted

    listed = http.get("/v1/webhooks/deliveries", params={"limit": 500}).json()
    assert listed["next_cursor"] is None
    assert {item["message_id"] for item in listed["data"]} == set(receiver.attempts)
    for item in listed["data"]:
        assert item["status"] == "delivered" and item["attempt_count"] == 3, item
        assert [attempt["status_code"] for attempt in item["attempts"]] == [503, 503, 204], item
