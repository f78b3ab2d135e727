"""The task report (report.json, ``vidluxe status``) and delivery of outputs to a local directory."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from shared.pipeline.runtime import Runtime
from shared.storage.tasks import TaskRecord

# Output keys in the execution output, and the file names they are delivered as.
DELIVERABLES = {
    "final_key": "final.mp4",
    "comparison_key": "comparison.jpg",
    "asset_pack_key": "assets.zip",
    "square_key": "final_square.mp4",
    "gif_key": "preview.gif",
    "contact_sheet_key": "contact_sheet.png",
}


def build_report(runtime: Runtime, task: TaskRecord) -> dict[str, Any]:
    runs = runtime.tasks.list_stage_runs(task.task_id)
    output = task.output or {}
    return {
        "task_id": task.task_id,
        "pipeline": task.pipeline,
        "status": task.status.value,
        "current_stage": task.current_stage,
        "error": {"code": task.error_code, "message": task.error_message} if task.error_code else None,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
        "stages": [
            {
                "stage": run.stage,
                "status": run.status.value,
                "attempt": run.attempt,
                "started_at": run.started_at.isoformat(),
                "duration_seconds": run.duration_seconds,
                "cpu_seconds": run.usage.cpu_seconds,
                **({"error_code": run.error_code} if run.error_code else {}),
            }
            for run in runs
        ],
        "outputs": {name: runtime.objects.uri(output[key]) for key, name in DELIVERABLES.items() if output.get(key)},
        # What the cloud would charge (USD, see shared/costs); absent without a price table.
        **({"cost": runtime.costs.cost_document(task.task_id)} if runtime.costs is not None else {}),
        "source": output.get("source"),
        "style": output.get("style"),
        "quality": output.get("quality"),
    }


def deliver(runtime: Runtime, task: TaskRecord, out_dir: Path) -> dict[str, Path]:
    """Copy a succeeded task's deliverables and report.json into ``out_dir``.

    Each file is written beside its final name and renamed into place, so the directory never holds a
    half-written file, even if the process dies mid-copy.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    output = task.output or {}
    written: dict[str, Path] = {}
    for key_field, name in DELIVERABLES.items():
        if output.get(key_field):
            with runtime.objects.local_copy(output[key_field]) as source:
                written[name] = _atomic_write(out_dir / name, _copy_from(source))
    report = build_report(runtime, task)
    report["files"] = {name: str(path) for name, path in written.items()}
    document = json.dumps(report, indent=2, ensure_ascii=False).encode()
    written["report.json"] = _atomic_write(out_dir / "report.json", lambda out: out.write(document))
    return written


def _copy_from(source: Path) -> Callable[[BinaryIO], object]:
    def copy(out: BinaryIO) -> None:
        with source.open("rb") as handle:
            shutil.copyfileobj(handle, out, 1 << 20)

    return copy


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return path
