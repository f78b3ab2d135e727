"""Real-ESRGAN's function body on the CPU: RRDBNet x4 (random weights, the real 23-block layout loaded from
a ``params_ema`` checkpoint), tiling that equals the untiled network when the context covers it, a stored
H.264 video of 4x (or the asked) size, idempotency by output key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modal_testdata import BUCKET

torch = pytest.importorskip("torch")

from modal_apps import upscale  # noqa: E402
from modal_apps.gpu import GpuEnvironment  # noqa: E402
from modal_apps.nets.rrdbnet import RRDBNet  # noqa: E402
from shared.media.ffmpeg import run_ffmpeg  # noqa: E402
from shared.media.frames import read_frames  # noqa: E402


def test_tiles_with_enough_context_equal_the_whole_frame() -> None:
    torch.manual_seed(0)
    model = RRDBNet(num_block=1).eval()
    frames = torch.rand(2, 3, 12, 20)
    with torch.inference_mode():
        whole = model(frames).clamp(0, 1)
    tiled = upscale.upscale_tiled(model, frames, tile=8, tile_pad=20)  # the pad reaches every pixel
    assert tiled.shape == (2, 3, 48, 80)
    assert torch.allclose(tiled, whole, atol=1e-5)
    rough = upscale.upscale_tiled(model, frames, tile=8, tile_pad=2)  # Real-ESRGAN's trade: seams possible
    assert rough.shape == whole.shape and float(rough.min()) >= 0 and float(rough.max()) <= 1


@pytest.fixture
def small_video(aws: Any, tmp_path: Path) -> str:
    clip = tmp_path / "small.mp4"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "testsrc2=size=16x12:rate=4:duration=1", "-c:v", "libx264",
                "-pix_fmt", "yuv444p", str(clip)])
    aws.upload_file(str(clip), BUCKET, "env1/tasks/t1/render/c0.mp4")
    return "tasks/t1/render/c0.mp4"


def test_the_function_upscales_a_video_and_reuses_its_output(small_video: str, aws: Any, tmp_path: Path) -> None:
    request = {"task_id": "t1", "source_key": small_video, "output_key": "tasks/t1/upscale-gpu/h/up.mp4",
               "width": 16, "height": 12, "fps": 4, "tile": 8, "tile_pad": 2, "batch_frames": 3}
    result = upscale.upscale_video.local(request)
    assert result == {"video_key": request["output_key"], "width": 64, "height": 48, "method": "realesrgan-x4plus",
                      "frames": 4}
    local = tmp_path / "up.mp4"
    aws.download_file(BUCKET, "env1/" + request["output_key"], str(local))
    frames = np.stack(list(read_frames(["-i", str(local)], 64, 48, "rgb24")))
    assert frames.shape == (4, 48, 64, 3)

    class Refuses:
        def parameters(self) -> Any:
            raise AssertionError("upscaled again although the output key exists")

    again = upscale.serve(request, None, GpuEnvironment.from_env(), model=Refuses())
    assert again["reused"] is True


def test_an_asked_output_size_is_met(small_video: str, aws: Any) -> None:
    request = {"task_id": "t1", "source_key": small_video, "output_key": "tasks/t1/upscale-gpu/s/up.mp4",
               "width": 16, "height": 12, "fps": 4, "out_width": 40, "out_height": 30, "tile": 16}
    model = RRDBNet(num_block=1).eval()
    result = upscale.serve(request, None, GpuEnvironment.from_env(), model=model)
    assert (result["width"], result["height"], result["frames"]) == (40, 30, 4)


def test_a_bad_request_is_an_input_error(aws: Any) -> None:
    from shared.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        upscale.serve({"task_id": "t1"}, None, GpuEnvironment.from_env())
