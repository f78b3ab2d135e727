"""The service's small parts: the progress estimate (pure), the poll's serialisation, local URL
signatures, ``vidluxe keys create``, and the runner picking up unfinished tasks when the server starts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

import state_machines
from shared.api import routes_videos
from shared.cli import main
from shared.cli.serve import LocalService
from shared.errors import PermissionDeniedError
from shared.service.models import TaskCost, VideoStatus
from shared.service.progress import estimate_progress
from shared.settings import Settings
from shared.settings_service import ServiceSettings
from shared.storage.presign import LocalPresigner, UrlSigner
from shared.storage.tasks import TaskRecord, TaskStatus, TransitionRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ENHANCE = state_machines.definition("enhance")
CHUNKS_3 = {"probe": {"Payload": {"chunks": [{}, {}, {}]}}}


def _t(position: str, state_type: str = "Task", output: Any = None) -> TransitionRecord:
    return TransitionRecord(
        task_id="t", position=position, state_name=position.rsplit("/", 1)[-1].split("#")[0],
        state_type=state_type, output=output, recorded_at=T0,
    )


# Enhance's Task work: Probe 1, Prepare 4 (LearnStyle, GenerateAssets, PlanComposition, MatteFirstChunk),
# Chunks 1 per chunk (a render: chunk 0 with the stored matte, the others matting inline), Assemble 1,
# Finalize 1: with 3 chunks, 10 in all.
@pytest.mark.parametrize(
    ("transitions", "expected"),
    [
        ([], 0.0),
        ([_t("Probe#1")], 1 / 8),  # chunk count not known yet: the Map counts as one item
        ([_t("Probe#1"), _t("Job#1", "Pass", CHUNKS_3)], 1 / 10),
        ([_t("Probe#1"), _t("Job#1", "Pass", CHUNKS_3), _t("Prepare#1/b0/LearnStyle#1"),
          _t("Prepare#1/b1/MatteFirstChunk#1")], 3 / 10),
        ([_t("Probe#1"), _t("Job#1", "Pass", CHUNKS_3), _t("Prepare#1", "Parallel", CHUNKS_3),
          _t("Chunks#1/i0/RenderWithStoredMatte#1"), _t("Chunks#1/i1/RenderChunk#1")], 7 / 10),
        ([_t("Probe#1"), _t("Job#1", "Pass", CHUNKS_3), _t("Prepare#1", "Parallel", CHUNKS_3),
          _t("Chunks#1", "Map"), _t("Assemble#1"), _t("Finalize#1")], 0.99),  # never 1 before it succeeded
    ],
)
def test_progress_counts_the_task_work_recorded(transitions: list[TransitionRecord], expected: float) -> None:
    assert estimate_progress(ENHANCE, transitions).fraction == pytest.approx(expected, abs=1e-4)


def test_eta_extrapolates_the_rate_so_far() -> None:
    transitions = [_t("Probe#1"), _t("Job#1", "Pass", CHUNKS_3), _t("Prepare#1", "Parallel", CHUNKS_3),
                   _t("Chunks#1/i0/RenderWithStoredMatte#1"), _t("Chunks#1/i1/RenderChunk#1")]
    progress = estimate_progress(ENHANCE, transitions, elapsed_seconds=70.0)
    assert progress.eta_seconds == pytest.approx(70 * (3 / 10) / (7 / 10), abs=0.1)
    assert estimate_progress(ENHANCE, [], elapsed_seconds=5.0).eta_seconds is None


@pytest.mark.parametrize("cost", [None, TaskCost(total_usd=0.25, by_stage={"probe": 0.25}, price_versions=["v"])])
def test_the_poll_serialises_the_document_the_other_routes_answer(cost: TaskCost | None) -> None:
    status = VideoStatus(
        task_id="tsk_1", pipeline="enhance", status="completed", stage="Finalize", progress=1.0, eta_seconds=None,
        outputs={"final.mp4": "http://x/final.mp4?sig=1"}, error=None, metadata={"é": 1, "a": [1.5, None]},
        webhook_url=None, upload_expires_at=None, cost=cost, created_at=T0, updated_at=T0 + timedelta(seconds=1),
    )
    assert json.loads(routes_videos._body(status)) == routes_videos._document(status)
    assert ("cost" in routes_videos._document(status)) == (cost is not None)  # no ledger: no made-up figures


def test_local_signatures_cover_method_key_expiry_type_and_size() -> None:
    signer = UrlSigner(b"k" * 32)
    expires = int((T0 + timedelta(minutes=15)).timestamp())
    good = signer.sign("PUT", "uploads/tsk_1/source.mp4", expires, content_type="video/mp4", max_bytes=100)
    signer.verify(good, "PUT", "uploads/tsk_1/source.mp4", expires, now=T0, content_type="video/mp4", max_bytes=100)
    for changed in (
        {"method": "GET"}, {"key": "uploads/tsk_2/source.mp4"}, {"expires": expires + 1},
        {"content_type": "video/webm"}, {"max_bytes": 101},
    ):
        values: dict[str, Any] = {"method": "PUT", "key": "uploads/tsk_1/source.mp4", "expires": expires,
                                  "content_type": "video/mp4", "max_bytes": 100, **changed}
        with pytest.raises(PermissionDeniedError) as caught:
            signer.verify(good, values.pop("method"), values.pop("key"), values.pop("expires"), now=T0, **values)
        assert caught.value.code == "BAD_SIGNATURE"
    with pytest.raises(PermissionDeniedError) as late:
        signer.verify(good, "PUT", "uploads/tsk_1/source.mp4", expires, now=T0 + timedelta(minutes=15),
                      content_type="video/mp4", max_bytes=100)
    assert late.value.code == "URL_EXPIRED"
    with pytest.raises(ValueError):
        UrlSigner(b"short")
    target = LocalPresigner(signer, "http://127.0.0.1:8000/").upload(
        "uploads/tsk_1/source.mp4", content_type="video/mp4", max_bytes=100, expires_at=T0
    )
    assert target.url.startswith("http://127.0.0.1:8000/v1/uploads/uploads/tsk_1/source.mp4?expires=")


def test_keys_create_prints_the_key_and_secret_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIDLUXE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIDLUXE_TASK_STORE", "sqlite")
    monkeypatch.setattr(structlog, "configure", lambda **kwargs: None)  # keep logging off capsys's stream
    assert main(["keys", "create", "--tenant", "acme", "--json"]) == 0
    issued = json.loads(capsys.readouterr().out)
    assert issued["api_key"].startswith("vlx_") and issued["webhook_secret"].startswith("whsec_")
    assert issued["key_prefix"] == issued["api_key"][:12] and issued["tenant"] == "acme"
    assert main(["keys", "create", "--tenant", "acme"]) == 0
    text = capsys.readouterr().out
    assert issued["tenant_id"] in text and issued["webhook_secret"] in text and issued["api_key"] not in text
    database = (tmp_path / "home" / "tasks.sqlite3").read_bytes()
    assert issued["api_key"].encode() not in database  # only its hash is kept


def test_serve_picks_up_unfinished_tasks_on_start(tmp_path: Path) -> None:
    """A task left queued (the server stopped after its upload) runs when the server starts again."""
    settings = Settings(home=tmp_path / "home", task_store="sqlite", max_workers=1)
    service_settings = ServiceSettings(runner_workers=1, webhooks_allow_private=True)
    with LocalService(settings, service_settings, port=0, deliver_webhooks=False) as first:
        assert first.services is not None and first.runner is not None
        first.runner.shutdown()  # as if the server stopped right after the upload landed
        first.services.runtime.objects.put_bytes("tasks/tsk_left/input/source.mp4", b"not a video at all")
        now = first.services.runtime.clock.now()
        first.services.runtime.tasks.create_task(TaskRecord(
            task_id="tsk_left", pipeline="enhance", status=TaskStatus.PENDING, created_at=now, updated_at=now,
            input={"source_key": "tasks/tsk_left/input/source.mp4", "source_name": "upload.mp4", "preset": None,
                   "title": None, "subtitle": None, "quotes": [], "output": {"width": 360, "height": 640, "fps": 30},
                   "grade": None, "grade_intensity": 0.6, "person_scale": 0.88, "matte_scale": 0.5,
                   "square": False, "gif": False, "max_duration_seconds": 600.0, "keyframe_interval": 5,
                   "chunk_seconds": 5.0, "reference_key": None, "delivery": {}},
        ))
    with LocalService(settings, service_settings, port=0, deliver_webhooks=False) as second:
        assert second.runner is not None and second.services is not None
        second.runner.wait("tsk_left", timeout=60)
        task = second.services.runtime.tasks.get_task("tsk_left")
    assert task.status == TaskStatus.FAILED and task.error_code == "INPUT_NOT_VIDEO", task


@pytest.mark.parametrize("access_log", [False, True])
def test_the_access_log_is_off_unless_asked_for(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], access_log: bool
) -> None:
    import httpx

    settings = Settings(home=tmp_path / "home", task_store="sqlite", max_workers=1)
    with LocalService(settings, ServiceSettings(runner_workers=1), port=0, deliver_webhooks=False,
                      log_level="info", access_log=access_log) as service:
        service.start_in_thread()
        assert httpx.get(f"{service.base_url}/healthz").status_code == 200
    out, err = capfd.readouterr()
    assert ('"GET /healthz HTTP/1.1" 200' in out + err) == access_log, out + err


def test_responses_do_not_wait_for_delayed_acks(service: LocalService) -> None:
    """Regression: the listening socket was made with proto 0, so asyncio left TCP_NODELAY off and every
    response with a body (headers and body are two writes) took ~40 ms on loopback."""
    import http.client
    import statistics
    import time

    host, port = service.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    timings = []
    for _ in range(30):
        started = time.perf_counter()
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert response.read() == b'{"status":"ok"}'
        timings.append(time.perf_counter() - started)
    connection.close()
    assert statistics.median(timings[5:]) < 0.02, timings


class _SteppedClock:
    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


class _CountingPresigner:
    def __init__(self) -> None:
        self.calls = 0

    def download(self, key: str, *, expires_at: datetime, filename: str | None = None) -> str:
        self.calls += 1
        return f"http://files/{key}?expires={int(expires_at.timestamp())}&n={self.calls}"


def test_outputs_are_signed_once_per_expiry_window(tmp_path: Path) -> None:
    """A finished task polled over and over gets the same links until the window turns, then new ones;
    new deliverables are signed at once."""
    clock = _SteppedClock(T0)
    window = 900
    service = LocalService(
        Settings(home=tmp_path / "home"), ServiceSettings(download_expires_seconds=window), port=0, clock=clock
    )
    with service:
        assert service.services is not None
        videos = service.services.videos
        presigner = _CountingPresigner()
        videos.presigner = presigner  # type: ignore[assignment]
        task = TaskRecord(
            task_id="tsk_a", pipeline="enhance", status=TaskStatus.SUCCEEDED,
            output={"final_key": "tasks/tsk_a/final.mp4", "comparison_key": "tasks/tsk_a/c.jpg"},
            created_at=T0, updated_at=T0,
        )
        first = videos.output_urls(task)
        assert set(first) == {"final.mp4", "comparison.jpg"} and presigner.calls == 2
        clock.sleep(window - 1)
        assert videos.output_urls(task) == first and presigner.calls == 2
        clock.sleep(1)  # the next window: links that expire one window later
        second = videos.output_urls(task)
        assert second != first and presigner.calls == 4
        grown = task.model_copy(update={"output": {**(task.output or {}), "gif_key": "tasks/tsk_a/p.gif"}})
        assert set(videos.output_urls(grown)) == {"final.mp4", "comparison.jpg", "preview.gif"}
        assert presigner.calls == 7
