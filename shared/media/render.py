"""The ffmpeg renderer: draws one chunk of a CompositionSpec in a single ffmpeg pass.

:func:`plan_render_chunk` is pure: it turns the spec, a chunk index and local file paths into ffmpeg
arguments. The person layer comes in on ffmpeg's stdin as raw yuva420p frames of the person's box (see
:mod:`shared.media.person`: decoded once, matted or paired with a stored matte, edges feathered).
Stills (background, overlays, text cards) are prepared once (scaled, converted) and repeated in memory
by the ``loop`` filter; only cheap per-frame work remains: a crop for the background drift, overlays
and a lookup-table grade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from numpy.typing import NDArray

from shared.composition import CompositionSpec, Effects, TextLayer
from shared.media.models import Chunk, MediaInfo
from shared.media.normalize import fit_filter, hold_last_frame, plan_chunk_through

ENCODER = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-profile:v", "high")

# Grade presets as (contrast, brightness in Y levels, saturation, warmth) at full intensity; warmth shifts
# chroma toward orange (positive) or teal (negative) in U/V levels.
GRADES: dict[str, tuple[float, float, float, float]] = {
    "none": (1.0, 0.0, 1.0, 0.0),
    "warm": (1.04, 2.0, 1.08, 5.0),
    "cool": (1.05, 0.0, 0.95, -5.0),
    "cinematic": (1.12, -4.0, 0.9, 3.0),
    "luxury": (1.1, -3.0, 0.92, 4.0),
    "fresh": (1.03, 4.0, 1.1, -2.0),
    "soft": (0.94, 4.0, 0.92, 1.0),
}


def grade_filter(effects: Effects, *, chroma_shift: tuple[float, float] = (0.0, 0.0)) -> str | None:
    """A ``lutyuv`` filter for the grade (pure); None when it would change nothing.

    ``chroma_shift`` adds (U, V) level offsets, used to pull the person toward the background's color.
    """
    contrast, brightness, saturation, warmth = GRADES[effects.grade]
    k = effects.intensity if effects.grade != "none" else 0.0
    contrast, brightness = 1 + (contrast - 1) * k, brightness * k
    saturation, warmth = 1 + (saturation - 1) * k, warmth * k
    du, dv = -warmth * 0.6 + chroma_shift[0], warmth + chroma_shift[1]
    if contrast == 1 and brightness == 0 and saturation == 1 and du == 0 and dv == 0:
        return None
    y = f"clip((val-128)*{contrast:.4f}+128+{brightness:.3f},16,235)"
    u = f"clip((val-128)*{saturation:.4f}+128+{du:.3f},16,240)"
    v = f"clip((val-128)*{saturation:.4f}+128+{dv:.3f},16,240)"
    return f"lutyuv=y='{y}':u='{u}':v='{v}'"


def graded_person_filter(effects: Effects, chroma_shift: tuple[float, float]) -> str | None:
    """The person's ``lutyuv``: the chroma shift toward the background, then the grade, as one table (pure).

    The grade is affine per plane, so grading every layer before they are blended equals grading the
    blend (up to the clipping at 16..235/240): the renderer grades the stills once, before they are
    looped, and the person here, instead of every composited frame. Shifting by s before a saturation
    gain g shifts the graded value by s*g.
    """
    _, _, saturation, _ = GRADES[effects.grade]
    gain = 1 + (saturation - 1) * (effects.intensity if effects.grade != "none" else 0.0)
    return grade_filter(effects, chroma_shift=(chroma_shift[0] * gain, chroma_shift[1] * gain))


@dataclass(frozen=True)
class Box:
    """Where the person layer sits in the frame: its top-left corner and its (even) size, in pixels."""

    x: int
    y: int
    width: int
    height: int

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def person_box(width: int, height: int, scale: float) -> Box:
    """The person's box in a ``width`` x ``height`` frame: a ``scale`` share of it, bottom-centre.

    Headroom for the title above, and the person stands on the frame's lower edge. Sides are multiples
    of 4, so a half-size matte is an exact 2:1 reduction of the layer, chroma included (OpenCV's area
    filter is several times faster at exactly 1/2).
    """
    if scale >= 1.0:
        return Box(0, 0, width, height)
    box_w, box_h = (max(4, min(side, round(side * scale / 4) * 4)) for side in (width, height))
    return Box((width - box_w) // 2, height - box_h, box_w, box_h)


def person_chain(media: MediaInfo, chunk: Chunk, *, size: tuple[int, int], fps: int) -> str:
    """The filter chain that decodes the upload into the person layer at ``size`` (pure).

    The upload is fitted upright (cover, centred) into ``size``: the person's box or a scaled copy of it
    (the matte's size). The matte stage, the renderer and the QA use this chain, so mattes and frames line
    up pixel for pixel. The chunk's last picture is held if the video ends a frame or two before its
    container does.
    """
    return f"{fit_filter(media, width=size[0], height=size[1], fps=fps)},{hold_last_frame(chunk)}"


def edge_feather(box: Box, frame: tuple[int, int], size: tuple[int, int]) -> NDArray[np.uint8] | None:
    """A 0..255 ramp over the person layer at ``size`` (the box, or the matte's smaller copy of it) that
    fades the alpha out along the box's sides and top where they lie inside the ``frame``; None when the
    box fills the frame.

    A fitted upload ends in straight edges (a shoulder cut by the frame of the phone video); fading the
    alpha over 4% of the frame's width there hides the cut. The bottom edge is the frame's own.
    """
    if box.size == frame:
        return None
    feather = max(2.0, 0.04 * frame[0])
    width, height = size
    # centres of the layer's pixels, in box pixels
    xs = (np.arange(width, dtype=np.float32) + 0.5) * (box.width / width)
    ys = (np.arange(height, dtype=np.float32) + 0.5) * (box.height / height)
    across = np.minimum(xs, box.width - xs) / feather
    down = ys / feather
    ramp = np.clip(np.minimum(across[None, :], down[:, None]), 0.0, 1.0)
    return cast(NDArray[np.uint8], np.round(ramp * 255).astype(np.uint8))


def plan_person_decode(
    spec: CompositionSpec, index: int, source: Path, size: tuple[int, int], *, threads: int | None = None
) -> list[str]:
    """ffmpeg input and filter arguments decoding chunk ``index`` of the upload into the person layer
    at ``size`` (the box, or the matte's size), for a raw-frame pipe (pure). ``threads``: the decoder's
    (None: ffmpeg's choice)."""
    chunk, person = spec.chunks[index], spec.person
    chain = person_chain(person.media, chunk, size=size, fps=spec.fps)
    decode = plan_chunk_through(person.media, source, chain=chain, fps=spec.fps, chunk=chunk, hints=person.hints)
    return decode if threads is None else ["-threads", str(threads), *decode]


def plan_render_chunk(
    spec: CompositionSpec,
    index: int,
    files: Mapping[str, Path],
    out: Path,
    *,
    person_chroma_shift: tuple[float, float] = (0.0, 0.0),
    threads: int | None = None,
) -> list[str]:
    """ffmpeg arguments rendering chunk ``index`` of ``spec`` to ``out`` (video only, no audio).

    The person layer is read from stdin: raw yuva420p frames of :func:`person_box`'s size at the spec's
    frame rate. ``files`` maps every other object key the spec names to a local path. ``threads``: the
    encoder's (None: x264's choice). Raises KeyError for a missing file and IndexError for a chunk the
    spec does not have.
    """
    chunk = spec.chunks[index]
    fps, width, height = spec.fps, spec.width, spec.height
    t0 = chunk.start_frame / fps
    still = f"loop=loop=-1:size=1:start=0,setpts=N/{fps}/TB"
    box = person_box(width, height, spec.person.scale)

    args = ["-f", "rawvideo", "-pix_fmt", "yuva420p", "-s", f"{box.width}x{box.height}", "-framerate", str(fps),
            "-i", "pipe:0", "-i", str(files[spec.background.key])]
    # Each layer is graded on its own (see graded_person_filter): the stills once, before they loop.
    person_grade = graded_person_filter(spec.effects, _scaled(person_chroma_shift, spec))
    grade = grade_filter(spec.effects)
    graded = f"{grade}," if grade else ""
    graph = [
        f"[0:v]{person_grade or 'null'}[person]",
        f"[1:v]{_background_chain(spec, t0, graded)}[bg]",
        f"[bg][person]overlay={box.x}:{box.y}:format=yuv420:shortest=1[l0]",
    ]
    last, stream = "l0", 2
    for overlay in spec.overlays:
        args += ["-i", str(files[overlay.key])]
        fade = f",colorchannelmixer=aa={overlay.opacity:.3f}" if overlay.opacity < 1 else ""
        graph.append(f"[{stream}:v]scale={width}:{height},format=yuva420p{fade},{graded}{still}[o{stream}]")
        graph.append(f"[{last}][o{stream}]overlay=0:0:format=yuv420:shortest=1[l{stream}]")
        last, stream = f"l{stream}", stream + 1
    for text in _texts_in(spec.texts, t0, t0 + chunk.frames / fps):
        args += ["-i", str(files[text.key])]
        start, end = text.start - t0, text.end - t0
        # A fade that began in an earlier chunk is over by now (the planner keeps fades inside chunks).
        fades = [f"fade=t=in:st={start:.3f}:d={text.fade_in:.3f}:alpha=1"] if start >= 0 else []
        fade_out = end - text.fade_out
        if fade_out >= 0:
            fades.append(f"fade=t=out:st={fade_out:.3f}:d={text.fade_out:.3f}:alpha=1")
        graph.append(f"[{stream}:v]format=yuva420p,{graded}" + ",".join([still, *fades]) + f"[t{stream}]")
        graph.append(
            f"[{last}][t{stream}]overlay=0:{text.y}:format=yuv420:shortest=1:"
            f"enable='between(t,{max(start, 0):.3f},{end:.3f})'[l{stream}]"
        )
        last, stream = f"l{stream}", stream + 1
    graph.append(f"[{last}]format=yuv420p[vout]")
    return [
        *args, "-filter_complex", ";".join(graph), "-map", "[vout]", "-an", "-sn",
        "-frames:v", str(chunk.frames), "-r", str(fps), *ENCODER, "-g", str(2 * fps),
        *(["-threads", str(threads)] if threads is not None else []), "-f", "mp4", "-y", str(out),
    ]


def plan_assemble(concat_list: Path, media_source: Path | None, audio_index: int | None, out: Path) -> list[str]:
    """ffmpeg arguments joining rendered chunks without re-encoding and adding the source's audio (pure).

    ``concat_list`` is the path the caller writes :func:`concat_list_text` to.
    """
    args = ["-f", "concat", "-safe", "0", "-i", str(concat_list)]
    if media_source is not None and audio_index is not None:
        args += ["-i", str(media_source), "-map", "0:v:0", "-map", f"1:{audio_index}",
                 "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", "-af", "aresample=async=1:first_pts=0",
                 "-shortest"]
    else:
        args += ["-map", "0:v:0"]
    return [*args, "-c:v", "copy", "-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", "-y", str(out)]


def concat_list_text(chunk_files: list[Path]) -> str:
    """The concat demuxer's list file for ``chunk_files``, with paths quoted as the demuxer requires."""
    return "".join("file '" + str(path).replace("'", "'\\''") + "'\n" for path in chunk_files)


def _background_chain(spec: CompositionSpec, t0: float, graded: str = "") -> str:
    """Scale (and grade: ``graded`` is a filter and a comma, or empty) the still once, then drift a crop
    window across it (cheap per frame, no rescaling)."""
    width, height, fps = spec.width, spec.height, spec.fps
    still = f"loop=loop=-1:size=1:start=0,setpts=N/{fps}/TB"
    motion = spec.background.motion
    if motion is None or motion.scale <= 1.0:
        return f"scale={width}:{height},setsar=1,format=yuv420p,{graded}{still}"
    big_w, big_h = even(width * motion.scale), even(height * motion.scale)
    progress = f"((t+{t0:.4f})/{spec.duration_seconds:.4f})"
    x = f"(iw-ow)/2*(1+{motion.pan_x:.3f}*(2*{progress}-1))"
    y = f"(ih-oh)/2*(1+{motion.pan_y:.3f}*(2*{progress}-1))"
    return f"scale={big_w}:{big_h},setsar=1,format=yuv420p,{graded}{still},crop={width}:{height}:'{x}':'{y}'"


def _texts_in(texts: list[TextLayer], start: float, end: float) -> list[TextLayer]:
    return [text for text in texts if text.start < end and text.end > start]


def _scaled(shift: tuple[float, float], spec: CompositionSpec) -> tuple[float, float]:
    return shift[0] * spec.person.color_match, shift[1] * spec.person.color_match


def even(value: float) -> int:
    """The nearest even integer >= 2: sizes of yuv420p frames must be even."""
    return max(2, round(value / 2) * 2)
