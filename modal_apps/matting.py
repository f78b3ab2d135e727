"""Person matting on a Modal GPU: MODNet (the seed's choice) or Robust Video Matting (higher quality).

``vidluxe-matting/matte_modnet`` and ``vidluxe-matting/matte_rvm`` take the Matte stage's payload
(:class:`MatteRequest`: the fields of ``shared.stages.matte.MatteInput`` plus ``output_key``) and
answer the Matte stage's output (``matte_key``, size, frame count, method), so the rest of the pipeline
cannot tell a GPU matte from a local one. The chunk is decoded exactly as the local stage decodes it
(:func:`shared.media.render.person_chain` into :func:`shared.media.normalize.plan_chunk_through`,
ffmpeg from imageio-ffmpeg), at the matte's size (the person's box times ``matte_scale``), and the
matte is written as the same grayscale, full-range H.264 video (``-crf 12``, ``ultrafast``).

Frames go through the network ``batch_frames`` at a time. RVM is recurrent: its four ConvGRU states
are carried from one batch to the next (``fgr, pha, *rec = model(src, *rec, ...)``), starting from zero
at the chunk's first frame. MODNet sees each frame on its own.

Started by ``functions/gpu_dispatch.py`` with a task token, the function heartbeats while it works and
reports with SendTaskSuccess/SendTaskFailure (:mod:`modal_apps.gpu`). The output key is the commit
point: when it exists, the result is answered without matting again (a preempted attempt may have
finished). Licenses: MODNet's weights are CC BY-NC-SA 4.0 (non-commercial), RVM is GPL-3.0; see README.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Literal, Protocol

import modal
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modal_apps import checkpoints
from modal_apps.gpu import GpuEnvironment, TaskReporter, batched, run_reported

U8 = NDArray[np.uint8]
Method = Literal["modnet", "rvm"]
METHODS: dict[str, str] = {"modnet": "modnet-photographic", "rvm": "rvm-mobilenetv3"}
X264_PRESET, X264_CRF = "ultrafast", 12  # as shared.media.matting writes mattes (a test keeps them equal)

app = modal.App("vidluxe-matting")

image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install(
        "torch==2.13.0", "numpy==1.26.4", "pydantic==2.13.4", "av==18.1.0", "imageio-ffmpeg==0.8.1",
        "boto3==1.43.11",
    )
    .run_function(checkpoints.download_matting)  # baked into the image: no download per request
    .add_local_python_source("shared", "modal_apps")
)

GPU_FUNCTION = dict(
    image=image,
    gpu="L4",  # 24 GB, Ada: a 5 s chunk at 1080p-box/2 mattes in well under a minute
    timeout=15 * 60,
    retries=modal.Retries(max_retries=2, initial_delay=5.0, backoff_coefficient=2.0),
    scaledown_window=120,  # scale to zero two minutes after the last chunk
    max_containers=20,
    secrets=[modal.Secret.from_name("vidluxe-aws")],
)


@app.function(**GPU_FUNCTION)
def matte_modnet(request: dict[str, Any], task_token: str | None = None) -> dict[str, Any]:
    return serve("modnet", request, task_token, GpuEnvironment.from_env())


@app.function(**GPU_FUNCTION)
def matte_rvm(request: dict[str, Any], task_token: str | None = None) -> dict[str, Any]:
    return serve("rvm", request, task_token, GpuEnvironment.from_env())


@app.local_entrypoint()
def main(request_json: str, method: str = "modnet") -> None:
    """``modal run modal_apps/matting.py --request-json "$(cat request.json)"``: one chunk, no token."""
    import json

    function = matte_rvm if method == "rvm" else matte_modnet
    print(function.remote(json.loads(request_json)))


# ---------------------------------------------------------------------------------------------------------
# The request and the work


class MatteRequest(BaseModel):
    """The Matte stage's payload (extra fields such as ``keyframe_interval`` are ignored) plus where the
    matte goes and GPU batching options."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: str
    source_key: str
    output_key: str
    media: Any  # shared.media.models.MediaInfo, validated in parse_request
    hints: Any = None  # DecodeHints
    width: int = Field(ge=2)
    height: int = Field(ge=2)
    fps: int = Field(ge=1, le=120)
    person_scale: float = Field(default=0.88, gt=0.2, le=1.0)
    matte_scale: float = Field(default=0.5, ge=0.25, le=1.0)
    chunk: Any  # Chunk
    batch_frames: int = Field(default=16, ge=1, le=256)
    model_size: int = Field(default=512, ge=32, le=2048)  # MODNet's reference side; RVM's downsample target


def parse_request(payload: dict[str, Any]) -> MatteRequest:
    """Raises InvalidInputError (GPU_REQUEST_INVALID) when the payload is not a matte request."""
    from shared.errors import InvalidInputError
    from shared.media.models import Chunk, DecodeHints, MediaInfo

    try:
        request = MatteRequest.model_validate(payload)
        return request.model_copy(update={
            "media": MediaInfo.model_validate(request.media),
            "hints": DecodeHints.model_validate(request.hints or {}),
            "chunk": Chunk.model_validate(request.chunk),
        })
    except ValidationError as exc:
        raise InvalidInputError(
            f"Not a matte request: {exc.errors(include_url=False)}", code="GPU_REQUEST_INVALID"
        ) from None


def matte_size(request: MatteRequest) -> tuple[int, int]:
    """The matte's (width, height): the person's box times ``matte_scale``, even sides, as the local stage."""
    from shared.media.render import even, person_box

    box = person_box(request.width, request.height, request.person_scale)
    return even(box.width * request.matte_scale), even(box.height * request.matte_scale)


def result_of(request: MatteRequest, method: Method) -> dict[str, Any]:
    """The Matte stage's output for a finished matte (deterministic in the request, so a stored matte
    found on a retry gets the same answer)."""
    width, height = matte_size(request)
    return {
        "chunk": request.chunk.model_dump(), "matte_key": request.output_key, "width": width, "height": height,
        "method": METHODS[method], "frames": request.chunk.frames, "keyframes": request.chunk.frames,
    }


class FrameMatter(Protocol):
    """RGB frames ([T, H, W, 3] uint8) in, alphas ([T, H, W] uint8) out; ``state`` is the recurrent state
    from the previous batch of the same chunk (None at its start), returned updated."""

    def __call__(self, frames: U8, state: Any) -> tuple[U8, Any]: ...


def serve(method: Method, payload: dict[str, Any], task_token: str | None, env: GpuEnvironment,
          *, matter: FrameMatter | None = None) -> dict[str, Any]:
    """The body of both Modal functions. ``matter`` defaults to the baked checkpoint on this machine's
    GPU (or CPU); tests pass random-weight networks of the real architectures."""
    reporter = TaskReporter(env.stepfunctions, task_token)
    request: MatteRequest | None = None

    def done() -> dict[str, Any] | None:
        nonlocal request
        request = parse_request(payload)
        return result_of(request, method) if env.objects.exists(request.output_key) else None

    def work(reporter: TaskReporter) -> dict[str, Any]:
        assert request is not None
        return matte_chunk(request, method, env.objects, reporter, matter or load_matter(method, request.model_size))

    return run_reported(reporter, work, done=done)


def matte_chunk(request: MatteRequest, method: Method, objects: Any, reporter: TaskReporter,
                matter: FrameMatter) -> dict[str, Any]:
    """Decode the chunk, matte it in batches, store the matte at ``output_key``; returns the result.

    Raises MediaError when decoding or encoding fails, InvalidInputError for a source without video.
    """
    from shared.errors import MediaError
    from shared.media.frames import read_frames
    from shared.media.normalize import plan_chunk_through
    from shared.media.render import person_chain

    width, height = matte_size(request)
    chain = person_chain(request.media, request.chunk, size=(width, height), fps=request.fps)
    with tempfile.TemporaryDirectory(prefix="vidluxe-matte-") as scratch, \
            objects.local_copy(request.source_key) as source:
        decode = plan_chunk_through(request.media, source, chain=chain, fps=request.fps, chunk=request.chunk,
                                    hints=request.hints)
        out = Path(scratch) / "matte.mp4"
        written, state = 0, None
        with GrayVideoWriter(out, width, height, request.fps) as writer:
            for batch in batched(read_frames(decode, width, height, "rgb24"), request.batch_frames):
                alphas, state = matter(np.stack(batch), state)  # [T, H, W, 3] -> [T, H, W]
                for alpha in alphas:
                    writer.write(alpha)
                written += len(batch)
                reporter.heartbeat()
        if written != request.chunk.frames:
            raise MediaError(f"The chunk decoded to {written} frames, not {request.chunk.frames}.",
                             code="MATTING_FAILED")
        objects.put_file(request.output_key, out, "video/mp4")
    return result_of(request, method)


class GrayVideoWriter:
    """8-bit gray frames into ffmpeg's stdin, encoded as shared.media.matting encodes mattes."""

    def __init__(self, dst: Path, width: int, height: int, fps: int) -> None:
        from shared.media.ffmpeg import BASE_ARGS, ffmpeg_exe

        self._size = (height, width)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._process = subprocess.Popen(
            [ffmpeg_exe(), *BASE_ARGS, "-y", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{width}x{height}",
             "-framerate", str(fps), "-i", "pipe:0", "-an", "-c:v", "libx264", "-preset", X264_PRESET,
             "-crf", str(X264_CRF), "-pix_fmt", "gray", "-color_range", "pc", "-movflags", "+faststart",
             "-f", "mp4", str(dst)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
        )

    def write(self, alpha: U8) -> None:
        if alpha.shape != self._size or alpha.dtype != np.uint8:
            raise ValueError(f"matte frame {alpha.dtype} {alpha.shape}, expected uint8 {self._size}")
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(np.ascontiguousarray(alpha).data)
        except BrokenPipeError:
            self.close()

    def close(self) -> None:
        from shared.errors import MediaError

        if self._process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.close()
        status = self._process.wait()
        self._log.seek(0)
        log = self._log.read().decode("utf-8", "replace")[-2000:]
        self._log.close()
        if status != 0:
            raise MediaError(f"Encoding the matte failed (ffmpeg exit status {status}):\n{log}", code="MATTING_FAILED")

    def __enter__(self) -> GrayVideoWriter:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if exc is not None:
            self._process.kill()
            with contextlib.suppress(Exception):
                self.close()
            return
        self.close()


# ---------------------------------------------------------------------------------------------------------
# The networks on the device


class ModnetMatter:
    """MODNet per frame: RGB -> -1..1 at :func:`modnet_input_size`, matte resized back (bilinear)."""

    def __init__(self, model: Any, device: str, reference: int = 512) -> None:
        self.model, self.device, self.reference = model, device, reference

    def __call__(self, frames: U8, state: Any) -> tuple[U8, Any]:
        import torch
        import torch.nn.functional as F

        from modal_apps.nets.modnet import modnet_input_size

        h, w = frames.shape[1:3]
        size = modnet_input_size(w, h, self.reference)
        with torch.inference_mode():
            x = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float() / 255.0  # [T, 3, H, W]
            x = F.interpolate(x * 2 - 1, size=(size[1], size[0]), mode="area")
            _, _, matte = self.model(x, True)  # [T, 1, h, w]
            matte = F.interpolate(matte, size=(h, w), mode="bilinear", align_corners=False)
            alphas = (matte[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        return alphas, None


class RvmMatter:
    """RVM on a batch as one clip [1, T, 3, H, W]; ``state`` is the list of four recurrent tensors."""

    def __init__(self, model: Any, device: str, target: int = 512) -> None:
        self.model, self.device, self.target = model, device, target

    def __call__(self, frames: U8, state: Any) -> tuple[U8, Any]:
        import torch

        from modal_apps.nets.rvm import auto_downsample_ratio

        h, w = frames.shape[1:3]
        ratio = auto_downsample_ratio(w, h, self.target)
        rec = state or [None] * 4
        with torch.inference_mode():
            src = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float().div(255).unsqueeze(0)
            _, pha, *rec = self.model(src, *rec, downsample_ratio=ratio)  # pha: [1, T, 1, H, W]
            alphas = (pha[0, :, 0] * 255).round().to(torch.uint8).cpu().numpy()
        return alphas, rec


@functools.cache
def load_matter(method: Method, model_size: int = 512) -> FrameMatter:
    """The baked checkpoint on the GPU (CPU when there is none), loaded once per container."""
    import torch

    from modal_apps.nets.modnet import MODNet
    from modal_apps.nets.rvm import MattingNetwork
    from modal_apps.nets.weights import load_checkpoint

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if method == "modnet":
        return ModnetMatter(load_checkpoint(MODNet(), checkpoints.checkpoint_path("modnet"), device=device),
                            device, model_size)
    return RvmMatter(load_checkpoint(MattingNetwork(), checkpoints.checkpoint_path("rvm"), device=device),
                     device, model_size)

