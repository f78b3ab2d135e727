"""``vidluxe serve --api-processes N``: the API in N child processes, executions in the serving one.

The pipe between them (:mod:`shared.service.api_processes`) is tested on its own; then a real
``vidluxe serve --api-processes 2`` runs an upload to completion and a cancel, and stops with no
process left behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.errors import NotFoundError
from shared.service.api_processes import ExecutionRequests, ForwardedExecutions
from shared.storage.tasks import TaskRecord

SMALL = {"preset": "luxury", "output": {"width": 360, "height": 640, "fps": 15}}


class _Runner:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def start(self, task: TaskRecord) -> bool:
        self.calls.append(("start", task.task_id))
        return True

    def stop(self, task_id: str) -> None:
        self.calls.append(("stop", task_id))


class _Tasks:
    def get_task(self, task_id: str) -> TaskRecord:
        if task_id != "tsk_known":
            raise NotFoundError(f"No task {task_id!r}.")
        return TaskRecord(task_id=task_id, pipeline="enhance", created_at=_NOW, updated_at=_NOW)


_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_forwarded_starts_and_stops_reach_the_runner_in_order() -> None:
    read_fd, write_fd = os.pipe()
    runner = _Runner()
    requests = ExecutionRequests(read_fd, runner, _Tasks())  # type: ignore[arg-type]
    requests.start()
    forwarded = ForwardedExecutions(write_fd)
    known = TaskRecord(task_id="tsk_known", pipeline="enhance", created_at=_NOW, updated_at=_NOW)
    unknown = known.model_copy(update={"task_id": "tsk_gone"})
    assert forwarded.start(known) is True
    forwarded.stop("tsk_known")
    forwarded.start(unknown)  # logged and dropped by the reader: no such task
    os.write(write_fd, b"reboot everything\n")  # not a request: dropped
    forwarded.start(known)
    os.close(write_fd)
    requests.join(timeout=5)
    assert runner.calls == [("start", "tsk_known"), ("stop", "tsk_known"), ("start", "tsk_known")]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _wait_status(http: httpx.Client, task_id: str, wanted: set[str], timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: dict[str, Any] = http.get(f"/v1/videos/{task_id}").json()
        if status["status"] in wanted:
            return status
        time.sleep(0.2)
    raise AssertionError(f"{task_id} never reached {wanted}: {status}")


def _upload(created: dict[str, Any], clip: Path) -> httpx.Response:
    target = created["upload"]
    return httpx.request(target["method"], target["url"], content=clip.read_bytes(), headers=target["headers"])


@pytest.mark.timeout(420)
def test_serve_with_two_api_processes_runs_uploads_and_cancels(tmp_path: Path, clip: Path) -> None:
    env = {**os.environ, "VIDLUXE_HOME": str(tmp_path / "home"), "VIDLUXE_TASK_STORE": "sqlite"}
    env.pop("VIDLUXE_DATABASE_URL", None)
    keys = subprocess.run(
        [sys.executable, "-m", "shared.cli", "keys", "create", "--tenant", "acme", "--json"],
        env=env, capture_output=True, text=True, check=True,
    )
    api_key = json.loads(keys.stdout)["api_key"]
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "serve", "--port", str(port), "--api-processes", "2"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200 and len(_children(server.pid)) == 2:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        api_pids = _children(server.pid)
        assert len(api_pids) == 2, (tmp_path / "serve.log").read_text()[-3000:]
        # A second server on the port is refused, as a plain bind would be (SO_REUSEPORT would let it in).
        second = subprocess.run(
            [sys.executable, "-m", "shared.cli", "serve", "--port", str(port), "--api-processes", "2"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert second.returncode != 0 and "ADDRESS_IN_USE" in second.stdout + second.stderr, second.stderr[-2000:]

        headers = {"Authorization": f"Bearer {api_key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            # Each request on a new connection: either child may take it, the runner is the parent's.
            done = http.post("/v1/videos", json={"pipeline": "enhance", "options": SMALL}).json()
            assert _upload(done, clip).status_code == 201
            completed = _wait_status(http, done["task_id"], {"completed", "failed", "cancelled"})
            assert completed["status"] == "completed", completed
            assert httpx.get(completed["outputs"]["final.mp4"]).content[4:8] == b"ftyp"

            # Cancelled while queued or running: the runner never starts it, or stops it at a state boundary.
            cancelled = http.post("/v1/videos", json={"pipeline": "enhance", "options": SMALL}).json()
            assert _upload(cancelled, clip).status_code == 201
            assert http.post(f"/v1/videos/{cancelled['task_id']}/cancel").status_code == 200
            final = _wait_status(http, cancelled["task_id"], {"cancelled", "completed", "failed"})
            assert final["status"] == "cancelled", final
    finally:
        server.send_signal(signal.SIGTERM)
        returncode = server.wait(timeout=60)
        log.close()
    assert returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]
    for pid in api_pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
