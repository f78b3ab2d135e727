"""Cutting products out: studio shots, the pymatting lemur against its trimap, bad photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.errors import InvalidInputError
from shared.media.cutout import card_alpha, cutout_image, cutout_rgb, load_photo, subject_box

TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"
LEMUR = TESTDATA / "matting" / "pymatting_lemur"


def _iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    solid = alpha > 127
    return float((solid & truth).sum() / (solid | truth).sum())


def test_a_studio_shot_is_cut_on_its_outline_without_its_cast_shadow(bottle: tuple[Path, np.ndarray]) -> None:
    path, truth = bottle
    cut = cutout_rgb(load_photo(path), subject="object")
    assert cut.method == "backdrop"
    assert _iou(cut.alpha, truth) > 0.96
    shadow_band = cut.alpha[705:725, 200:400]  # the cast shadow below the bottle stays behind
    assert (shadow_band > 127).mean() < 0.05


def test_the_lemur_is_opaque_inside_its_trimap_and_clear_outside() -> None:
    rgb = load_photo(LEMUR / "lemur.png")
    trimap = np.asarray(Image.open(LEMUR / "lemur_trimap.png").convert("L"))
    for subject in ("auto", "object"):  # the person model (auto picks it) and the salient fallback
        cut = cutout_rgb(rgb, subject=subject)  # type: ignore[arg-type]
        assert cut.alpha.shape == trimap.shape
        assert (cut.alpha[trimap == 255] > 127).mean() > 0.9, subject
        assert (cut.alpha[trimap == 0] < 128).mean() > 0.95, subject


def test_a_person_is_cut_with_the_person_model() -> None:
    cut = cutout_rgb(load_photo(TESTDATA / "stock" / "imageio_astronaut.png"))
    assert cut.method == "person"
    assert 0.3 < (cut.alpha > 127).mean() < 0.8


def test_a_busy_scene_without_a_subject_becomes_a_rounded_card() -> None:
    alpha = card_alpha(200, 100)
    assert alpha[50, 100] == 255 and alpha[0, 0] == 0 and alpha[50, 0] == 255


def test_cutout_image_is_cropped_to_the_subject(bottle: tuple[Path, np.ndarray]) -> None:
    path, truth = bottle
    rgb = load_photo(path)
    alpha = (truth * 255).astype(np.uint8)
    image = cutout_image(rgb, alpha, max_side=250)
    assert image.mode == "RGBA" and max(image.size) == 250
    assert subject_box(alpha) == (200, 200, 401, 701)


@pytest.mark.parametrize(("content", "code"), [
    (b"not an image at all", "INPUT_NOT_IMAGE"),
    (b"", "INPUT_NOT_IMAGE"),
])
def test_a_file_that_is_not_an_image_is_rejected(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError) as caught:
        load_photo(path)
    assert caught.value.code == code


def test_a_tiny_photo_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "tiny.png"
    Image.new("RGB", (100, 60), "white").save(path)
    with pytest.raises(InvalidInputError) as caught:
        load_photo(path)
    assert caught.value.code == "INPUT_TOO_SMALL"
