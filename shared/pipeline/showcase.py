"""Submitting a product-showcase task: the request model, ingest of the photos, the execution input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import InvalidInputError
from shared.pipeline.enhance import OutputFormat
from shared.pipeline.ingest import ingest, submit_task
from shared.pipeline.runtime import Runtime
from shared.stages.showcase import MAX_PHOTOS
from shared.stages.showcase_scene import Category
from shared.storage.tasks import TaskRecord

PIPELINE = "showcase"


class ShowcaseOptions(BaseModel):
    """What a user chooses for a showcase; every field but the category has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: Category
    title: str | None = Field(default=None, max_length=200)
    subtitle: str | None = Field(default=None, max_length=300)
    output: OutputFormat = Field(default_factory=OutputFormat)
    square: bool = True
    gif: bool = True


def execution_input(
    options: ShowcaseOptions, *, photo_keys: list[str], delivery: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The showcase state machine's input."""
    return {**options.model_dump(mode="json"), "photo_keys": photo_keys, "subject": "auto", "delivery": delivery or {}}


def submit_showcase(
    runtime: Runtime, task_id: str, photos: list[Path], options: ShowcaseOptions, *,
    delivery: dict[str, Any] | None = None,
) -> TaskRecord:
    """Ingest the photos into the object store and create the task (not yet run).

    A missing or unreadable photo still creates the task, recorded as failed with INPUT_NOT_FOUND.
    Raises InvalidInputError (NO_PHOTOS, TOO_MANY_PHOTOS) for a wrong number of photos.
    """
    if not photos:
        raise InvalidInputError("Give at least one product photo.", code="NO_PHOTOS")
    if len(photos) > MAX_PHOTOS:
        raise InvalidInputError(f"At most {MAX_PHOTOS} photos fit one showcase; got {len(photos)}.",
                                code="TOO_MANY_PHOTOS")
    initial = execution_input(options, photo_keys=[], delivery=delivery)

    def upload() -> dict[str, Any]:
        return {"photo_keys": [ingest(runtime, task_id, f"photo{i:02d}", path) for i, path in enumerate(photos)]}

    return submit_task(runtime, PIPELINE, task_id, initial, upload)
