"""Submitting an enhance task: the request model, ingest of the user's files, the execution input."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.composition import GradePreset
from shared.errors import InvalidInputError
from shared.pipeline.ingest import ingest, submit_task
from shared.pipeline.runtime import Runtime
from shared.providers.remotion import check_remotion_settings
from shared.settings import Renderer, Settings
from shared.stages.style import PRESETS
from shared.storage.tasks import TaskRecord

PIPELINE = "enhance"

Matting = Literal["local", "modnet", "rvm"]
# Where each chunk's person is matted: "local" (the embedded model, inline in the renderer; the default)
# or a GPU model on Modal (modal_apps/matting.py, function ``matte_<choice>``), reached only from AWS Step
# Functions, whose MatteOnGpu Task hands a task token to functions/gpu_dispatch.py.
LOCAL_MATTING: frozenset[str] = frozenset({"local"})
GPU_MATTING: frozenset[str] = frozenset({"modnet", "rvm"})


class OutputFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(default=1080, ge=16, le=4096, multiple_of=2)
    height: int = Field(default=1920, ge=16, le=4096, multiple_of=2)
    fps: int = Field(default=30, ge=1, le=120)


class EnhanceOptions(BaseModel):
    """What a user chooses (CLI flags, the API's options); every field has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str | None = None
    title: str | None = Field(default=None, max_length=200)
    subtitle: str | None = Field(default=None, max_length=300)
    quotes: list[str] = Field(default_factory=list, max_length=20)
    output: OutputFormat = Field(default_factory=OutputFormat)
    grade: GradePreset | None = None  # None: the style's own grade
    grade_intensity: float = Field(default=0.6, ge=0.0, le=1.0)
    person_scale: float = Field(default=0.88, gt=0.2, le=1.0)
    matte_scale: float = Field(default=0.5, ge=0.25, le=1.0)
    square: bool = False
    gif: bool = False
    max_duration_seconds: float = Field(default=600.0, gt=0)
    keyframe_interval: int = Field(default=5, ge=1, le=60)
    chunk_seconds: float = Field(default=5.0, ge=1.0, le=60.0)
    matting: Matting = Field(
        default="local",
        description="Who mattes the person: 'local' (the embedded model) or a GPU model on Modal, 'modnet' "
        "(non-commercial weights) or 'rvm' (GPL-3.0); the GPU choices need the AWS deployment.",
    )


def check_options(options: EnhanceOptions, *, matting_available: Collection[str] = LOCAL_MATTING) -> None:
    """Check what the model cannot: the preset exists, and the matting choice can run where the task will.

    ``matting_available``: the matting choices of the executor that will run the task; the embedded
    engine has only "local" (no Modal, nobody to answer a task token), Step Functions has them all.
    Raises InvalidInputError: UNKNOWN_PRESET, or MATTING_PROVIDER_UNAVAILABLE for a GPU choice the
    executor cannot run (at submit time, rather than a task that fails or waits later).
    """
    if options.preset is not None and options.preset not in PRESETS:
        raise InvalidInputError(
            f"Unknown preset {options.preset!r}; choose one of: {', '.join(PRESETS)}.", code="UNKNOWN_PRESET",
            details={"field": "options.preset"},
        )
    if options.matting not in matting_available:
        raise InvalidInputError(
            f"Matting {options.matting!r} runs on a Modal GPU, started from AWS Step Functions; this runtime "
            f"runs tasks on the embedded engine, which offers: {', '.join(sorted(matting_available))}.",
            code="MATTING_PROVIDER_UNAVAILABLE", details={"field": "options.matting"},
        )


def check_renderer(settings: Settings) -> Renderer:
    """The renderer the settings choose, once it can run: Remotion needs its VIDLUXE_REMOTION_* variables
    and the S3 object store (its browser fetches every layer by a presigned URL).

    The renderer (ffmpeg chunk by chunk, the default, or the Remotion composition on Remotion Lambda:
    shared/stages/remotion_render.py) is the operator's setting VIDLUXE_RENDERER, not a user's option. It
    is read when a task is submitted and travels in the execution input, so the state machine routes on
    it the same way on the embedded engine and on Step Functions.

    Raises RemotionConfigurationError, a ConfigurationError: REMOTION_NOT_CONFIGURED, REMOTION_NEEDS_S3
    (at submit time, rather than a task that fails after its style, assets and mattes were made).
    """
    if settings.renderer == "remotion":
        check_remotion_settings(settings)
    return settings.renderer


def execution_input(
    options: EnhanceOptions, *, source_key: str | None, source_name: str, reference_key: str | None = None,
    delivery: dict[str, Any] | None = None, renderer: Renderer = "ffmpeg",
) -> dict[str, Any]:
    """The enhance state machine's input. ``source_name`` is the user's file name, for error messages;
    ``renderer``: what :func:`check_renderer` answered for the submitting process's settings."""
    return {
        **options.model_dump(mode="json"),
        "renderer": renderer,
        "source_key": source_key,
        "source_name": source_name,  # the stored copy has a content-hash name
        "reference_key": reference_key,
        "delivery": delivery or {},
    }


def submit_enhance(
    runtime: Runtime, task_id: str, video: Path, options: EnhanceOptions, *, reference: Path | None = None,
    delivery: dict[str, Any] | None = None,
) -> TaskRecord:
    """Ingest the user's files into the object store and create the task (not yet run).

    A missing or unreadable file still creates the task, recorded as failed with INPUT_NOT_FOUND, so
    the attempt is visible in ``vidluxe tasks``. Raises InvalidInputError for an unknown preset, and for
    a GPU matting choice (MATTING_PROVIDER_UNAVAILABLE): the task would run on the embedded engine;
    ConfigurationError when the renderer setting cannot run (:func:`check_renderer`). When these are
    raised, nothing is stored and no task is created.
    """
    check_options(options)
    renderer = check_renderer(runtime.settings)
    initial = execution_input(options, source_key=None, source_name=video.name, delivery=delivery, renderer=renderer)

    def upload() -> dict[str, Any]:
        keys = {"source_key": ingest(runtime, task_id, "source", video)}
        if reference is not None:
            keys["reference_key"] = ingest(runtime, task_id, "reference", reference)
        return keys

    return submit_task(runtime, PIPELINE, task_id, initial, upload)
