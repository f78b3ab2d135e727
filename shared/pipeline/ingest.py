"""Getting a user's files into the object store and creating the task that will process them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.errors import InvalidInputError
from shared.pipeline.execution import create_task
from shared.pipeline.runtime import Runtime
from shared.storage.tasks import TaskRecord, TaskStatus

_SAFE_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".3gp", ".jpg", ".jpeg", ".png", ".webp"}


def submit_task(
    runtime: Runtime,
    pipeline: str,
    task_id: str,
    execution_input: dict[str, Any],
    upload: Callable[[], dict[str, Any]],
) -> TaskRecord:
    """Run ``upload`` (which ingests the files and returns their keys), then create the task (not run).

    A file that is missing or unreadable still creates the task, recorded as failed in stage "upload"
    with the InvalidInputError's code, so the attempt is visible in ``vidluxe tasks``.
    """
    try:
        execution_input = {**execution_input, **upload()}
    except InvalidInputError as exc:
        task = create_task(runtime, pipeline, execution_input, task_id)
        return runtime.tasks.update_task(
            task.task_id, status=TaskStatus.FAILED, current_stage="upload", error_code=exc.code,
            error_message=exc.message,
        )
    return create_task(runtime, pipeline, execution_input, task_id)


def ingest(runtime: Runtime, task_id: str, role: str, path: Path) -> str:
    """Copy a local file into the store under a key named by its content hash; return the key."""
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist or is not a file.", code="INPUT_NOT_FOUND")
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise InvalidInputError(f"{path} cannot be read: {exc.strerror}.", code="INPUT_NOT_FOUND") from None
    suffix = path.suffix.lower() if path.suffix.lower() in _SAFE_SUFFIXES else ".bin"
    key = f"tasks/{task_id}/input/{role}-{digest.hexdigest()[:16]}{suffix}"
    if not runtime.objects.exists(key):
        runtime.objects.put_file(key, path)
    return key
