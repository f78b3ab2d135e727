"""Video upscaling on a Modal GPU: Real-ESRGAN (RRDBNet x4, ``RealESRGAN_x4plus.pth``), tiled.

``vidluxe-upscale/upscale_video`` reads a video (``source_key``; e.g. a rendered chunk or a generated
clip), upscales every frame x4, optionally resizes to ``out_width`` x ``out_height`` (area filter), and
writes an H.264 video to ``output_key``. Frames go through the network ``batch_frames`` at a time, each
cut into ``tile`` x ``tile`` tiles with ``tile_pad`` pixels of context (Real-ESRGAN's own tiling: the
padded tile is upscaled and only its centre kept), so a 1080p frame fits any GPU's memory. Like every
GPU function here it is idempotent by its output key and reports to a Step Functions task token
(:mod:`modal_apps.gpu`). Real-ESRGAN is BSD-3-Clause (code and weights).
"""

from __future__ import annotations

import functools
import math
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import modal
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modal_apps import checkpoints
from modal_apps.gpu import GpuEnvironment, TaskReporter, batched, run_reported

U8 = NDArray[np.uint8]

app = modal.App("vidluxe-upscale")

image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install(
        "torch==2.13.0", "numpy==1.26.4", "pydantic==2.13.4", "av==18.1.0", "imageio-ffmpeg==0.8.1",
        "boto3==1.43.11",
    )
    .run_function(checkpoints.download_upscale)
    .add_local_python_source("shared", "modal_apps")
)


@app.function(
    image=image,
    gpu="L40S",  # RRDBNet is ~1 TFLOP per 1080p frame pair of tiles: the bigger Ada card pays for itself
    timeout=30 * 60,
    retries=modal.Retries(max_retries=2, initial_delay=5.0, backoff_coefficient=2.0),
    scaledown_window=120,
    max_containers=10,
    secrets=[modal.Secret.from_name("vidluxe-aws")],
)
def upscale_video(request: dict[str, Any], task_token: str | None = None) -> dict[str, Any]:
    return serve(request, task_token, GpuEnvironment.from_env())


class UpscaleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str
    source_key: str
    output_key: str
    width: int = Field(ge=2, le=4096)  # the source's frame size
    height: int = Field(ge=2, le=4096)
    fps: int = Field(ge=1, le=120)
    out_width: int | None = Field(default=None, ge=2, le=8192)  # default: 4x the source
    out_height: int | None = Field(default=None, ge=2, le=8192)
    tile: int = Field(default=256, ge=8, le=2048)
    tile_pad: int = Field(default=10, ge=0, le=128)
    batch_frames: int = Field(default=4, ge=1, le=64)
    crf: int = Field(default=18, ge=0, le=51)


def parse_request(payload: dict[str, Any]) -> UpscaleRequest:
    """Raises InvalidInputError (GPU_REQUEST_INVALID) when the payload is not an upscale request."""
    from shared.errors import InvalidInputError

    try:
        return UpscaleRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidInputError(
            f"Not an upscale request: {exc.errors(include_url=False)}", code="GPU_REQUEST_INVALID"
        ) from None


def output_size(request: UpscaleRequest) -> tuple[int, int]:
    width = request.out_width or 4 * request.width
    height = request.out_height or 4 * request.height
    return width + width % 2, height + height % 2  # yuv420p needs even sides


def result_of(request: UpscaleRequest, frames: int | None = None) -> dict[str, Any]:
    width, height = output_size(request)
    answer: dict[str, Any] = {"video_key": request.output_key, "width": width, "height": height,
                              "method": "realesrgan-x4plus"}
    if frames is not None:
        answer["frames"] = frames
    return answer


def serve(payload: dict[str, Any], task_token: str | None, env: GpuEnvironment, *, model: Any = None
          ) -> dict[str, Any]:
    reporter = TaskReporter(env.stepfunctions, task_token)
    request: UpscaleRequest | None = None

    def done() -> dict[str, Any] | None:
        nonlocal request
        request = parse_request(payload)
        return result_of(request) if env.objects.exists(request.output_key) else None

    def work(reporter: TaskReporter) -> dict[str, Any]:
        assert request is not None
        return upscale(request, env.objects, reporter, model or load_model())

    return run_reported(reporter, work, done=done)


def upscale(request: UpscaleRequest, objects: Any, reporter: TaskReporter, model: Any) -> dict[str, Any]:
    """Decode, upscale in tiled batches, resize, encode, store at ``output_key``; returns the result.

    Raises MediaError when decoding or encoding fails.
    """
    import torch
    import torch.nn.functional as F

    from shared.errors import MediaError
    from shared.media.frames import read_frames

    width, height = output_size(request)
    parameter = next(model.parameters())
    written = 0
    with _temp() as scratch, objects.local_copy(request.source_key) as source:
        out = Path(scratch) / "upscaled.mp4"
        encoder = _encoder(out, width, height, request.fps, request.crf)
        assert encoder.stdin is not None
        try:
            frames = read_frames(["-i", str(source)], request.width, request.height, "rgb24")
            for batch in batched(frames, request.batch_frames):
                x = torch.from_numpy(np.stack(batch)).to(parameter.device).permute(0, 3, 1, 2)  # [N, 3, H, W]
                y = upscale_tiled(model, x.to(parameter.dtype) / 255.0, request.tile, request.tile_pad)
                if y.shape[-2:] != (height, width):
                    y = F.interpolate(y.float(), size=(height, width), mode="area")
                rgb = (y.float() * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # [N, H, W, 3]
                encoder.stdin.write(np.ascontiguousarray(rgb).data)
                written += len(batch)
                reporter.heartbeat()
        except BrokenPipeError:
            pass  # the encoder died: its exit status says so below
        except BaseException:
            encoder.kill()
            encoder.wait()
            raise
        encoder.stdin.close()
        if encoder.wait() != 0 or written == 0:
            raise MediaError(f"Encoding the upscaled video failed (ffmpeg exit status {encoder.returncode}, "
                             f"{written} frames).", code="UPSCALE_FAILED")
        objects.put_file(request.output_key, out, "video/mp4")
    return result_of(request, written)


@functools.cache
def load_model() -> Any:
    import torch

    from modal_apps.nets.rrdbnet import RRDBNet
    from modal_apps.nets.weights import load_checkpoint

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_checkpoint(RRDBNet(), checkpoints.checkpoint_path("realesrgan"), device=device)
    return model.half() if device == "cuda" else model


def upscale_tiled(model: Any, frames: Any, tile: int, tile_pad: int) -> Any:
    """``frames``: [N, 3, H, W] in 0..1 (model's device and dtype) -> [N, 3, 4H, 4W] in 0..1.

    Each ``tile`` x ``tile`` tile is upscaled with ``tile_pad`` pixels of its neighbours around it, and
    only the part of the output under the tile itself is kept (as ``RealESRGANer.tile_process``).
    """
    import torch

    n, c, h, w = frames.shape
    scale = 4
    out = frames.new_zeros((n, c, h * scale, w * scale))
    with torch.inference_mode():
        for ty in range(math.ceil(h / tile)):
            for tx in range(math.ceil(w / tile)):
                x0, y0 = tx * tile, ty * tile
                x1, y1 = min(x0 + tile, w), min(y0 + tile, h)
                px0, py0 = max(x0 - tile_pad, 0), max(y0 - tile_pad, 0)
                px1, py1 = min(x1 + tile_pad, w), min(y1 + tile_pad, h)
                tile_out = model(frames[:, :, py0:py1, px0:px1])
                oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
                out[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = tile_out[
                    :, :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
                ]
    return out.clamp_(0, 1)


def _encoder(dst: Path, width: int, height: int, fps: int, crf: int) -> subprocess.Popen[bytes]:
    from shared.media.ffmpeg import BASE_ARGS, ffmpeg_exe

    return subprocess.Popen(
        [ffmpeg_exe(), *BASE_ARGS, "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
         "-framerate", str(fps), "-i", "pipe:0", "-an", "-c:v", "libx264", "-preset", "medium", "-crf", str(crf),
         "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", str(dst)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _temp() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="vidluxe-upscale-")
