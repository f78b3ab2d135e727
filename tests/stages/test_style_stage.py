"""Learn style: presets, reference images and video keyframes, with the 7-day content-hash cache."""

from __future__ import annotations

import colorsys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from shared.errors import InvalidInputError
from shared.pipeline.execution import create_task
from shared.pipeline.runtime import Runtime
from shared.pipeline.stage import StageContext, execute_stage
from shared.providers.style import StyleProfile, analyze_keyframes, skin_mask
from shared.settings import Settings
from shared.stages.style import (
    LEARN_STYLE,
    PRESETS,
    STYLE_CACHE_TTL_SECONDS,
    LearnStyleInput,
    learn_style,
    sample_keyframes,
)

ROOT = Path(__file__).resolve().parents[2]
STOCK = ROOT.parent / "shared" / "testdata" / "stock"
SAMPLE = ROOT / "samples" / "talking_head.mp4"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(home=tmp_path / "home", object_store="local", task_store="sqlite", cache="local")
    with Runtime.from_settings(settings) as rt:
        yield rt


def _ctx(runtime: Runtime, tmp_path: Path) -> StageContext:
    scratch = tmp_path / f"scratch-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    return StageContext(task_id="tsk_style", stage="learn_style", attempt=1, input_hash="0" * 64,
                        runtime=runtime, scratch=scratch)


def _put(runtime: Runtime, path: Path, key: str) -> str:
    runtime.objects.put_bytes(key, path.read_bytes())
    return key


def _hsv(hex_color: str) -> tuple[float, float, float]:
    r, g, b = (int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    return h * 360, s, v


def test_presets_are_complete_profiles() -> None:
    assert set(PRESETS) >= {"minimal", "cinematic", "luxury", "warm", "fresh"}
    for name, style in PRESETS.items():
        assert style.source == f"preset:{name}"
        assert style.texture in ("smooth", "grain", "soft-focus", "paper")
        assert len(style.palette) == 5


def test_preset_and_default(runtime: Runtime, tmp_path: Path) -> None:
    out = learn_style(LearnStyleInput(task_id="tsk_style", preset="luxury"), _ctx(runtime, tmp_path))
    assert out.style == PRESETS["luxury"] and not out.cache_hit
    out = learn_style(LearnStyleInput(task_id="tsk_style"), _ctx(runtime, tmp_path))
    assert out.style.source == "preset:minimal"
    with pytest.raises(ValueError, match="unknown preset"):
        LearnStyleInput(task_id="tsk_style", preset="neon")


def test_reference_image_is_analyzed_then_cached(runtime: Runtime, tmp_path: Path) -> None:
    key = _put(runtime, STOCK / "imageio_astronaut.png", "tasks/tsk_style/reference.png")
    first = learn_style(LearnStyleInput(task_id="tsk_style", reference_key=key), _ctx(runtime, tmp_path))
    assert not first.cache_hit
    assert first.style.source.startswith("reference:")
    assert len(first.style.palette) == 5 and all(c.startswith("#") and len(c) == 7 for c in first.style.palette)
    assert first.style.texture in ("smooth", "grain", "soft-focus", "paper")

    again = learn_style(LearnStyleInput(task_id="tsk_style", reference_key=key, preset="warm"),
                        _ctx(runtime, tmp_path))
    assert again.cache_hit  # the reference wins over a preset, and the second analysis is skipped
    assert again.style == first.style


def test_different_references_give_different_looks(runtime: Runtime, tmp_path: Path) -> None:
    styles = []
    for name in ("imageio_astronaut.png", "imageio_chelsea_cat.png", "moviepy_vacation_2017.jpg"):
        key = _put(runtime, STOCK / name, f"refs/{name}")
        styles.append(learn_style(LearnStyleInput(task_id="tsk_style", reference_key=key),
                                  _ctx(runtime, tmp_path)).style)
    assert len({tuple(s.palette) for s in styles}) == 3
    assert len({s.source for s in styles}) == 3


def test_a_reference_that_is_not_an_image_fails_with_its_code(runtime: Runtime, tmp_path: Path) -> None:
    runtime.objects.put_bytes("refs/not-image.png", b"this is text, not a picture")
    with pytest.raises(InvalidInputError) as caught:
        learn_style(LearnStyleInput(task_id="tsk_style", reference_key="refs/not-image.png"), _ctx(runtime, tmp_path))
    assert caught.value.code == "REFERENCE_NOT_IMAGE"


def test_sample_keyframes_spreads_frames_over_the_video(tmp_path: Path) -> None:
    frames = sample_keyframes(SAMPLE, tmp_path, count=5)
    assert len(frames) == 5
    assert all(frame.shape[1] == 256 and frame.shape[2] == 3 and frame.dtype == np.uint8 for frame in frames)
    assert any(not np.array_equal(frames[0], frame) for frame in frames[1:])


def test_keyframes_give_a_flattering_backdrop_and_are_cached(runtime: Runtime, tmp_path: Path) -> None:
    key = _put(runtime, SAMPLE, "tasks/tsk_style/source.mp4")
    first = learn_style(LearnStyleInput(task_id="tsk_style", video_key=key), _ctx(runtime, tmp_path))
    style = first.style
    assert not first.cache_hit
    assert style.source.startswith("keyframes:")
    assert style.lighting == "soft" and 0.3 <= style.contrast <= 0.6
    _, saturation, _ = _hsv(style.palette[0])
    assert saturation <= 0.4  # a backdrop that does not compete with the person

    second = learn_style(LearnStyleInput(task_id="tsk_style", video_key=key), _ctx(runtime, tmp_path))
    assert second.cache_hit and second.style == style
    # A preset still wins over the video.
    preset = learn_style(LearnStyleInput(task_id="tsk_style", video_key=key, preset="fresh"), _ctx(runtime, tmp_path))
    assert preset.style == PRESETS["fresh"]


def _person(clothes: tuple[int, int, int], wall: tuple[int, int, int] = (128, 128, 128)) -> np.ndarray:
    """A synthetic talking head: a wall, a skin-toned face and clothes in the middle."""
    frame = np.zeros((180, 100, 3), dtype=np.uint8)
    frame[:] = wall
    frame[30:80, 35:65] = (224, 172, 140)  # face
    frame[90:180, 20:80] = clothes
    return frame


def test_keyframe_palette_harmonizes_with_colorful_clothes() -> None:
    style = analyze_keyframes([_person((40, 70, 170))] * 3, source="keyframes:test")  # blue clothes
    hue, saturation, _ = _hsv(style.palette[0])
    assert 190 <= hue <= 260
    assert 0.1 <= saturation <= 0.4
    assert style.temperature == "cool"


def test_keyframe_palette_complements_skin_when_clothes_are_neutral() -> None:
    style = analyze_keyframes([_person((60, 60, 60))], source="keyframes:test")
    hue, _, value = _hsv(style.palette[0])
    assert 170 <= hue <= 250  # the cool complement of skin
    assert value < 0.5  # a lit face separates best from a deeper backdrop
    accent_hue, _, _ = _hsv(style.palette[2])
    assert accent_hue < 60  # a warm accent light


def test_skin_mask_finds_skin_and_not_walls() -> None:
    pixels = np.array([[224, 172, 140], [141, 85, 36], [60, 60, 60], [40, 70, 170], [250, 250, 250]],
                      dtype=np.float32) / 255
    assert skin_mask(pixels).tolist() == [True, True, False, False, False]


def test_through_the_stage_runner(runtime: Runtime) -> None:
    create_task(runtime, "enhance", {}, "tsk_runner")
    out = execute_stage(LEARN_STYLE, {"task_id": "tsk_runner", "preset": "cinematic", "reference_key": None,
                                      "video_key": None}, runtime)
    assert StyleProfile.model_validate(out["style"]) == PRESETS["cinematic"]
    assert STYLE_CACHE_TTL_SECONDS == 7 * 24 * 3600
