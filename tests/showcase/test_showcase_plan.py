"""The showcase's pure planners: timing, easing, layout and the ffmpeg graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.media.showcase_render import (
    ProductShot,
    ShowcaseFrame,
    breath_height,
    ease_out,
    plan_gif,
    plan_showcase,
    timeline,
)
from shared.stages.showcase import showcase_seconds
from shared.stages.showcase_scene import contact_shadow, fit, layout, sweep_strip


@pytest.mark.parametrize(("count", "seconds", "expected"), [
    (1, 6.5, [(0.2, 6.5)]),
    (2, 7.2, [(0.2, 3.7), (3.7, 7.2)]),
    (4, 8.2, [(0.2, 2.2), (2.2, 4.2), (4.2, 6.2), (6.2, 8.2)]),
])
def test_products_follow_one_another(count: int, seconds: float, expected: list[tuple[float, float]]) -> None:
    assert timeline(count, seconds) == expected


def test_a_showcase_needs_a_product() -> None:
    with pytest.raises(ValueError):
        timeline(0, 6.0)


@pytest.mark.parametrize(("count", "seconds"), [(1, 6.5), (2, 7.25), (3, 8.0), (4, 8.0)])
def test_showcases_last_six_to_eight_seconds(count: int, seconds: float) -> None:
    assert showcase_seconds(count) == seconds


def _eval(expression: str, t: float) -> float:
    env = {"t": t, "clip": lambda v, lo, hi: min(max(v, lo), hi), "pow": pow, "ih": 900,
           "max": max, "trunc": int, "PI": 3.141592653589793}
    import math
    env["sin"] = math.sin
    return float(eval(expression, {"__builtins__": {}}, env))


@pytest.mark.parametrize(("t", "value"), [(0.0, 0.0), (1.0, 0.0), (1.5, 0.875), (2.0, 1.0), (9.0, 1.0)])
def test_ease_out_rises_from_zero_to_one(t: float, value: float) -> None:
    assert _eval(ease_out(1.0, 1.0), t) == pytest.approx(value)


@pytest.mark.parametrize(("t", "height"), [(0.2, 900), (1.2, 918), (3.2, 882), (4.2, 900)])
def test_the_breath_is_two_percent_and_even(t: float, height: int) -> None:
    assert _eval(breath_height(0.2), t) == height


@pytest.mark.parametrize(("width", "height", "tall"), [(1080, 1920, True), (1080, 1080, False), (180, 320, True)])
def test_layout_keeps_the_product_under_the_title_and_inside_the_frame(width: int, height: int, tall: bool) -> None:
    place = layout(width, height, title_height=round(height * 0.15))
    assert place.title_y + round(height * 0.15) < place.base_y - place.box_h * 1.02
    assert place.box_w < width and place.base_y < height
    assert (place.base_y / height > 0.79) is True


@pytest.mark.parametrize(("size", "box", "expected"), [
    ((100, 200), (50, 50), (25, 50)), ((400, 100), (200, 200), (200, 50)), ((1, 1000), (10, 10), (2, 10)),
])
def test_fit_keeps_the_aspect(size: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]) -> None:
    assert fit(size, box) == expected


def test_shadow_and_sweep_are_soft_and_transparent_at_their_edges() -> None:
    shadow, sweep = contact_shadow(300, 0.5), sweep_strip(400, 0.4)
    for image in (shadow, sweep):
        alpha = image.getchannel("A")
        assert alpha.getpixel((0, 0)) == 0 and 0 < alpha.getextrema()[1] <= 255
    assert sweep.height == 400


def _frame(products: int, title: bool = True) -> ShowcaseFrame:
    shots = tuple(
        ProductShot(cutout=Path(f"/p{i}.png"), shadow=Path(f"/s{i}.png"), shadow_x=10, shadow_y=20, x=540,
                    base_y=1500, start=start, end=end, rise=100, fade_out=i < products - 1)
        for i, (start, end) in enumerate(timeline(products, 7.0))
    )
    return ShowcaseFrame(width=1080, height=1920, fps=30, seconds=7.0, background=Path("/bg.png"),
                         sweep=Path("/sweep.png"), products=shots, title=Path("/t.png") if title else None,
                         title_y=130)


def test_the_plan_encodes_delivery_h264_with_faststart() -> None:
    args = plan_showcase(_frame(1), Path("/out.mp4"))
    joined = " ".join(args)
    for flag in ("-c:v libx264", "-preset veryfast", "-crf 20", "-pix_fmt yuv420p", "-movflags +faststart",
                 "-frames:v 210", "-r 30"):
        assert flag in joined
    assert args[-1] == "/out.mp4"


@pytest.mark.parametrize(("products", "title", "inputs"), [(1, True, 5), (2, False, 6), (3, True, 9)])
def test_each_still_is_an_input_once(products: int, title: bool, inputs: int) -> None:
    args = plan_showcase(_frame(products, title), Path("/out.mp4"))
    assert args.count("-i") == inputs
    graph = args[args.index("-filter_complex") + 1]
    # per frame only the small cutouts are rescaled; the backdrop is scaled once, then looped and cropped
    assert graph.count("eval=frame:flags=bicubic") == products
    assert graph.startswith("[0:v]scale=1124:1996,setsar=1,format=yuv420p,loop=")
    assert graph.count("fade=t=out") == 2 * (products - 1)  # shadow and product leave, but the last stays


def test_the_gif_is_480_wide_with_its_own_palette() -> None:
    args = plan_gif(Path("/in.mp4"), Path("/out.gif"))
    graph = args[args.index("-filter_complex") + 1]
    assert "scale=480:-2" in graph and "palettegen" in graph and "paletteuse" in graph
    assert args[-1] == "/out.gif"
