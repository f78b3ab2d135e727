"""The service's use cases, without HTTP: create a video, report its status, list, cancel, retry, and
start a task when its upload lands.

Every method takes the tenant's id and sees only that tenant's tasks: another tenant's task id raises
NotFoundError, exactly like an unknown one. The HTTP routes (:mod:`shared.api`) and the upload-trigger
Lambda are thin adapters over this class.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import structlog

import state_machines
from shared.errors import ConflictError, InvalidInputError, NotFoundError
from shared.pipeline import enhance, showcase
from shared.pipeline.execution import new_task_id
from shared.pipeline.report import DELIVERABLES
from shared.pipeline.runtime import ProgressEvent, ProgressKind, Runtime
from shared.service.executions import Executions
from shared.service.models import (
    IMAGE_CONTENT_TYPES,
    VIDEO_CONTENT_TYPES,
    CreateEnhanceVideo,
    CreateShowcaseVideo,
    ErrorInfo,
    TaskCost,
    VideoCreated,
    VideoList,
    VideoStatus,
    api_status,
)
from shared.service.progress import progress_at, recorded_fraction
from shared.settings import Renderer
from shared.storage.costs import CostStore, CostSummary
from shared.storage.presign import Presigner, UploadTarget
from shared.storage.sql import ReadPlan
from shared.storage.sql_tasks import SqlTaskStore
from shared.storage.tasks import TaskRecord, TaskStatus
from shared.storage.tenants import TenantStore
from shared.storage.videos import VideoRecord, VideoStore
from web_hooks.events import (
    EventType,
    TaskEventSink,
    task_completed_data,
    task_created_data,
    task_failed_data,
    task_stage_completed_data,
    task_started_data,
)

log = structlog.get_logger("vidluxe.service")

UPLOAD_PREFIX = "uploads/"
V = TypeVar("V")

_UNFINISHED = (TaskStatus.AWAITING_UPLOAD, TaskStatus.PENDING, TaskStatus.RUNNING)

WebhookUrlCheck = Callable[[str], object]
"""Raises an InvalidInputError for a webhook URL that may not be used (SSRF checks)."""


class NullEventSink:
    """Reports nowhere (a service without webhook delivery)."""

    def emit(
        self,
        tenant_id: str,
        task_id: str,
        webhook_url: str | None,
        event_type: EventType,
        data: Any,
        *,
        dedupe_key: str | None = None,
    ) -> None:
        return None


@dataclass(frozen=True)
class _Journal:
    """What the status needs of a task's journal: a function of the journal alone, which only grows."""

    length: int  # transitions recorded (numbered 1..length)
    fraction: float  # recorded_fraction
    first_recorded_at: datetime | None


@dataclass(frozen=True)
class _Known:
    """What a poll's one query read beside the video and its task."""

    journal_length: int
    first_run_started: datetime | None
    cost_version: str | None  # CostStore.entries_version_scalar; None without a cost ledger


@dataclass(frozen=True)
class _StatusFacts:
    """What a status document is made of, read from the database in one plan."""

    video: VideoRecord
    task: TaskRecord
    journal: _Journal | None  # where the progress is estimated from it (running, or stopped short)
    first_run_started: datetime | None
    cost: CostSummary | None


_TASKS_KEPT = 10_000  # tasks whose journal summary, cost summary and signed URLs VideoService keeps


class _PerTask(Generic[V]):
    """The last value computed for each of the most recent tasks, shared by the event loop and the
    thread pool's routes (hence the lock); the oldest task is dropped first."""

    def __init__(self, size: int = _TASKS_KEPT) -> None:
        self._values: dict[str, V] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, task_id: str) -> V | None:
        return self._values.get(task_id)

    def put(self, task_id: str, value: V) -> None:
        with self._lock:
            self._values.pop(task_id, None)
            if len(self._values) >= self._size:
                self._values.pop(next(iter(self._values)))
            self._values[task_id] = value


@dataclass(frozen=True)
class _SignedOutputs:
    """A finished task's download links, valid until ``expires_at`` (signed once per expiry window:
    signing costs more than the rest of a poll)."""

    expires_at: datetime
    keys: tuple[tuple[str, str], ...]  # (object key, file name) of each deliverable
    urls: dict[str, str]


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    expires_seconds: int
    download_expires_seconds: int


def upload_key(task_id: str, name: str, content_type: str) -> str:
    suffix = VIDEO_CONTENT_TYPES.get(content_type) or IMAGE_CONTENT_TYPES.get(content_type) or ".bin"
    return f"{UPLOAD_PREFIX}{task_id}/{name}{suffix}"


def task_id_of_upload(key: str) -> str | None:
    """The task an upload key belongs to (``uploads/<task id>/<name>``), or None for another key."""
    if not key.startswith(UPLOAD_PREFIX):
        return None
    parts = key[len(UPLOAD_PREFIX) :].split("/")
    return parts[0] if len(parts) == 2 and parts[0].startswith("tsk_") else None


class VideoService:
    def __init__(
        self,
        runtime: Runtime,
        tenants: TenantStore,
        videos: VideoStore,
        presigner: Presigner,
        *,
        limits: UploadLimits,
        task_store: SqlTaskStore,
        costs: CostStore | None = None,
        executions: Executions | None = None,
        events: TaskEventSink | None = None,
        check_webhook_url: WebhookUrlCheck | None = None,
    ) -> None:
        """``task_store``: the SQL task store under ``runtime.tasks`` (which may wrap it), in the
        database of ``videos``, for the status document's reads; ``costs``: the cost ledger's entries
        (None: no costs in the documents). ``executions`` may be set later (:attr:`executions`), once
        the runner exists."""
        self.runtime = runtime
        self.tenants = tenants
        self.videos = videos
        self.presigner = presigner
        self.limits = limits
        self.executions = executions
        self.events: TaskEventSink = events or NullEventSink()
        self._check_webhook_url = check_webhook_url
        self._task_store = task_store
        self.costs = costs
        self._definitions: dict[str, dict[str, Any]] = {}
        # While a poller polls, a task's journal is read and parsed (outputs of tens of KB) only when
        # it grew, its cost summary only when its entries changed, and its outputs are signed once per
        # expiry window.
        self._journals: _PerTask[_Journal] = _PerTask()
        self._signed_outputs: _PerTask[_SignedOutputs] = _PerTask()
        self._costs: _PerTask[tuple[str | None, CostSummary]] = _PerTask()  # by the entries' version

    # ------------------------------------------------------------------------------------- create

    def create(
        self, tenant_id: str, request: CreateEnhanceVideo | CreateShowcaseVideo, *, idempotency_key: str | None = None
    ) -> tuple[VideoCreated, bool]:
        """Create a task awaiting its upload(s); (the answer, whether it was created now).

        With ``idempotency_key`` a repeated request returns the first one's task and upload targets.
        Raises InvalidInputError (UNKNOWN_PRESET, MATTING_PROVIDER_UNAVAILABLE: a GPU matting choice
        when tasks run on the embedded engine, a webhook URL error), ConflictError
        (IDEMPOTENCY_KEY_REUSED) when the key was used for a different request, ConfigurationError
        (REMOTION_NOT_CONFIGURED, REMOTION_NEEDS_S3) when VIDLUXE_RENDERER=remotion cannot run.
        """
        request_hash = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
        if idempotency_key is not None:
            existing = self.videos.find_by_idempotency_key(tenant_id, idempotency_key)
            if existing is not None:
                return self._created_answer(existing, request_hash), False
        renderer: Renderer = "ffmpeg"
        if isinstance(request, CreateEnhanceVideo):
            gpu = self.executions is not None and self.executions.runs_callback_tasks
            enhance.check_options(
                request.options, matting_available=enhance.LOCAL_MATTING | (enhance.GPU_MATTING if gpu else frozenset())
            )
            renderer = enhance.check_renderer(self.runtime.settings)
        if request.webhook_url is not None and self._check_webhook_url is not None:
            self._check_webhook_url(request.webhook_url)

        task_id = _task_id(tenant_id, idempotency_key)
        now = self.runtime.clock.now()
        if isinstance(request, CreateEnhanceVideo):
            keys = [upload_key(task_id, "source", request.content_type)]
            execution_input = enhance.execution_input(
                request.options, source_key=keys[0], source_name=request.filename or f"upload{keys[0][-4:]}",
                renderer=renderer,
            )
        else:
            keys = [upload_key(task_id, f"photo{i:02d}", request.content_type) for i in range(request.photos)]
            execution_input = showcase.execution_input(request.options, photo_keys=keys)
        self.runtime.tasks.create_task(
            TaskRecord(
                task_id=task_id,
                pipeline=request.pipeline,
                status=TaskStatus.AWAITING_UPLOAD,
                input=execution_input,
                created_at=now,
                updated_at=now,
            )
        )
        video, created = self.videos.create(
            VideoRecord(
                task_id=task_id,
                tenant_id=tenant_id,
                pipeline=request.pipeline,
                webhook_url=request.webhook_url,
                metadata=dict(request.metadata),
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                upload_keys=keys,
                content_type=request.content_type,
                max_bytes=self.limits.max_bytes,
                upload_expires_at=(now + timedelta(seconds=self.limits.expires_seconds)).replace(microsecond=0),
                created_at=now,
            )
        )
        if created:
            self.events.emit(
                tenant_id,
                task_id,
                video.webhook_url,
                EventType.TASK_CREATED,
                task_created_data(
                    task_id, pipeline=video.pipeline, status="awaiting_upload", created_at=now, metadata=video.metadata
                ),
                dedupe_key="created",
            )
        return self._created_answer(video, request_hash), created

    def _created_answer(self, video: VideoRecord, request_hash: str) -> VideoCreated:
        if video.request_hash != request_hash:
            raise ConflictError(
                "This Idempotency-Key was used for a different request; use a new key for a new video.",
                code="IDEMPOTENCY_KEY_REUSED",
            )
        task = self.runtime.tasks.get_task(video.task_id)
        targets = self.upload_targets(video)
        return VideoCreated(
            task_id=video.task_id,
            status=api_status(task.status),
            upload=targets[0],
            uploads=targets,
            created_at=video.created_at,
        )

    def upload_targets(self, video: VideoRecord) -> list[UploadTarget]:
        return [
            self.presigner.upload(
                key, content_type=video.content_type, max_bytes=video.max_bytes, expires_at=video.upload_expires_at
            )
            for key in video.upload_keys
        ]

    # ----------------------------------------------------------------------------- upload landed

    def check_upload_open(self, key: str) -> None:
        """Raises NotFoundError for a key that is no task's upload, ConflictError (UPLOAD_CLOSED) once the
        task no longer awaits its upload (a second upload would replace a file being processed)."""
        task_id = task_id_of_upload(key)
        video = self._video_or_none(task_id) if task_id is not None else None
        if video is None or key not in video.upload_keys:
            raise NotFoundError(f"No task waits for an upload under {key!r}.")
        task = self.runtime.tasks.get_task(video.task_id)
        if task.status != TaskStatus.AWAITING_UPLOAD:
            raise ConflictError(
                f"Task {task.task_id} is {api_status(task.status)}; it takes no more uploads.", code="UPLOAD_CLOSED"
            )

    def upload_landed(self, key: str) -> bool:
        """The object-created event of ``key``: start the task once all its uploads are in.

        Returns whether this event started the execution. Any other key, a duplicate event, or a task
        no longer awaiting its upload (cancelled, started already) returns False.
        """
        task_id = task_id_of_upload(key)
        if task_id is None:
            return False
        try:
            video = self.videos.get(task_id)
        except NotFoundError:
            log.warning("upload for an unknown task", key=key)
            return False
        if key not in video.upload_keys:
            return False
        missing = [k for k in video.upload_keys if k != key and not self.runtime.objects.exists(k)]
        if missing:
            log.info("upload landed; waiting for the others", task_id=task_id, key=key, missing=len(missing))
            return False
        task = self.runtime.tasks.update_status_if(
            task_id, expected=[TaskStatus.AWAITING_UPLOAD], status=TaskStatus.PENDING
        )
        if task is None:
            log.info("duplicate upload event ignored", task_id=task_id, key=key)
            return False
        if self.executions is None:
            log.warning("no execution backend: the task stays queued", task_id=task_id)
            return False
        started = self.executions.start(task)
        log.info("upload landed; execution started", task_id=task_id, started=started)
        return started

    # ------------------------------------------------------------------------------------- status

    def _definition(self, pipeline: str) -> dict[str, Any]:
        if pipeline not in self._definitions:
            self._definitions[pipeline] = state_machines.definition(pipeline)
        return self._definitions[pipeline]

    def status(self, tenant_id: str, task_id: str) -> VideoStatus:
        """Raises NotFoundError for an unknown task or another tenant's."""
        return self._status_of(self.videos.database.read(self._facts_plan(tenant_id, task_id)))

    async def status_async(self, tenant_id: str, task_id: str) -> VideoStatus:
        """:meth:`status` from an event loop, without a thread hand-off: what a poll costs."""
        return self._status_of(await self.videos.database.read_async(self._facts_plan(tenant_id, task_id)))

    def _status(self, video: VideoRecord, task: TaskRecord) -> VideoStatus:
        return self._status_of(self.videos.database.read(self._details_plan(video, task, None)))

    def _facts_plan(self, tenant_id: str, task_id: str) -> ReadPlan[_StatusFacts]:
        """A poll: one query while the task's journal and cost entries stay as they were (the video,
        its task, the journal's length, the first stage run's start and the entries' version)."""
        scalars = [self._task_store.first_run_started_scalar]
        if self.costs is not None:
            scalars.append(self.costs.entries_version_scalar)
        video, task, journal_length, values = yield from self.videos.with_task_plan(
            task_id, tenant_id=tenant_id, scalars=scalars
        )
        known = _Known(
            journal_length=journal_length,
            first_run_started=self._task_store.load_first_run_started(values[0]),
            cost_version=str(values[1]) if len(values) > 1 else None,
        )
        return (yield from self._details_plan(video, task, known))

    def _details_plan(self, video: VideoRecord, task: TaskRecord, known: _Known | None) -> ReadPlan[_StatusFacts]:
        """Only what the task's status needs: the journal while it runs or once it stopped short, and
        the cost summary; each kept from an earlier read while ``known`` (what a poll's query read)
        says it did not change."""
        journal = started = None
        if task.status not in (TaskStatus.SUCCEEDED, TaskStatus.AWAITING_UPLOAD, TaskStatus.PENDING):
            journal = self._journals.get(task.task_id)
            if journal is None or known is None or journal.length != known.journal_length:
                transitions = yield from self._task_store.transitions_plan(task.task_id)
                journal = _Journal(
                    length=len(transitions),
                    fraction=recorded_fraction(self._definition(task.pipeline), transitions),
                    first_recorded_at=transitions[0].recorded_at if transitions else None,
                )
                self._journals.put(task.task_id, journal)
            if task.status == TaskStatus.RUNNING and journal.first_recorded_at is not None:
                if known is not None:
                    started = known.first_run_started
                else:
                    started = yield from self._task_store.first_run_started_plan(task.task_id)
        return _StatusFacts(video, task, journal, started, (yield from self._cost_plan(task.task_id, known)))

    def _cost_plan(self, task_id: str, known: _Known | None) -> ReadPlan[CostSummary | None]:
        if self.costs is None:
            return None
        kept = self._costs.get(task_id)
        if known is not None and kept is not None and kept[0] == known.cost_version:
            return kept[1]
        summary = yield from self.costs.summary_plan(task_id)
        if known is not None:
            self._costs.put(task_id, (known.cost_version, summary))
        return summary

    def _status_of(self, facts: _StatusFacts) -> VideoStatus:
        video, task, journal = facts.video, facts.task, facts.journal
        if task.status == TaskStatus.SUCCEEDED:
            progress, eta = 1.0, None
        elif journal is None:
            progress, eta = 0.0, None
        else:
            elapsed = None
            if task.status == TaskStatus.RUNNING and journal.first_recorded_at is not None:
                started = facts.first_run_started or journal.first_recorded_at
                elapsed = max(0.0, (self.runtime.clock.now() - started).total_seconds())
            estimate = progress_at(journal.fraction, elapsed)
            progress, eta = estimate.fraction, estimate.eta_seconds if task.status == TaskStatus.RUNNING else None
        error = None
        if task.status == TaskStatus.FAILED and task.error_code:
            error = ErrorInfo(code=task.error_code, message=task.error_message or task.error_code)
        return VideoStatus(
            task_id=task.task_id,
            pipeline=task.pipeline,
            status=api_status(task.status),
            stage=task.current_stage,
            progress=progress,
            eta_seconds=eta,
            outputs=self.output_urls(task) if task.status == TaskStatus.SUCCEEDED else {},
            error=error,
            metadata=video.metadata,
            webhook_url=video.webhook_url,
            upload_expires_at=video.upload_expires_at if task.status == TaskStatus.AWAITING_UPLOAD else None,
            cost=None if facts.cost is None else TaskCost.model_validate(facts.cost.model_dump()),
            created_at=task.created_at,
            updated_at=task.updated_at,
        )

    def download_expiry(self) -> datetime:
        """When download links made now expire: the end of the next whole window of
        ``download_expires_seconds``, so links (and the status ETag) stay the same within a window and
        are always valid for at least one window."""
        window = self.limits.download_expires_seconds
        now = self.runtime.clock.now().timestamp()
        return datetime.fromtimestamp((math.floor(now / window) + 2) * window, UTC)

    def output_urls(self, task: TaskRecord) -> dict[str, str]:
        """Signed download links of the task's deliverables, by file name; the same links for the
        whole expiry window (they stay valid to its end)."""
        output = task.output or {}
        expires_at = self.download_expiry()
        keys = tuple((output[key], name) for key, name in DELIVERABLES.items() if output.get(key))
        signed = self._signed_outputs.get(task.task_id)
        if signed is None or signed.expires_at != expires_at or signed.keys != keys:
            urls = {name: self.presigner.download(key, expires_at=expires_at, filename=name) for key, name in keys}
            signed = _SignedOutputs(expires_at, keys, urls)
            self._signed_outputs.put(task.task_id, signed)
        return dict(signed.urls)

    def list_videos(
        self, tenant_id: str, *, limit: int = 20, cursor: str | None = None, statuses: list[TaskStatus] | None = None
    ) -> VideoList:
        """Newest first. Raises InvalidInputError (INVALID_CURSOR) for a cursor not handed out here."""
        page = self.videos.list_videos(tenant_id, limit=limit, cursor=cursor, statuses=statuses or ())
        data = [self._status(video, self.runtime.tasks.get_task(video.task_id)) for video in page.videos]
        return VideoList(data=data, next_cursor=page.next_cursor)

    # -------------------------------------------------------------------------------- cancel/retry

    def cancel(self, tenant_id: str, task_id: str) -> VideoStatus:
        """Cancel a task awaiting its upload, queued or running; a running execution stops before its
        next state. Raises NotFoundError, ConflictError (TASK_FINISHED) for a finished task."""
        video = self.videos.get(task_id, tenant_id=tenant_id)
        if self.executions is not None:
            self.executions.stop(task_id)  # before the status: the runner then records cancelled too
        task = self.runtime.tasks.update_status_if(task_id, expected=_UNFINISHED, status=TaskStatus.CANCELLED)
        if task is None:
            task = self.runtime.tasks.get_task(task_id)
            if task.status != TaskStatus.CANCELLED:
                raise ConflictError(
                    f"Task {task_id} is {api_status(task.status)}; only an unfinished task can be cancelled.",
                    code="TASK_FINISHED",
                )
        log.info("task cancelled", task_id=task_id)
        return self._status(video, task)

    def retry(self, tenant_id: str, task_id: str) -> VideoStatus:
        """Run a failed task again from the stage that failed (completed states are replayed from its
        journal). Raises NotFoundError, ConflictError (TASK_NOT_FAILED) for a task that did not fail."""
        video = self.videos.get(task_id, tenant_id=tenant_id)
        task = self.runtime.tasks.update_status_if(task_id, expected=[TaskStatus.FAILED], status=TaskStatus.PENDING)
        if task is None:
            current = self.runtime.tasks.get_task(task_id)
            raise ConflictError(
                f"Task {task_id} is {api_status(current.status)}; only a failed task can be retried.",
                code="TASK_NOT_FAILED",
            )
        if self.executions is not None:
            self.executions.start(task)
        log.info("task retried", task_id=task_id)
        return self._status(video, task)

    # -------------------------------------------------------------------------- execution events

    def _video_or_none(self, task_id: str) -> VideoRecord | None:
        try:
            return self.videos.get(task_id)
        except NotFoundError:
            return None  # a CLI task: no tenant, no webhooks

    def task_started(self, task: TaskRecord) -> None:
        video = self._video_or_none(task.task_id)
        if video is not None:
            self.events.emit(
                video.tenant_id,
                task.task_id,
                video.webhook_url,
                EventType.TASK_STARTED,
                task_started_data(task.task_id, pipeline=task.pipeline, started_at=self.runtime.clock.now()),
            )

    def stage_progress(self, event: ProgressEvent) -> None:
        """A runtime progress event: a finished stage run is a ``task.stage_completed`` event."""
        if event.kind != ProgressKind.FINISHED:
            return
        video = self._video_or_none(event.task_id)
        if video is None:
            return
        self.events.emit(
            video.tenant_id,
            event.task_id,
            video.webhook_url,
            EventType.TASK_STAGE_COMPLETED,
            task_stage_completed_data(event.task_id, stage=event.stage),
            dedupe_key=f"{event.stage}/{event.unit}",
        )

    def task_finished(self, task: TaskRecord) -> None:
        video = self._video_or_none(task.task_id)
        if video is None:
            return
        now = self.runtime.clock.now()
        if task.status == TaskStatus.SUCCEEDED:
            cost = self.costs.summary(task.task_id).model_dump(mode="json") if self.costs is not None else None
            self.events.emit(
                video.tenant_id,
                task.task_id,
                video.webhook_url,
                EventType.TASK_COMPLETED,
                task_completed_data(
                    task.task_id, outputs=self.output_urls(task), cost=cost, completed_at=now, metadata=video.metadata
                ),
                dedupe_key="completed",
            )
        elif task.status == TaskStatus.FAILED:
            self.events.emit(
                video.tenant_id,
                task.task_id,
                video.webhook_url,
                EventType.TASK_FAILED,
                task_failed_data(
                    task.task_id,
                    error_code=task.error_code or "FAILED",
                    error_message=task.error_message or "",
                    stage=task.current_stage,
                    failed_at=now,
                    metadata=video.metadata,
                ),
            )


def _task_id(tenant_id: str, idempotency_key: str | None) -> str:
    """A new id; with an idempotency key, the same id for the same (tenant, key), so concurrent
    repeats of a create call all land on one task."""
    if idempotency_key is None:
        return new_task_id()
    digest = hashlib.sha256(f"{tenant_id}\x00{idempotency_key}".encode()).hexdigest()
    return f"tsk_{digest[:32]}"


def check_idempotency_key(value: str) -> str:
    """Raises InvalidInputError (INVALID_IDEMPOTENCY_KEY) unless 1 to 255 printable ASCII characters."""
    if not 1 <= len(value) <= 255 or not all(0x20 < ord(char) < 0x7F for char in value):
        raise InvalidInputError(
            "An Idempotency-Key is 1 to 255 printable ASCII characters (a UUID is a good choice).",
            code="INVALID_IDEMPOTENCY_KEY",
            details={"field": "Idempotency-Key"},
        )
    return value
