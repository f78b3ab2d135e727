"""Both pipelines end to end on an S3 object store with the AWS stack's three buckets (moto's server): every
deliverable of the execution output lies in the outputs bucket, which holds nothing but the runs of the
stages that write deliverables; every other artifact lies in the artifacts bucket."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from shared.pipeline.enhance import EnhanceOptions, OutputFormat, submit_enhance
from shared.pipeline.execution import new_task_id, run_task
from shared.pipeline.registry import StageRegistry
from shared.pipeline.report import DELIVERABLES
from shared.pipeline.runtime import Runtime
from shared.pipeline.showcase import ShowcaseOptions, submit_showcase
from shared.settings import Settings
from shared.stages import ALL_STAGES
from shared.storage.s3_objects import OUTPUT_STAGES
from shared.storage.tasks import TaskRecord, TaskStatus

SMALL = OutputFormat(width=180, height=320, fps=10)


@pytest.fixture
def buckets(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    run = uuid.uuid4().hex[:12]
    names = {kind: f"vidluxe-{run}-{kind}" for kind in ("uploads", "artifacts", "outputs")}
    for name in names.values():
        s3.create_bucket(Bucket=name)
    return names


@pytest.fixture
def settings(tmp_path: Path, moto_endpoint: str, buckets: dict[str, str]) -> Settings:
    return Settings(
        home=tmp_path / "home", task_store="sqlite", cache="local", object_store="s3", s3_prefix="env",
        s3_bucket=buckets["artifacts"], s3_uploads_bucket=buckets["uploads"], s3_outputs_bucket=buckets["outputs"],
        s3_endpoint_url=moto_endpoint, s3_region="us-east-1",
    )


def _names(moto_endpoint: str, bucket: str) -> set[str]:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    return {item["Key"].removeprefix("env/") for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def _check_buckets(task: TaskRecord, moto_endpoint: str, buckets: dict[str, str], delivered: set[str]) -> None:
    assert task.status == TaskStatus.SUCCEEDED, (task.error_code, task.error_message)
    output: dict[str, Any] = task.output or {}
    assert {name for key, name in DELIVERABLES.items() if output.get(key)} == delivered
    outputs = _names(moto_endpoint, buckets["outputs"])
    assert {output[key] for key in DELIVERABLES if output.get(key)} <= outputs
    assert {key.split("/")[2] for key in outputs} <= OUTPUT_STAGES
    artifacts = _names(moto_endpoint, buckets["artifacts"])
    assert artifacts and not {key.split("/")[2] for key in artifacts} & OUTPUT_STAGES
    assert _names(moto_endpoint, buckets["uploads"]) == set()  # an embedded submission ingests under tasks/


def test_enhance_delivers_into_the_outputs_bucket(
    settings: Settings, short_clip: Path, moto_endpoint: str, buckets: dict[str, str]
) -> None:
    options = EnhanceOptions(preset="cinematic", title="Hi", output=SMALL, square=True, gif=True)
    with Runtime.from_settings(settings) as runtime:
        task = submit_enhance(runtime, new_task_id(), short_clip, options)
        done = run_task(runtime, StageRegistry(ALL_STAGES), task.task_id)
    _check_buckets(done, moto_endpoint, buckets, set(DELIVERABLES.values()))


def test_showcase_delivers_into_the_outputs_bucket(
    settings: Settings, tmp_path: Path, moto_endpoint: str, buckets: dict[str, str]
) -> None:
    from PIL import Image, ImageDraw

    photo = tmp_path / "bottle.png"
    image = Image.new("RGB", (300, 400), (228, 226, 222))
    ImageDraw.Draw(image).rounded_rectangle((100, 120, 200, 350), radius=20, fill=(214, 150, 140))
    image.save(photo)
    with Runtime.from_settings(settings) as runtime:
        task = submit_showcase(runtime, new_task_id(), [photo], ShowcaseOptions(category="skincare", output=SMALL))
        done = run_task(runtime, StageRegistry(ALL_STAGES), task.task_id)
    _check_buckets(done, moto_endpoint, buckets, {"final.mp4", "final_square.mp4", "preview.gif"})
