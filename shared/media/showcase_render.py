"""The product showcase's ffmpeg planner (pure): a backdrop, products that enter, breathe and catch a light
sweep, and a title that fades in, drawn in one ffmpeg pass per output format.

Every still (backdrop, cutouts, shadows, the sweep strip, the title card) is decoded once and repeated in
memory by the ``loop`` filter. Per frame, only small images are touched: each cutout (already at its
display size) is rescaled by a slow +-2% "breath", the sweep strip slides across it, and the result is
overlaid at a position given by an ease-out expression (the entrance). The backdrop drifts by a crop
window over a slightly larger still, which costs no scaling per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.media.render import ENCODER

ENTRANCE_SECONDS = 0.9
EXIT_SECONDS = 0.45
BREATH_SECONDS = 4.0  # one slow in-and-out
BREATH_AMPLITUDE = 0.02
SWEEP_SECONDS = 1.1
TITLE_FADE_SECONDS = 0.8
BACKDROP_DRIFT = 1.04  # the backdrop still is this much larger than the frame; a crop window drifts over it
GIF_WIDTH = 480
GIF_FPS = 12


@dataclass(frozen=True)
class ProductShot:
    """One product on screen from ``start`` to ``end`` seconds.

    ``x`` is the horizontal centre, ``base_y`` the line the product stands on (it breathes upward from
    it); ``rise`` how far below its place it starts its entrance, in pixels.
    """

    cutout: Path
    shadow: Path
    shadow_x: int
    shadow_y: int
    x: int
    base_y: int
    start: float
    end: float
    rise: int
    fade_out: bool  # leave with a fade (when another product follows)


@dataclass(frozen=True)
class ShowcaseFrame:
    width: int
    height: int
    fps: int
    seconds: float
    background: Path
    sweep: Path
    products: tuple[ProductShot, ...]
    title: Path | None = None
    title_y: int = 0
    title_start: float = 0.5

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)


def timeline(count: int, seconds: float) -> list[tuple[float, float]]:
    """(start, end) of each of ``count`` products shown one after another over ``seconds`` (pure).

    The first enters at 0.2 s; each next one starts as the previous fades out.
    """
    if count < 1:
        raise ValueError("a showcase needs at least one product")
    lead = 0.2
    share = (seconds - lead) / count
    return [(round(lead + i * share, 3), round(lead + (i + 1) * share, 3) if i < count - 1 else seconds)
            for i in range(count)]


def ease_out(start: float, seconds: float) -> str:
    """An ffmpeg expression of t rising from 0 at ``start`` to 1 after ``seconds``, cubic ease-out."""
    return f"(1-pow(1-clip((t-{start:.3f})/{seconds:.3f},0,1),3))"


def breath_height(start: float) -> str:
    """The scale filter's height expression: the input height ``ih`` breathing by +-BREATH_AMPLITUDE,
    starting at its rest size at ``start`` and growing first (even, at least 2)."""
    wave = f"sin(2*PI*(t-{start:.3f})/{BREATH_SECONDS})"
    return f"max(2,2*trunc(ih*(1+{BREATH_AMPLITUDE}*{wave})/2))"


def sweep_x(start: float) -> str:
    """The overlay x of the sweep strip across the product: from left of it to right of it."""
    progress = f"clip((t-{start:.3f})/{SWEEP_SECONDS},0,1)"
    return f"-w+(W+w)*{progress}"


def _still(fps: int) -> str:
    return f"loop=loop=-1:size=1:start=0,setpts=N/{fps}/TB"


def plan_showcase(frame: ShowcaseFrame, out: Path) -> list[str]:
    """ffmpeg arguments rendering ``frame`` to an H.264 mp4 at ``out`` (pure)."""
    fps, width, height = frame.fps, frame.width, frame.height
    big_w, big_h = _even(width * BACKDROP_DRIFT), _even(height * BACKDROP_DRIFT)
    drift = f"min(t/{frame.seconds:.3f},1)"
    args = ["-i", str(frame.background), "-i", str(frame.sweep)]
    graph = [
        f"[0:v]scale={big_w}:{big_h},setsar=1,format=yuv420p,{_still(fps)},"
        f"crop={width}:{height}:'(iw-ow)/2':'(ih-oh)*(1-{drift})'[l0]",
    ]
    count = len(frame.products)
    graph.append(f"[1:v]format=rgba,{_still(fps)},split={count}" + "".join(f"[sw{i}]" for i in range(count)))
    last, stream = "l0", 2
    for index, shot in enumerate(frame.products):
        args += ["-i", str(shot.shadow), "-i", str(shot.cutout)]
        shadow, cutout = stream, stream + 1
        stream += 2
        enter = ease_out(shot.start, ENTRANCE_SECONDS)
        fades = f"fade=t=in:st={shot.start:.3f}:d={ENTRANCE_SECONDS * 0.8:.3f}:alpha=1"
        if shot.fade_out:
            fades += f",fade=t=out:st={shot.end - EXIT_SECONDS:.3f}:d={EXIT_SECONDS:.3f}:alpha=1"
        window = f"enable='between(t,{shot.start:.3f},{shot.end:.3f})'"
        graph.append(f"[{shadow}:v]format=rgba,{_still(fps)},{fades}[sh{index}]")
        graph.append(f"[{last}][sh{index}]overlay={shot.shadow_x}:{shot.shadow_y}:format=yuv420:{window}[s{index}]")
        sweep_start = shot.start + ENTRANCE_SECONDS + 0.35
        # The product: catch the sweep (its alpha restored after), fade in, breathe. The breath changes the
        # frame size every few frames, so it comes last: only overlay accepts a changing size.
        graph += [
            f"[{cutout}:v]format=rgba,{_still(fps)},split[c{index}][ca{index}]",
            f"[ca{index}]alphaextract[a{index}]",
            f"[c{index}][sw{index}]overlay=x='{sweep_x(sweep_start)}':y=0:format=rgb:"
            f"enable='between(t,{sweep_start:.3f},{sweep_start + SWEEP_SECONDS:.3f})'[lit{index}]",
            f"[lit{index}][a{index}]alphamerge,{fades},"
            f"scale=w=-1:h='{breath_height(shot.start)}':eval=frame:flags=bicubic[p{index}]",
            f"[s{index}][p{index}]overlay=x='{shot.x}-w/2':y='{shot.base_y}-h+{shot.rise}*(1-{enter})':"
            f"format=yuv420:eval=frame:{window}[l{index + 1}]",
        ]
        last = f"l{index + 1}"
    if frame.title is not None:
        args += ["-i", str(frame.title)]
        graph.append(f"[{stream}:v]format=yuva420p,{_still(fps)},"
                     f"fade=t=in:st={frame.title_start:.3f}:d={TITLE_FADE_SECONDS}:alpha=1[title]")
        graph.append(f"[{last}][title]overlay=0:'{frame.title_y}+{round(height * 0.012)}*(1-"
                     f"{ease_out(frame.title_start, TITLE_FADE_SECONDS * 1.4)})':format=yuv420:eval=frame[lt]")
        last = "lt"
    graph.append(f"[{last}]format=yuv420p[vout]")
    return [
        *args, "-filter_complex", ";".join(graph), "-map", "[vout]", "-an", "-frames:v", str(frame.frames),
        "-r", str(fps), *ENCODER, "-g", str(2 * fps), "-movflags", "+faststart", "-f", "mp4", "-y", str(out),
    ]


def plan_gif(src: Path, out: Path, *, width: int = GIF_WIDTH, fps: int = GIF_FPS) -> list[str]:
    """A looping GIF of the whole video, ``width`` wide, with a palette made for it (pure)."""
    graph = (f"[0:v]fps={fps},scale={width}:-2:flags=lanczos,split[a][b];"
             "[a]palettegen=max_colors=200:stats_mode=diff[p];[b][p]paletteuse=dither=sierra2_4a:diff_mode=rectangle")
    return ["-i", str(src), "-filter_complex", graph, "-loop", "0", "-y", str(out)]


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)
