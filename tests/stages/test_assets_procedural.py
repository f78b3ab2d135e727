"""Procedural backgrounds and decorative layers: deliberate, varied, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from shared.media.procedural import (
    VARIANTS,
    frame_kind,
    render_background,
    render_frame,
    render_gradient_mask,
    render_light_leak,
)
from shared.stages.style import PRESETS

W, H = 270, 480


def _structure(image: np.ndarray) -> float:
    """Std of the luma of 16 x 16 block means: large-scale lighting, not grain."""
    luma = image[..., :3].astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    h, w = luma.shape[0] // 16 * 16, luma.shape[1] // 16 * 16
    blocks = luma[:h, :w].reshape(h // 16, 16, w // 16, 16).mean(axis=(1, 3))
    return float(blocks.std())


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_backgrounds_are_lit_not_flat_and_differ(preset: str) -> None:
    style = PRESETS[preset]
    images = [render_background(style, W, H, variant=variant) for variant in VARIANTS]
    for image in images:
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
        assert (image.reshape(-1, 3).std(axis=0) > 3.0).all()  # per channel: not a flat fill
        assert _structure(image) > 2.0  # light and shade at large scale, not only grain
        # No large uniform region: no 32 x 32 block is a single flat color.
        for y in range(0, H - 32, 32):
            for x in range(0, W - 32, 32):
                assert image[y : y + 32, x : x + 32].std() > 0.5
    for a in range(len(images)):
        for b in range(a + 1, len(images)):
            diff = np.abs(images[a].astype(np.int16) - images[b].astype(np.int16)).mean()
            assert diff > 3.0, (preset, VARIANTS[a], VARIANTS[b], diff)


def test_backgrounds_follow_the_palette() -> None:
    dark = render_background(PRESETS["luxury"], W, H, variant="studio").mean()
    light = render_background(PRESETS["minimal"], W, H, variant="studio").mean()
    assert dark < 90 < 170 < light
    warm = render_background(PRESETS["warm"], W, H, variant="window").astype(np.float32)
    fresh = render_background(PRESETS["fresh"], W, H, variant="window").astype(np.float32)
    assert (warm[..., 0] - warm[..., 2]).mean() > 10 > (fresh[..., 0] - fresh[..., 2]).mean()


def test_rendering_is_deterministic_per_style_and_seed() -> None:
    style = PRESETS["cinematic"]
    first = render_background(style, W, H, variant="bokeh")
    assert np.array_equal(first, render_background(style, W, H, variant="bokeh"))
    assert not np.array_equal(first, render_background(style, W, H, variant="bokeh", seed=7))


@pytest.mark.parametrize("texture", ["smooth", "grain", "soft-focus", "paper"])
def test_every_texture_renders_with_fine_detail(texture: str) -> None:
    style = PRESETS["warm"].model_copy(update={"texture": texture})
    image = render_background(style, W, H, variant="studio").astype(np.float32)
    fine = np.abs(np.diff(image[..., 1], axis=1)).mean()
    assert fine > 0.5  # at least a dither against banding
    grain = PRESETS["warm"].model_copy(update={"texture": "grain"})
    smooth = PRESETS["warm"].model_copy(update={"texture": "smooth"})
    grainy = np.abs(np.diff(render_background(grain, W, H).astype(np.float32)[..., 1], axis=1)).mean()
    clean = np.abs(np.diff(render_background(smooth, W, H).astype(np.float32)[..., 1], axis=1)).mean()
    assert grainy > 2 * clean


def test_odd_sizes_render() -> None:
    for variant in VARIANTS:
        assert render_background(PRESETS["fresh"], 101, 179, variant=variant).shape == (179, 101, 3)
    with pytest.raises(ValueError):
        render_background(PRESETS["fresh"], 64, 64, variant="marble")  # type: ignore[arg-type]


@pytest.mark.parametrize("preset", ["cinematic", "minimal"])
def test_light_leak_is_mostly_transparent(preset: str) -> None:
    leak = render_light_leak(PRESETS[preset], W, H)
    assert leak.shape == (H, W, 4)
    alpha = leak[..., 3]
    assert (alpha == 0).mean() > 0.5
    assert alpha.max() > 60
    assert alpha[H // 3 : 2 * H // 3, W // 3 : 2 * W // 3].max() < 10  # the middle of the frame is untouched


def test_light_leak_color_follows_temperature() -> None:
    warm = render_light_leak(PRESETS["luxury"], W, H).astype(np.float32)
    cool = render_light_leak(PRESETS["cinematic"], W, H).astype(np.float32)

    def tint(leak: np.ndarray) -> float:
        visible = leak[..., 3] > 40
        return float((leak[..., 0][visible] - leak[..., 2][visible]).mean())

    assert tint(warm) > 50 and tint(cool) < 0


def test_gradient_mask_darkens_top_and_bottom_only() -> None:
    mask = render_gradient_mask(PRESETS["luxury"], W, H)
    alpha = mask[..., 3].astype(np.float32)
    assert alpha[0].min() > 100 and alpha[-1].min() > 150
    assert alpha[H // 2].max() < 5
    assert (alpha[H // 2 :, 0] >= alpha[H // 2 - 1 : -1, 0] - 1).all()  # rises steadily toward the bottom
    assert mask[..., :3].max() < 80  # a dark scrim


def test_frames_by_style() -> None:
    assert frame_kind(PRESETS["luxury"]) == "double"
    assert frame_kind(PRESETS["minimal"]) == "hairline"
    assert frame_kind(PRESETS["cinematic"]) is None
    assert render_frame(PRESETS["cinematic"], W, H) is None
    frame = render_frame(PRESETS["luxury"], 1080, 1920)
    assert frame is not None and frame.shape == (1920, 1080, 4)
    alpha = frame[..., 3]
    assert alpha[960, 36] > 100 and alpha[960, 540] == 0 and alpha[0, 0] == 0
