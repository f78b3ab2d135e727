"""The service's request and response documents (the API's JSON, and its OpenAPI schema).

Statuses are the API's words for the task store's: ``pending`` is ``queued``, ``succeeded`` is
``completed``; the others are the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.pipeline.enhance import EnhanceOptions
from shared.pipeline.showcase import ShowcaseOptions
from shared.stages.showcase import MAX_PHOTOS
from shared.storage.presign import UploadTarget
from shared.storage.sql import dump_json
from shared.storage.tasks import TaskStatus
from web_hooks.events import EventType
from web_hooks.outbox import AttemptRecord, MessageStatus

ApiStatus = Literal["awaiting_upload", "queued", "running", "completed", "failed", "cancelled"]

_TO_API: dict[TaskStatus, ApiStatus] = {
    TaskStatus.AWAITING_UPLOAD: "awaiting_upload",
    TaskStatus.PENDING: "queued",
    TaskStatus.RUNNING: "running",
    TaskStatus.SUCCEEDED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
}
_FROM_API: dict[str, TaskStatus] = {api: task for task, api in _TO_API.items()}

VIDEO_CONTENT_TYPES = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/x-m4v": ".m4v",
}
IMAGE_CONTENT_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}

VideoContentType = Literal["video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-m4v"]
ImageContentType = Literal["image/jpeg", "image/png", "image/webp"]

MAX_METADATA_BYTES = 4096
MAX_WEBHOOK_URL_LENGTH = 2048


def api_status(status: TaskStatus) -> ApiStatus:
    return _TO_API[TaskStatus(status)]


def task_status(status: str) -> TaskStatus:
    """Raises KeyError for a word that is not an API status."""
    return _FROM_API[status]


Metadata = dict[str, str | int | float | bool | None]


class _CreateVideoBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = Field(
        default=None,
        max_length=MAX_WEBHOOK_URL_LENGTH,
        description="Receives this task's events (Standard Webhooks, signed with the tenant's secret).",
    )
    metadata: Metadata = Field(
        default_factory=dict, description="Your own keys and values (at most 4 KB as JSON), echoed back."
    )

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: Metadata) -> Metadata:
        if len(dump_json(value).encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON")
        return value


class CreateEnhanceVideo(_CreateVideoBase):
    pipeline: Literal["enhance"]
    options: EnhanceOptions = Field(default_factory=EnhanceOptions, description="The CLI's enhance options.")
    content_type: VideoContentType = Field(default="video/mp4", description="Of the video you will upload.")
    filename: str | None = Field(
        default=None, max_length=200, description="Your file's name, used in error messages only."
    )


class CreateShowcaseVideo(_CreateVideoBase):
    pipeline: Literal["showcase"]
    options: ShowcaseOptions
    photos: int = Field(default=1, ge=1, le=MAX_PHOTOS, description="How many product photos you will upload.")
    content_type: ImageContentType = Field(default="image/jpeg", description="Of the photos you will upload.")


CreateVideo = Annotated[CreateEnhanceVideo | CreateShowcaseVideo, Field(discriminator="pipeline")]


class VideoCreated(BaseModel):
    task_id: str
    status: ApiStatus
    upload: UploadTarget = Field(description="Where to upload the video (the first photo for a showcase).")
    uploads: list[UploadTarget] = Field(description="Every upload the task waits for, in order.")
    created_at: datetime


class ErrorInfo(BaseModel):
    code: str
    message: str


class TaskCost(BaseModel):
    """What the task cost so far, from the cost ledger: what the cloud charges for its stage runs and the
    download of its outputs (USD; the price tables are listed in infra/prices)."""

    total_usd: float
    by_stage: dict[str, float] = Field(description="Stage -> USD; `delivery` is the download of the outputs.")
    price_versions: list[str] = Field(default_factory=list, description="The price tables used.")


class VideoStatus(BaseModel):
    task_id: str
    pipeline: str
    status: ApiStatus
    stage: str | None = Field(description="The stage running now, or the last one that ran.")
    progress: float = Field(ge=0.0, le=1.0, description="An estimate from the completed stages.")
    eta_seconds: float | None = Field(description="An estimate of the time left, while running.")
    outputs: dict[str, str] = Field(description="File name -> signed download URL, once completed.")
    error: ErrorInfo | None
    metadata: dict[str, Any]
    webhook_url: str | None
    upload_expires_at: datetime | None = Field(description="While awaiting the upload: when its URL expires.")
    cost: TaskCost | None = Field(
        default=None, description="Present only where a cost ledger is configured (a price table is found)."
    )
    created_at: datetime
    updated_at: datetime


class VideoList(BaseModel):
    data: list[VideoStatus]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class SigningSecretInfo(BaseModel):
    secret: str
    created_at: datetime
    expires_at: datetime | None = Field(description="Null for the current secret; else the end of its grace period.")


class WebhookSecrets(BaseModel):
    """The tenant's valid signing secrets: the current one first."""

    secret: str = Field(description="The current secret (whsec_...).")
    secrets: list[SigningSecretInfo]


class WebhookDelivery(BaseModel):
    """One event for one URL (a message) and every attempt to deliver it."""

    message_id: str = Field(description="The webhook-id header: the same on every retry of this message.")
    task_id: str
    event_type: EventType
    url: str
    status: MessageStatus = Field(description="pending (retries due), delivered (a 2xx) or failed (given up).")
    held: bool = Field(
        description="Pending, but its URL answered 410 Gone: waits for POST /v1/webhooks/endpoints/enable."
    )
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    event_timestamp: datetime
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    attempts: list[AttemptRecord] = Field(description="Oldest first.")


class WebhookDeliveryList(BaseModel):
    data: list[WebhookDelivery] = Field(description="Newest message first.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class EnableWebhookEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_WEBHOOK_URL_LENGTH, description="A webhook_url of your tasks.")


class WebhookEndpoint(BaseModel):
    url: str
    enabled: bool
    disabled_at: datetime | None = Field(description="When a 410 Gone disabled it; null while enabled.")
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
