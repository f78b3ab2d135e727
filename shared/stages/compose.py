"""Compose: background, the person over it with their matte, and text cards, in one ffmpeg pass.

Layers bottom to top: the generated background, the normalized video keyed by the matte (alphamerge),
the title card (first seconds) and quote cards (spread over the rest). The ffmpeg arguments come from a
pure planner, :func:`plan_compose`, so the graph is testable without running ffmpeg.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from shared.media.cards import render_card
from shared.media.ffmpeg import run_ffmpeg
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput

TITLE_SECONDS = (0.3, 4.0)
QUOTE_SECONDS = 3.5
FADE_SECONDS = 0.5


class ComposeInput(StageInput):
    video_key: str
    matte_key: str
    background_key: str
    width: int
    height: int
    fps: int
    duration_seconds: float
    has_audio: bool
    title: str | None = Field(default=None, max_length=200)
    subtitle: str | None = Field(default=None, max_length=300)
    quotes: list[str] = Field(default_factory=list, max_length=20)
    text_color: str = "#ffffff"


class ComposeOutput(StageOutput):
    video_key: str


class TimedCard(BaseModel):
    """A card image shown from ``start`` to ``end`` seconds at vertical position ``y``, with fades."""

    model_config = ConfigDict(frozen=True)

    path: Path
    start: float
    end: float
    y: int


def schedule_quotes(quotes: list[str], duration: float) -> list[tuple[str, float, float]]:
    """Spread quotes evenly over the time after the title, each shown for QUOTE_SECONDS (pure)."""
    if not quotes:
        return []
    begin = TITLE_SECONDS[1] + 0.5 if duration > TITLE_SECONDS[1] + QUOTE_SECONDS else 0.0
    slot = max((duration - begin) / len(quotes), 0.5)
    show = min(QUOTE_SECONDS, slot)
    return [(quote, begin + i * slot, begin + i * slot + show) for i, quote in enumerate(quotes)]


def plan_compose(
    *, video: Path, matte: Path, background: Path, cards: list[TimedCard], out: Path,
    width: int, height: int, fps: int, has_audio: bool,
) -> list[str]:
    """ffmpeg arguments for one compositing pass (pure)."""
    # Stills are decoded once and repeated in memory by the loop filter (an image2 input with -loop 1
    # would decode the PNG again for every frame).
    still = f"loop=loop=-1:size=1:start=0,setpts=N/{fps}/TB"
    args = ["-i", str(background), "-i", str(video), "-i", str(matte)]
    graph = [
        f"[0:v]{still},scale={width}:{height},setsar=1,format=rgb24[bg]",
        "[2:v]format=gray[alpha]",
        "[1:v][alpha]alphamerge[person]",
        "[bg][person]overlay=0:0:shortest=1:format=auto[v0]",
    ]
    last = "v0"
    for index, card in enumerate(cards):
        stream = 3 + index
        args += ["-i", str(card.path)]
        fade_out = max(card.start, card.end - FADE_SECONDS)
        graph.append(
            f"[{stream}:v]{still},format=rgba,"
            f"fade=t=in:st={card.start:.3f}:d={FADE_SECONDS}:alpha=1,"
            f"fade=t=out:st={fade_out:.3f}:d={FADE_SECONDS}:alpha=1[c{index}]"
        )
        graph.append(
            f"[{last}][c{index}]overlay=0:{card.y}:shortest=1:"
            f"enable='between(t,{card.start:.3f},{card.end:.3f})'[v{index + 1}]"
        )
        last = f"v{index + 1}"
    graph.append(f"[{last}]format=yuv420p[vout]")
    args += ["-filter_complex", ";".join(graph), "-map", "[vout]"]
    if has_audio:
        args += ["-map", "1:a:0", "-c:a", "copy"]
    args += [
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-r", str(fps),
        "-movflags", "+faststart", "-shortest", "-y", str(out),
    ]
    return args


def compose(inp: ComposeInput, ctx: StageContext) -> ComposeOutput:
    """Raises MediaError when ffmpeg fails."""
    cards = _render_cards(inp, ctx.scratch)
    objects = ctx.runtime.objects
    out = ctx.scratch / "composed.mp4"
    with (
        objects.local_copy(inp.video_key) as video,
        objects.local_copy(inp.matte_key) as matte,
        objects.local_copy(inp.background_key) as background,
    ):
        run_ffmpeg(
            plan_compose(
                video=video, matte=matte, background=background, cards=cards, out=out,
                width=inp.width, height=inp.height, fps=inp.fps, has_audio=inp.has_audio,
            ),
            usage=ctx.usage, cancelled=ctx.cancelled, progress=ctx.progress, duration_seconds=inp.duration_seconds,
        )
    key = ctx.output_key("composed.mp4")
    objects.put_file(key, out, "video/mp4")
    return ComposeOutput(video_key=key)


def _render_cards(inp: ComposeInput, scratch: Path) -> list[TimedCard]:
    cards: list[TimedCard] = []
    unit = inp.width / 1080  # font sizes are designed for a 1080-wide frame
    if inp.title or inp.subtitle:
        lines = [(inp.title, int(72 * unit))] if inp.title else []
        lines += [(inp.subtitle, int(42 * unit))] if inp.subtitle else []
        path = scratch / "title.png"
        render_card(lines, width=inp.width, color=inp.text_color).save(path)
        end = min(TITLE_SECONDS[1], inp.duration_seconds)
        cards.append(TimedCard(path=path, start=min(TITLE_SECONDS[0], end), end=end, y=int(inp.height * 0.08)))
    for index, (quote, start, end) in enumerate(schedule_quotes(inp.quotes, inp.duration_seconds)):
        path = scratch / f"quote{index}.png"
        render_card([(f"“{quote}”", int(54 * unit))], width=inp.width, color=inp.text_color).save(path)
        cards.append(TimedCard(path=path, start=start, end=end, y=int(inp.height * 0.70)))
    return cards


COMPOSE = Stage("compose", ComposeInput, ComposeOutput, compose)
