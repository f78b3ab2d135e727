"""The person layer of one chunk, streamed into the renderer: each decoded frame with its alpha.

The renderer's ffmpeg reads the layer on its stdin as raw yuva420p frames of the person's box
(:func:`shared.media.render.plan_render_chunk`). The upload is decoded once, at the box's size, and
the alpha comes from one of two places:

* :func:`matte_layer`: the local model mattes the frames as they are decoded (at the matte's smaller
  size), so one decode serves matting and rendering, and no matte file is written or read back;
* :func:`stored_matte_layer`: a matte video the Matte stage made (for example on a GPU provider),
  decoded beside the frames.

Either way :class:`PersonLayerWriter` feathers the alpha along the box's inner edges, enlarges it to
the box and writes it after the frame's planes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO, Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from shared.composition import CompositionSpec
from shared.errors import MediaError
from shared.media.frames import i420_planes, read_frames
from shared.media.matting import MatteStats, Planes, matte_into
from shared.media.render import Box, edge_feather, even, person_box, plan_person_decode
from shared.storage.tasks import ResourceUsage

U8 = NDArray[np.uint8]


class PersonLayerWriter:
    """A :class:`~shared.media.matting.MatteSink` that writes yuva420p frames of the box to ``stream``.

    Frames must be at the box's size; the alpha may be smaller (it is feathered at its own size, which
    is cheaper, then enlarged bilinearly: mattes are soft).
    """

    def __init__(self, stream: IO[bytes], box: Box, frame_size: tuple[int, int]) -> None:
        self._stream = stream
        self._box = box
        self._frame_size = frame_size
        self._feathers: dict[tuple[int, int], U8 | None] = {}
        self.written = 0

    def write(self, alpha: U8, frame: Planes) -> None:
        size = (alpha.shape[1], alpha.shape[0])
        if size not in self._feathers:
            self._feathers[size] = edge_feather(self._box, self._frame_size, size)
        feather = self._feathers[size]
        if feather is not None:
            alpha = _u8(cv2.multiply(alpha, feather, scale=1 / 255))
        if size != self._box.size:
            alpha = _u8(cv2.resize(alpha, self._box.size, interpolation=cv2.INTER_LINEAR))
        for plane in (*frame, alpha):
            self._stream.write(np.ascontiguousarray(plane).data)
        self.written += 1

    def finish(self) -> None:
        self._stream.flush()

    def abort(self) -> None:
        """Nothing to remove: the renderer is stopped by the error that caused this."""

    @property
    def cpu_seconds(self) -> float:
        return 0.0  # it runs in the matting's output thread, which is measured


def matte_layer(
    spec: CompositionSpec,
    index: int,
    source: Path,
    stream: IO[bytes],
    *,
    matte_scale: float,
    keyframe_interval: int,
    cancelled: threading.Event | None = None,
    usage: ResourceUsage | None = None,
    threads: int | None = None,
) -> MatteStats:
    """Write chunk ``index``'s person layer to ``stream``, matted inline by the local model at
    ``matte_scale`` of the box. CPU outside the calling thread is added to ``usage``; ``threads``: the
    decoder's (None: ffmpeg's choice). Raises MediaError (MATTING_FAILED, MATTING_CANCELLED)."""
    box = person_box(spec.width, spec.height, spec.person.scale)
    matte_size = (even(box.width * matte_scale), even(box.height * matte_scale))
    writer = PersonLayerWriter(stream, box, (spec.width, spec.height))
    return matte_into(
        plan_person_decode(spec, index, source, box.size, threads=threads), box.size, spec.fps, writer,
        matte_size=matte_size, keyframe_interval=keyframe_interval,
        expected_frames=spec.chunks[index].frames, cancelled=cancelled, usage=usage,
    )


def stored_matte_layer(
    spec: CompositionSpec,
    index: int,
    source: Path,
    matte: Path,
    stream: IO[bytes],
    *,
    cancelled: threading.Event | None = None,
    usage: ResourceUsage | None = None,
    threads: int | None = None,
) -> int:
    """Write chunk ``index``'s person layer to ``stream`` with its alpha from the matte video ``matte``
    (any size; the last matte frame is held if it is a frame short). Returns the frames written. The
    decoders' CPU is added to ``usage``; ``threads``: the upload decoder's (None: ffmpeg's choice).

    Raises MediaError: FFMPEG_FAILED (either decode failed), MATTE_EMPTY (the matte has no frame),
    FFMPEG_CANCELLED.
    """
    box = person_box(spec.width, spec.height, spec.person.scale)
    frames_wanted = spec.chunks[index].frames
    writer = PersonLayerWriter(stream, box, (spec.width, spec.height))
    frames = read_frames(
        plan_person_decode(spec, index, source, box.size, threads=threads), *box.size, "yuv420p", usage=usage
    )
    alphas = read_frames(
        ["-i", str(matte), "-map", "0:v:0", "-vf", f"scale={box.width}:{box.height}:flags=bilinear",
         "-frames:v", str(frames_wanted)],
        *box.size, "gray", usage=usage,
    )
    alpha: U8 | None = None
    try:
        for frame in frames:
            if cancelled is not None and cancelled.is_set():
                raise MediaError("Rendering was stopped: the task was cancelled.", code="FFMPEG_CANCELLED")
            alpha = next(alphas, alpha)
            if alpha is None:
                raise MediaError(f"The matte {matte.name} has no frame.", code="MATTE_EMPTY")
            writer.write(alpha, i420_planes(frame))
    finally:
        frames.close()
        alphas.close()
    writer.finish()
    return writer.written


def _u8(array: Any) -> U8:
    """Typing only: OpenCV's stubs return a generic array."""
    return cast(U8, array)
