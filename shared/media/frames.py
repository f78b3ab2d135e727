"""Reading decoded frames from an ffmpeg pipe, one at a time (bounded memory)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from shared.errors import MediaError
from shared.media.ffmpeg import BASE_ARGS, ffmpeg_exe

PixelFormat = Literal["rgb24", "gray"]
_CHANNELS = {"rgb24": 3, "gray": 1}


def read_frames(
    decode_args: list[str], width: int, height: int, pix_fmt: PixelFormat = "rgb24"
) -> Iterator[NDArray[np.uint8]]:
    """Yield the frames ``ffmpeg <decode_args> -f rawvideo -pix_fmt <pix_fmt> pipe:1`` writes.

    ``decode_args`` must make frames of exactly ``width`` x ``height``. Frames are [H, W, 3] for rgb24
    and [H, W] for gray. Closing the generator early stops ffmpeg. Raises MediaError (FFMPEG_FAILED)
    when ffmpeg exits with an error.
    """
    channels = _CHANNELS[pix_fmt]
    size = width * height * channels
    command = [ffmpeg_exe(), *BASE_ARGS, *decode_args, "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    finished = False
    try:
        while True:
            data = process.stdout.read(size)
            if len(data) < size:
                break
            frame = np.frombuffer(data, dtype=np.uint8)
            yield frame.reshape((height, width, channels)) if channels > 1 else frame.reshape((height, width))
        finished = True
    finally:
        if not finished:
            process.kill()
        process.stdout.close()
        stderr = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        code = process.wait()
    if finished and code != 0:
        raise MediaError(f"ffmpeg could not decode frames: {stderr.strip()[-500:]}", code="FFMPEG_FAILED")
