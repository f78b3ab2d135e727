"""Image-to-video on a Modal GPU: Stable Video Diffusion (img2vid-xt), for animated backgrounds.

``vidluxe-i2v/animate_image`` takes a still (``image_key``, e.g. a generated background) and writes a short
H.264 clip to ``output_key``: ``num_frames`` frames at ``fps``, ``width`` x ``height`` (SVD's native
1024x576 or its portrait 576x1024), with SVD's motion controls (``motion_bucket_id``,
``noise_aug_strength``) and a seed, so a retried request renders the same clip. Like every GPU function
here it is idempotent by output key and reports to a Step Functions task token.

What has run: the request validation, the image preparation (cover-fit to the size), the encoding of
whatever frames the pipeline returns, idempotency and reporting, with a fake pipeline on the CPU.
What has not: diffusers' ``StableVideoDiffusionPipeline`` itself (no diffusers, GPU or SVD weights
here). The weights are gated on Hugging Face (accept the Stability AI Community License, then give the
build a token through the Modal secret ``huggingface``); that license allows commercial use below its
revenue threshold only.
"""

from __future__ import annotations

import functools
import io
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Literal, Protocol

import modal
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modal_apps.gpu import GpuEnvironment, TaskReporter, run_reported

SVD = "stabilityai/stable-video-diffusion-img2vid-xt"
WEIGHTS = "/weights/hf"

app = modal.App("vidluxe-i2v")


def download_svd() -> None:
    """Build step: SVD-XT's fp16 safetensors into the image (needs HF_TOKEN from the secret)."""
    from huggingface_hub import snapshot_download

    snapshot_download(SVD, cache_dir=WEIGHTS, allow_patterns=["*.json", "*fp16.safetensors"])


image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install(
        "torch==2.13.0", "numpy==1.26.4", "pydantic==2.13.4", "pillow==13.0.0", "av==18.1.0",
        "imageio-ffmpeg==0.8.1", "boto3==1.43.11", "diffusers==0.31.0", "transformers==4.46.3",
        "accelerate==1.1.1", "huggingface_hub==0.26.2", "safetensors==0.4.5",
    )
    .run_function(download_svd, secrets=[modal.Secret.from_name("huggingface")])
    .add_local_python_source("shared", "modal_apps")
)


@app.function(
    image=image,
    gpu="A100-40GB",  # SVD-XT at 1024x576, 25 frames, decode_chunk_size 8 in fp16: ~20 GB
    timeout=15 * 60,
    retries=modal.Retries(max_retries=2, initial_delay=5.0, backoff_coefficient=2.0),
    scaledown_window=60,
    max_containers=4,
    secrets=[modal.Secret.from_name("vidluxe-aws")],
)
def animate_image(request: dict[str, Any], task_token: str | None = None) -> dict[str, Any]:
    return serve(request, task_token, GpuEnvironment.from_env())


class AnimateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str
    image_key: str
    output_key: str
    width: Literal[1024, 576] = 1024
    height: Literal[576, 1024] = 576
    num_frames: int = Field(default=25, ge=2, le=25)  # SVD-XT was trained on 25
    fps: int = Field(default=7, ge=1, le=30)  # also SVD's fps conditioning (it was trained around 6-7)
    motion_bucket_id: int = Field(default=80, ge=1, le=255)  # calm: a background, not an action shot
    noise_aug_strength: float = Field(default=0.02, ge=0.0, le=1.0)
    decode_chunk_size: int = Field(default=8, ge=1, le=25)
    num_inference_steps: int = Field(default=25, ge=1, le=100)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _one_of_svd_sizes(self) -> AnimateRequest:
        if self.width == self.height:
            raise ValueError("SVD renders 1024x576 or 576x1024")
        return self


class VideoPipeline(Protocol):
    """diffusers' StableVideoDiffusionPipeline, called as below; returns ``.frames[0]``: PIL images."""

    def __call__(self, image: Any, **kwargs: Any) -> Any: ...


def parse_request(payload: dict[str, Any]) -> AnimateRequest:
    from shared.errors import InvalidInputError

    try:
        return AnimateRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidInputError(
            f"Not an image-to-video request: {exc.errors(include_url=False)}", code="GPU_REQUEST_INVALID"
        ) from None


def result_of(request: AnimateRequest) -> dict[str, Any]:
    return {"video_key": request.output_key, "width": request.width, "height": request.height,
            "frames": request.num_frames, "fps": request.fps, "method": "svd-img2vid-xt"}


def serve(payload: dict[str, Any], task_token: str | None, env: GpuEnvironment, *,
          pipeline: VideoPipeline | None = None) -> dict[str, Any]:
    reporter = TaskReporter(env.stepfunctions, task_token)
    request: AnimateRequest | None = None

    def done() -> dict[str, Any] | None:
        nonlocal request
        request = parse_request(payload)
        return result_of(request) if env.objects.exists(request.output_key) else None

    def work(reporter: TaskReporter) -> dict[str, Any]:
        assert request is not None
        return animate(request, env.objects, reporter, pipeline or load_pipeline())

    return run_reported(reporter, work, done=done)


def animate(request: AnimateRequest, objects: Any, reporter: TaskReporter, pipeline: VideoPipeline
            ) -> dict[str, Any]:
    """Raises InvalidInputError (IMAGE_NOT_READABLE) for a still that is not an image, MediaError when the
    pipeline's frames are not the asked ones or encoding fails."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    from shared.errors import InvalidInputError, MediaError

    try:
        with Image.open(io.BytesIO(objects.get_bytes(request.image_key))) as opened:
            still = ImageOps.fit(ImageOps.exif_transpose(opened).convert("RGB"), (request.width, request.height))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInputError(f"{request.image_key} is not a readable image ({exc}).",
                                code="IMAGE_NOT_READABLE") from None
    reporter.heartbeat()
    generator = _generator(request.seed)
    frames = pipeline(
        still, height=request.height, width=request.width, num_frames=request.num_frames, fps=request.fps,
        motion_bucket_id=request.motion_bucket_id, noise_aug_strength=request.noise_aug_strength,
        decode_chunk_size=request.decode_chunk_size, num_inference_steps=request.num_inference_steps,
        generator=generator,
    ).frames[0]
    reporter.heartbeat()
    size = (request.width, request.height)
    if len(frames) != request.num_frames or any(frame.size != size for frame in frames):
        raise MediaError(f"The pipeline returned {len(frames)} frames, not {request.num_frames} of {size}.",
                         code="I2V_FAILED")
    with tempfile.TemporaryDirectory(prefix="vidluxe-i2v-") as scratch:
        out = Path(scratch) / "clip.mp4"
        raw = b"".join(np.asarray(frame.convert("RGB"), dtype=np.uint8).tobytes() for frame in frames)
        _encode(raw, out, size, request.fps)
        objects.put_file(request.output_key, out, "video/mp4")
    return result_of(request)


def _generator(seed: int) -> Any:
    try:
        import torch
    except ImportError:  # the fake pipelines of the tests need none
        return None
    return torch.Generator("cuda" if torch.cuda.is_available() else "cpu").manual_seed(seed)


def _encode(raw: bytes, out: Path, size: tuple[int, int], fps: int) -> None:
    from shared.errors import MediaError
    from shared.media.ffmpeg import BASE_ARGS, ffmpeg_exe

    result = subprocess.run(
        [ffmpeg_exe(), *BASE_ARGS, "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}",
         "-framerate", str(fps), "-i", "pipe:0", "-an", "-c:v", "libx264", "-preset", "medium", "-crf", "16",
         "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", str(out)],
        input=raw, capture_output=True, check=False,
    )
    if result.returncode != 0:
        raise MediaError(f"Encoding the clip failed: {result.stderr.decode(errors='replace')[-1000:]}",
                         code="I2V_FAILED")


@functools.cache
def load_pipeline() -> VideoPipeline:
    import torch
    from diffusers import StableVideoDiffusionPipeline

    pipe = StableVideoDiffusionPipeline.from_pretrained(
        SVD, cache_dir=WEIGHTS, torch_dtype=torch.float16, variant="fp16"
    ).to("cuda")
    pipe.unet.to(memory_format=torch.channels_last)
    return pipe  # type: ignore[no-any-return]
