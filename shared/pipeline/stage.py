"""What a stage is, and how one run of it is executed, reused and reported.

A stage is a plain function ``run(input, ctx) -> output`` with pydantic models on both sides. It reads
and writes artifacts by key through ``ctx.objects`` and names its outputs with ``ctx.output_key``, which
is deterministic in (task id, stage, hash of the input). The stage's output document is written last,
under the same prefix: its presence is the commit point, so a re-run with the same input returns it
without running the stage again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import InvalidInputError, VidluxeError
from shared.pipeline.runtime import ProgressEvent, ProgressKind, Runtime
from shared.storage.tasks import ResourceUsage, StageReport, StageRunStatus


class StageInput(BaseModel):
    """Every stage input names its task; the rest is the stage's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str


class StageOutput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


InT = TypeVar("InT", bound=StageInput)
OutT = TypeVar("OutT", bound=StageOutput)


@dataclass
class StageContext:
    """What a running stage may touch besides its input."""

    task_id: str
    stage: str
    attempt: int
    input_hash: str
    runtime: Runtime
    scratch: Path  # a private temporary directory, removed when the stage ends
    usage: ResourceUsage = field(default_factory=ResourceUsage)
    cancelled: threading.Event = field(default_factory=threading.Event)
    log: Any = None

    @property
    def prefix(self) -> str:
        return f"tasks/{self.task_id}/{self.stage}/{self.input_hash[:16]}"

    def output_key(self, name: str) -> str:
        """The deterministic object key for one of this run's outputs."""
        return f"{self.prefix}/{name}"

    def progress(self, fraction: float) -> None:
        self.runtime.on_progress(
            ProgressEvent(
                self.task_id, self.stage, ProgressKind.PROGRESS, min(1.0, max(0.0, fraction)),
                unit=self.input_hash[:16],
            )
        )


@dataclass(frozen=True)
class Stage(Generic[InT, OutT]):
    """A named stage. Bump ``version`` when its behaviour changes, so old outputs are not reused."""

    name: str
    input_model: type[InT]
    output_model: type[OutT]
    run: Callable[[InT, StageContext], OutT]
    version: int = 1

    @property
    def function_name(self) -> str:
        """The ASL substitution variable naming this stage's Lambda, e.g. ``LearnStyleFunctionArn``."""
        return "".join(part.capitalize() for part in self.name.split("_")) + "FunctionArn"


def input_hash(stage: Stage[Any, Any], model: StageInput) -> str:
    document = {"stage": stage.name, "version": stage.version, "input": model.model_dump(mode="json")}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def execute_stage(
    stage: Stage[InT, OutT],
    payload: Any,
    runtime: Runtime,
    *,
    attempt: int = 1,
    cancelled: threading.Event | None = None,
) -> dict[str, Any]:
    """Run (or reuse) one stage for ``payload`` and record its StageReport. Returns the output as JSON data.

    Raises InvalidInputError (code INVALID_STAGE_INPUT) when the payload does not fit the input model,
    and whatever the stage raises; every failure is recorded as a failed StageReport first.
    """
    try:
        model = stage.input_model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidInputError(
            f"Stage {stage.name!r} got an invalid input: {exc.errors(include_url=False)}",
            code="INVALID_STAGE_INPUT",
        ) from exc

    digest = input_hash(stage, model)
    log = structlog.get_logger("vidluxe.stage").bind(task_id=model.task_id, stage=stage.name)
    started_at = runtime.clock.now()
    started = time.monotonic()
    usage = ResourceUsage()
    manifest_key = f"tasks/{model.task_id}/{stage.name}/{digest[:16]}/output.json"
    unit = digest[:16]
    runtime.on_progress(ProgressEvent(model.task_id, stage.name, ProgressKind.STARTED, unit=unit))

    def report(status: StageRunStatus, error: VidluxeError | None = None) -> None:
        runtime.tasks.record_stage_run(
            StageReport(
                task_id=model.task_id,
                stage=stage.name,
                status=status,
                attempt=attempt,
                started_at=started_at,
                ended_at=runtime.clock.now(),
                duration_seconds=round(time.monotonic() - started, 4),
                input_hash=digest,
                usage=usage,
                error_code=error.code if error else None,
                error_message=error.message if error else None,
            )
        )

    if runtime.objects.exists(manifest_key):
        output = stage.output_model.model_validate_json(runtime.objects.get_bytes(manifest_key))
        report(StageRunStatus.REUSED)
        log.info("stage output reused", key=manifest_key)
        runtime.on_progress(
            ProgressEvent(model.task_id, stage.name, ProgressKind.FINISHED, 1.0, reused=True, unit=unit)
        )
        return output.model_dump(mode="json")

    scratch = Path(tempfile.mkdtemp(prefix=f"vidluxe-{stage.name}-"))
    ctx = StageContext(
        task_id=model.task_id,
        stage=stage.name,
        attempt=attempt,
        input_hash=digest,
        runtime=runtime,
        scratch=scratch,
        usage=usage,
        cancelled=cancelled or threading.Event(),
        log=log,
    )
    cpu_started = time.thread_time()
    log.info("stage started", attempt=attempt)
    try:
        output = stage.run(model, ctx)
        runtime.objects.put_bytes(manifest_key, output.model_dump_json().encode(), "application/json")
    except VidluxeError as exc:
        usage.cpu_seconds += time.thread_time() - cpu_started
        report(StageRunStatus.FAILED, exc)
        runtime.on_progress(ProgressEvent(model.task_id, stage.name, ProgressKind.FAILED, unit=unit))
        log.warning("stage failed", code=exc.code, error=exc.message)
        raise
    except Exception as exc:
        usage.cpu_seconds += time.thread_time() - cpu_started
        report(StageRunStatus.FAILED, VidluxeError(f"{type(exc).__name__}: {exc}"))
        runtime.on_progress(ProgressEvent(model.task_id, stage.name, ProgressKind.FAILED, unit=unit))
        log.exception("stage crashed")
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    usage.cpu_seconds = round(usage.cpu_seconds + time.thread_time() - cpu_started, 4)
    report(StageRunStatus.SUCCEEDED)
    log.info("stage finished", seconds=round(time.monotonic() - started, 3), cpu_seconds=usage.cpu_seconds)
    runtime.on_progress(ProgressEvent(model.task_id, stage.name, ProgressKind.FINISHED, 1.0, unit=unit))
    return output.model_dump(mode="json")
