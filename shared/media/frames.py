"""Reading decoded frames from an ffmpeg pipe, one at a time (bounded memory)."""

from __future__ import annotations

import subprocess
from collections.abc import Generator
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from shared.errors import MediaError
from shared.media.ffmpeg import BASE_ARGS, ffmpeg_exe, wait_for_exit
from shared.storage.tasks import ResourceUsage

PixelFormat = Literal["rgb24", "gray", "yuv420p"]


def read_frames(
    decode_args: list[str],
    width: int,
    height: int,
    pix_fmt: PixelFormat = "rgb24",
    *,
    usage: ResourceUsage | None = None,
) -> Generator[NDArray[np.uint8], None, None]:
    """Yield the frames ``ffmpeg <decode_args> -f rawvideo -pix_fmt <pix_fmt> pipe:1`` writes.

    ``decode_args`` must make frames of exactly ``width`` x ``height``. Frames are [H, W, 3] for rgb24,
    [H, W] for gray and [H * 3 / 2, W] for yuv420p (even sides; the I420 layout: Y, then U, then V; see
    :func:`i420_planes`). Closing the generator early stops ffmpeg; ffmpeg's CPU seconds are added to
    ``usage`` when it has exited. Raises MediaError (FFMPEG_FAILED) when ffmpeg exits with an error.
    """
    shape = {"rgb24": (height, width, 3), "gray": (height, width), "yuv420p": (height * 3 // 2, width)}[pix_fmt]
    size = int(np.prod(shape))
    command = [ffmpeg_exe(), *BASE_ARGS, *decode_args, "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    finished = False
    try:
        while True:
            data = process.stdout.read(size)
            if len(data) < size:
                break
            yield np.frombuffer(data, dtype=np.uint8).reshape(shape)
        finished = True
    finally:
        if not finished:
            process.kill()
        process.stdout.close()
        stderr = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        code, cpu_seconds = wait_for_exit(process)
        if usage is not None:
            usage.cpu_seconds += cpu_seconds
    if finished and code != 0:
        raise MediaError(f"ffmpeg could not decode frames: {stderr.strip()[-500:]}", code="FFMPEG_FAILED")


def i420_planes(frame: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]]:
    """Views of the Y, U and V planes of a [H * 3 / 2, W] yuv420p frame from :func:`read_frames`."""
    width, height = frame.shape[1], frame.shape[0] * 2 // 3
    chroma = frame[height:].reshape(2, height // 2, width // 2)
    return frame[:height], chroma[0], chroma[1]
