"""Decoding the original upload chunk by chunk (plan_chunk_decode on real clips).

Chunks decoded one after another must be the frames of one decode of the whole clip: same count, same
pictures, none shifted. A mean difference below 1.0 alone cannot show a shift (neighbouring frames of a
talking head differ by less than 0.1 at this size), so every frame must also be closer to its own frame
of the whole decode than to a neighbour that differs from it. Chunk lengths are chosen so boundaries fall
between source frames (25 fps at 30 fps, variable-rate gaps) and, in clips with keyframes, after one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from shared.media.ffmpeg import BASE_ARGS, ffmpeg_exe, run_ffmpeg
from shared.media.models import Chunk, DecodeHints, MediaInfo
from shared.media.normalize import plan_chunk_decode, plan_chunks, read_decode_hints
from shared.media.probe import probe

Frames = npt.NDArray[np.int16]  # one row of yuv420p bytes per frame
W, H = 180, 320
FPS = 30
VFR = "videos/videoretalking_face1_talking.mp4"  # about 22 fps on average, first frame at 0.033 s
STUDIO_25FPS = "videos/liveportrait_s13_vertical_fullbody_studio.mp4"
LANDSCAPE = "videos/liveportrait_s18_landscape_upperbody.mp4"  # container 9.43 s, video 9.4 s
COCKATOO = "stock/imageio_cockatoo.mp4"  # x264 core 142, yuv444p, keyframes at 0, 3.8, 7.25 s
BUNNY = "stock/moviepy_big_buck_bunny_0_30.webm"  # VP8 24 fps, keyframes at 0, 0.38, 0.46, 5.8 s, ...


def _decode(args: list[str], width: int = W, height: int = H, *, quiet: bool = True) -> Frames:
    """Run a plan to raw yuv420p on a pipe; ffmpeg must not complain (decode errors are reported)."""
    command = [ffmpeg_exe(), *BASE_ARGS, *args, "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]
    result = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert not (quiet and result.stderr), result.stderr.decode(errors="replace")
    frame_bytes = width * height * 3 // 2
    assert len(result.stdout) % frame_bytes == 0
    return np.frombuffer(result.stdout, np.uint8).reshape(-1, frame_bytes).astype(np.int16)


def _differences(a: Frames, b: Frames) -> npt.NDArray[np.float64]:
    return np.asarray(np.abs(a - b).mean(axis=1), dtype=np.float64)


@dataclass(frozen=True)
class Case:
    path: Path
    seconds: float  # the part of the clip planned (from its start)
    chunk_seconds: float
    hints: bool = True
    quiet: bool = True  # False: the decoder may report errors (in frames before a chunk, never shown)


@pytest.fixture(scope="module")
def clips(testdata: Path, media_dir: Path, rotated_clip: Callable[[int], Path]) -> Iterator[dict[str, Case]]:
    """Originals, and re-encodes with a keyframe every 10 frames and B-frames, so that chunks really
    seek (the originals have one or two keyframes): a VFR one in Matroska (millisecond timestamps), and
    an open-GOP one, whose keyframes are followed by frames that refer back past them."""
    short_gop = ["-c:v", "libx264", "-preset", "veryfast", "-g", "10", "-bf", "3", "-an"]
    made = {
        "vfr-gop.mkv": ["-i", str(testdata / VFR), "-t", "3", "-fps_mode", "passthrough", *short_gop],
        "25fps-gop.mp4": ["-i", str(testdata / STUDIO_25FPS), "-t", "3", "-vf", "scale=360:540", *short_gop],
        "open-gop.mp4": [
            "-i", str(testdata / LANDSCAPE), "-t", "3", "-vf", "scale=640:360", *short_gop,
            "-x264-params", "open_gop=1",
        ],
    }  # fmt: skip
    for name, args in made.items():
        run_ffmpeg(["-y", *args, str(media_dir / name)])
    yield {
        "cfr": Case(testdata / LANDSCAPE, 3.0, 0.7),
        "vfr": Case(testdata / VFR, 7.0, 0.7),  # chunks from 5.6 s seek to the keyframe at 4.57 s
        "25fps": Case(testdata / STUDIO_25FPS, 2.0, 0.7),
        "vfr-short-gop-mkv": Case(media_dir / "vfr-gop.mkv", 3.0, 0.3),
        "25fps-short-gop": Case(media_dir / "25fps-gop.mp4", 3.0, 0.3),
        # without the seek margin, chunks start with the broken frames before an open-GOP keyframe
        "open-gop": Case(media_dir / "open-gop.mp4", 3.0, 0.3, quiet=False),
        "rotated": Case(rotated_clip(-90), 2.0, 0.5),
        "yuv444p-old-x264": Case(testdata / COCKATOO, 5.6, 2.2),  # the last chunk (4.4 s) seeks to 3.8 s
        "yuv444p-no-hints": Case(testdata / COCKATOO, 3.0, 1.0, hints=False),  # decoded from the start
        "vp8": Case(testdata / BUNNY, 7.7, 2.2),  # the last chunk (6.6 s) seeks to 5.8 s
    }


def _plan(info: MediaInfo, case: Case, chunk: Chunk, hints: DecodeHints | None) -> list[str]:
    return plan_chunk_decode(info, case.path, width=W, height=H, fps=FPS, chunk=chunk, hints=hints)


@pytest.mark.parametrize(
    "name",
    [
        "cfr", "vfr", "25fps", "vfr-short-gop-mkv", "25fps-short-gop", "open-gop", "rotated", "yuv444p-old-x264",
        "yuv444p-no-hints", "vp8",
    ],
)  # fmt: skip
def test_chunks_concatenate_to_the_whole_decode(clips: dict[str, Case], name: str) -> None:
    case = clips[name]
    info = probe(case.path)
    hints = read_decode_hints(info, case.path) if case.hints else None
    chunks = plan_chunks(min(case.seconds, info.duration_seconds), FPS, chunk_seconds=case.chunk_seconds)
    assert len(chunks) >= 3
    total = sum(chunk.frames for chunk in chunks)
    whole = _decode(_plan(info, case, Chunk(index=0, start_frame=0, frames=total), hints), quiet=case.quiet)
    assert len(whole) == total

    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(lambda chunk: _decode(_plan(info, case, chunk, hints), quiet=case.quiet), chunks))
    assert [len(part) for part in parts] == [chunk.frames for chunk in chunks]
    joined = np.concatenate(parts)
    assert len(joined) == total

    own = _differences(joined, whole)
    assert own.max() < 1.0, f"frames {np.flatnonzero(own >= 1.0).tolist()} differ from the whole decode"
    for i in range(total):
        for j in (i - 1, i + 1):
            if 0 <= j < total and _differences(whole[i : i + 1], whole[j : j + 1])[0] > 0.02:
                to_neighbour = _differences(joined[i : i + 1], whole[j : j + 1])[0]
                assert own[i] < to_neighbour, f"frame {i} looks like frame {j} of the whole decode"


def _source_ticks(path: Path) -> list[int]:
    """The output tick each source frame falls on: its time (from the container's start) x FPS, rounded
    half away from zero like ffmpeg's fps filter, in presentation order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = (container.start_time or 0) / 1e6
        assert stream.time_base is not None
        times = sorted(float(p.pts * stream.time_base) - start for p in container.demux(stream) if p.pts is not None)
    return [int(np.floor(t * FPS + 0.5)) for t in times]


@pytest.mark.parametrize(
    ("name", "size", "frames"),
    [(VFR, (350, 350), 60), (STUDIO_25FPS, (240, 360), 60)],
    ids=["vfr", "25fps"],
)
def test_frame_n_is_the_source_frame_shown_at_n_over_fps(
    testdata: Path, name: str, size: tuple[int, int], frames: int
) -> None:
    """Output frame n is, bit for bit, the last source frame at or before n/30 s (the first one before it
    starts: the VFR clip's video starts at 0.033 s and its second frame at 0.1 s, so output frames 0 to 2
    are all its first picture)."""
    src = testdata / name
    info = probe(src)
    width, height = size  # the clip's own aspect ratio: scaled only, never cropped or padded
    out = _decode(
        plan_chunk_decode(
            info, src, width=width, height=height, fps=FPS, chunk=Chunk(index=0, start_frame=0, frames=frames)
        ),
        width,
        height,
    )
    # every source frame once, through the same scaler (both clips are shrunk: bilinear)
    scale = (f"scale={width}:{height}:force_original_aspect_ratio=increase:force_divisible_by=2:flags=bilinear,"
             "format=yuv420p")
    source = _decode(["-i", str(src), "-map", "0:v:0", "-vf", f"{scale},crop={width}:{height},setsar=1",
                      "-fps_mode", "passthrough", "-frames:v", str(frames)], width, height)  # fmt: skip
    ticks = _source_ticks(src)[: len(source)]
    expected = [max([0] + [k for k, tick in enumerate(ticks) if tick <= n]) for n in range(frames)]
    if name == VFR:
        assert ticks[:3] == [1, 3, 4] and expected[:5] == [0, 0, 0, 1, 2]
        assert len(set(expected)) < frames  # gaps: some source frames are shown twice
    else:
        assert expected[:7] == [0, 1, 2, 2, 3, 4, 5]  # 25 fps at 30 fps: every fifth repeated
    mismatched = [n for n in range(frames) if not np.array_equal(out[n], source[expected[n]])]
    assert not mismatched, f"output frames {mismatched} are not the source frames expected at n/{FPS} s"


def test_a_chunk_past_the_end_of_the_video_holds_its_last_picture(testdata: Path) -> None:
    """The container (9.43 s, audio) outlasts the video (9.4 s): the plan's last frame repeats the last one."""
    src = testdata / LANDSCAPE
    info = probe(src)
    chunks = plan_chunks(info.duration_seconds, FPS, chunk_seconds=5.0)
    assert chunks[-1].end_frame == 283  # 9.426 s x 30; the video has 282 frames
    last = chunks[-1]
    frames = _decode(plan_chunk_decode(info, src, width=W, height=H, fps=FPS, chunk=last))
    assert len(frames) == last.frames
    assert np.array_equal(frames[-1], frames[-2])
    assert not np.array_equal(frames[-2], frames[-3])
