"""The product showcase's stages: product photos in, a short animated product video out.

**ShowcaseCutout** (one per photo, in a Map; bad input stops here with a typed code) cuts the product
out (:mod:`shared.media.cutout`). **ShowcaseScene** draws the category's backdrop, the title card, the
contact shadows and the light-sweep strip for each output format and lays the products out in time.
**ShowcaseRender** (one per format, in a Map) draws a format in one ffmpeg pass
(:mod:`shared.media.showcase_render`). **ShowcasePreview** makes the GIF.
"""

from __future__ import annotations

import io
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from shared.media.cards import render_title_card
from shared.media.cutout import Method, Subject, cutout_image, cutout_rgb, load_photo
from shared.media.ffmpeg import run_ffmpeg
from shared.media.procedural import render_background
from shared.media.showcase_render import GIF_WIDTH, ProductShot, ShowcaseFrame, plan_gif, plan_showcase, timeline
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput
from shared.stages.showcase_scene import LOOKS, Category, contact_shadow, fit, layout, sweep_strip

MAX_PHOTOS = 4
FormatName = Literal["vertical", "square"]


def showcase_seconds(count: int) -> float:
    """6.5 s for one product, 0.75 s more per further product, at most 8 s."""
    return min(8.0, 6.5 + 0.75 * (count - 1))


# --- Cutout -----------------------------------------------------------------------------------------


class ShowcaseCutoutInput(StageInput):
    photo_key: str
    index: int = Field(default=0, ge=0)
    subject: Subject = "auto"


class ShowcaseCutoutOutput(StageOutput):
    cutout_key: str  # RGBA PNG cropped to the product
    width: int
    height: int
    method: Method


def showcase_cutout(inp: ShowcaseCutoutInput, ctx: StageContext) -> ShowcaseCutoutOutput:
    """Raises InvalidInputError: INPUT_NOT_IMAGE, INPUT_TOO_SMALL, INPUT_TOO_LARGE (see load_photo)."""
    with ctx.runtime.objects.local_copy(inp.photo_key) as path:
        rgb = load_photo(path, name=f"photo {inp.index + 1}")
    cut = cutout_rgb(rgb, subject=inp.subject)
    image = cutout_image(rgb, cut.alpha)
    key = ctx.output_key(f"cutout-{inp.index:02d}.png")
    ctx.runtime.objects.put_bytes(key, _png(image), "image/png")
    return ShowcaseCutoutOutput(cutout_key=key, width=image.width, height=image.height, method=cut.method)


# --- Scene ------------------------------------------------------------------------------------------


class CutoutRef(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    cutout_key: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class ProductPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    cutout_key: str  # at display size
    shadow_key: str
    shadow_x: int
    shadow_y: int
    x: int
    base_y: int
    rise: int
    start: float
    end: float
    fade_out: bool


class FormatPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: FormatName
    width: int
    height: int
    fps: int
    seconds: float
    background_key: str
    sweep_key: str
    title_key: str | None
    title_y: int
    products: list[ProductPlan]


class ShowcaseSceneInput(StageInput):
    category: Category
    title: str | None = Field(default=None, max_length=200)
    subtitle: str | None = Field(default=None, max_length=300)
    cutouts: list[CutoutRef] = Field(min_length=1, max_length=MAX_PHOTOS)
    width: int = Field(default=1080, ge=64, le=4096, multiple_of=2)
    height: int = Field(default=1920, ge=64, le=4096, multiple_of=2)
    fps: int = Field(default=30, ge=1, le=60)
    square: bool = True


class ShowcaseSceneOutput(StageOutput):
    formats: list[FormatPlan]  # vertical first, then square when asked


def showcase_scene(inp: ShowcaseSceneInput, ctx: StageContext) -> ShowcaseSceneOutput:
    sizes: list[tuple[FormatName, int, int]] = [("vertical", inp.width, inp.height)]
    if inp.square:
        side = min(inp.width, inp.height)
        sizes.append(("square", side, side))
    formats = [_format(inp, ctx, name, width, height) for name, width, height in sizes]
    return ShowcaseSceneOutput(formats=formats)


def _format(inp: ShowcaseSceneInput, ctx: StageContext, name: FormatName, width: int, height: int) -> FormatPlan:
    look = LOOKS[inp.category]
    objects = ctx.runtime.objects
    background = render_background(look.style, width, height, variant=look.variant)
    background_key = ctx.output_key(f"{name}/background.png")
    objects.put_bytes(background_key, _png(Image.fromarray(background)), "image/png")
    title_key, title_height = None, 0
    if (inp.title or "").strip() or (inp.subtitle or "").strip():
        card = render_title_card(inp.title, inp.subtitle, width=width, look=look.card)
        title_key, title_height = ctx.output_key(f"{name}/title.png"), card.height
        objects.put_bytes(title_key, _png(card), "image/png")
    place = layout(width, height, title_height=title_height)
    seconds = showcase_seconds(len(inp.cutouts))
    windows = timeline(len(inp.cutouts), seconds)
    products: list[ProductPlan] = []
    tallest = 2
    for index, (ref, (start, end)) in enumerate(zip(inp.cutouts, windows, strict=True)):
        size = fit((ref.width, ref.height), (place.box_w, place.box_h))
        tallest = max(tallest, size[1])
        with objects.local_copy(ref.cutout_key) as path, Image.open(path) as cut:
            sized = cut.convert("RGBA").resize(size, Image.Resampling.LANCZOS)
        cutout_key = ctx.output_key(f"{name}/product-{index:02d}.png")
        objects.put_bytes(cutout_key, _png(sized), "image/png")
        shadow = contact_shadow(size[0], look.shadow_opacity)
        shadow_key = ctx.output_key(f"{name}/shadow-{index:02d}.png")
        objects.put_bytes(shadow_key, _png(shadow), "image/png")
        products.append(ProductPlan(
            cutout_key=cutout_key, shadow_key=shadow_key, shadow_x=place.x - shadow.width // 2,
            shadow_y=place.base_y - shadow.height // 2 - round(size[1] * 0.01), x=place.x,
            base_y=place.base_y, rise=round(height * 0.06), start=start, end=end,
            fade_out=index < len(inp.cutouts) - 1,
        ))
    sweep_key = ctx.output_key(f"{name}/sweep.png")
    objects.put_bytes(sweep_key, _png(sweep_strip(round(tallest * 1.03) + 2, look.sweep_opacity)), "image/png")
    return FormatPlan(name=name, width=width, height=height, fps=inp.fps, seconds=seconds,
                      background_key=background_key, sweep_key=sweep_key, title_key=title_key,
                      title_y=place.title_y, products=products)


# --- Render -----------------------------------------------------------------------------------------


class ShowcaseRenderInput(StageInput):
    format: FormatPlan


class ShowcaseRenderOutput(StageOutput):
    name: FormatName
    video_key: str
    width: int
    height: int
    frames: int


def showcase_render(inp: ShowcaseRenderInput, ctx: StageContext) -> ShowcaseRenderOutput:
    """Raises MediaError when ffmpeg fails."""
    plan = inp.format
    out = ctx.scratch / f"{plan.name}.mp4"
    with ExitStack() as stack:
        def local(key: str) -> Path:
            return stack.enter_context(ctx.runtime.objects.local_copy(key))

        shots = tuple(
            ProductShot(cutout=local(p.cutout_key), shadow=local(p.shadow_key), shadow_x=p.shadow_x,
                        shadow_y=p.shadow_y, x=p.x, base_y=p.base_y, start=p.start, end=p.end, rise=p.rise,
                        fade_out=p.fade_out)
            for p in plan.products
        )
        frame = ShowcaseFrame(
            width=plan.width, height=plan.height, fps=plan.fps, seconds=plan.seconds,
            background=local(plan.background_key), sweep=local(plan.sweep_key), products=shots,
            title=local(plan.title_key) if plan.title_key else None, title_y=plan.title_y,
        )
        run_ffmpeg(plan_showcase(frame, out), usage=ctx.usage, cancelled=ctx.cancelled, progress=ctx.progress,
                   duration_seconds=plan.seconds)
    key = ctx.output_key(f"{plan.name}.mp4")
    ctx.runtime.objects.put_file(key, out, "video/mp4")
    return ShowcaseRenderOutput(name=plan.name, video_key=key, width=plan.width, height=plan.height,
                                frames=frame.frames)


# --- Preview ----------------------------------------------------------------------------------------


class RenderRef(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: FormatName
    video_key: str


class ShowcasePreviewInput(StageInput):
    renders: list[RenderRef] = Field(min_length=1)
    gif: bool = True
    width: int = Field(default=GIF_WIDTH, ge=16, le=1080)


class ShowcasePreviewOutput(StageOutput):
    final_key: str
    square_key: str | None
    gif_key: str | None


def showcase_preview(inp: ShowcasePreviewInput, ctx: StageContext) -> ShowcasePreviewOutput:
    """Name the deliverables and make the GIF, from the square video when there is one (a smaller file).

    Raises MediaError when ffmpeg fails, ValueError when there is no vertical render."""
    by_name = {render.name: render.video_key for render in inp.renders}
    gif_key = None
    if inp.gif:
        out = ctx.scratch / "preview.gif"
        with ctx.runtime.objects.local_copy(by_name.get("square", by_name["vertical"])) as video:
            run_ffmpeg(plan_gif(video, out, width=inp.width), usage=ctx.usage, cancelled=ctx.cancelled)
        gif_key = ctx.output_key("preview.gif")
        ctx.runtime.objects.put_file(gif_key, out, "image/gif")
    return ShowcasePreviewOutput(final_key=by_name["vertical"], square_key=by_name.get("square"), gif_key=gif_key)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


SHOWCASE_CUTOUT = Stage("showcase_cutout", ShowcaseCutoutInput, ShowcaseCutoutOutput, showcase_cutout)
SHOWCASE_SCENE = Stage("showcase_scene", ShowcaseSceneInput, ShowcaseSceneOutput, showcase_scene)
SHOWCASE_RENDER = Stage("showcase_render", ShowcaseRenderInput, ShowcaseRenderOutput, showcase_render)
SHOWCASE_PREVIEW = Stage("showcase_preview", ShowcasePreviewInput, ShowcasePreviewOutput, showcase_preview)
SHOWCASE_STAGES = (SHOWCASE_CUTOUT, SHOWCASE_SCENE, SHOWCASE_RENDER, SHOWCASE_PREVIEW)
