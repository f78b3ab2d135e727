"""SVD's function around its pipeline, on the CPU: request validation, the still fitted to SVD's size, the
pipeline called with SVD's parameters, its frames encoded and stored, idempotency. The pipeline is a fake
(diffusers, the SVD weights and a GPU exist only in the Modal image)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.stub import ANY, Stubber
from modal_testdata import BUCKET
from PIL import Image

from modal_apps import i2v
from modal_apps.gpu import GpuEnvironment
from shared.errors import InvalidInputError
from shared.media.frames import read_frames


class FakeSvd:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, image: Image.Image, **kwargs: Any) -> Any:
        self.calls.append((image, kwargs))
        frames = [Image.new("RGB", (kwargs["width"], kwargs["height"]), (i * 40, 90, 160))
                  for i in range(kwargs["num_frames"])]
        return type("Output", (), {"frames": [frames]})()


@pytest.fixture
def still(aws: Any) -> str:
    out = io.BytesIO()
    Image.new("RGB", (300, 300), (200, 120, 60)).save(out, format="PNG")
    aws.put_object(Bucket=BUCKET, Key="env1/tasks/t1/assets/bg.png", Body=out.getvalue())
    return "tasks/t1/assets/bg.png"


def _request(still: str, **changes: Any) -> dict[str, Any]:
    return {"task_id": "t1", "image_key": still, "output_key": "tasks/t1/i2v-gpu/h/clip.mp4", "num_frames": 3,
            "fps": 6, "seed": 42, **changes}


def test_the_pipeline_gets_svd_inputs_and_its_frames_become_a_stored_clip(
    aws: Any, still: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modal_apps.gpu.HEARTBEAT_SECONDS", 0.0)  # every heartbeat goes out
    fake = FakeSvd()
    env = GpuEnvironment.from_env()
    stub = Stubber(env.stepfunctions)
    for _ in range(3):
        stub.add_response("send_task_heartbeat", {}, {"taskToken": "tok"})
    stub.add_response("send_task_success", {}, {"taskToken": "tok", "output": ANY})
    with stub:
        result = i2v.serve(_request(still), "tok", env, pipeline=fake)
    stub.assert_no_pending_responses()

    [(image, kwargs)] = fake.calls
    assert image.size == (1024, 576)  # the square still cover-fitted to SVD's landscape size
    assert kwargs["num_frames"] == 3 and kwargs["fps"] == 6 and kwargs["motion_bucket_id"] == 80
    assert kwargs["noise_aug_strength"] == 0.02 and kwargs["decode_chunk_size"] == 8
    assert result == {"video_key": "tasks/t1/i2v-gpu/h/clip.mp4", "width": 1024, "height": 576, "frames": 3,
                      "fps": 6, "method": "svd-img2vid-xt"}
    local = tmp_path / "clip.mp4"
    aws.download_file(BUCKET, "env1/tasks/t1/i2v-gpu/h/clip.mp4", str(local))
    assert np.stack(list(read_frames(["-i", str(local)], 1024, 576, "rgb24"))).shape == (3, 576, 1024, 3)

    again = i2v.serve(_request(still), None, env, pipeline=FakeSvd())
    assert again["reused"] is True


@pytest.mark.parametrize("changes", [
    {"width": 1024, "height": 1024}, {"width": 640}, {"num_frames": 26}, {"motion_bucket_id": 0},
    {"noise_aug_strength": 2.0}, {"prompt": "a cat"},
])
def test_requests_svd_cannot_render_are_refused(aws: Any, changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        i2v.serve(_request("tasks/t1/assets/bg.png", **changes), None, GpuEnvironment.from_env(), pipeline=FakeSvd())
    assert caught.value.code == "GPU_REQUEST_INVALID"


def test_a_pipeline_that_returns_the_wrong_frames_is_a_media_error(aws: Any, still: str) -> None:
    from shared.errors import MediaError

    class Short(FakeSvd):
        def __call__(self, image: Image.Image, **kwargs: Any) -> Any:
            return super().__call__(image, **{**kwargs, "num_frames": 2})

    with pytest.raises(MediaError):
        i2v.serve(_request(still), None, GpuEnvironment.from_env(), pipeline=Short())
