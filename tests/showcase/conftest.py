"""Fixtures for showcase tests: a product-like studio photo drawn with a known outline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter


def draw_bottle(path: Path, width: int = 600, height: int = 800) -> np.ndarray:
    """A serum bottle on a graded studio backdrop with a soft cast shadow; returns its true mask (bool)."""
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    backdrop = np.broadcast_to((228 - 18 * y) * np.array([1.0, 0.99, 0.97]), (height, width, 3))
    image = Image.fromarray(np.ascontiguousarray(backdrop).astype(np.uint8))
    shadow = Image.new("L", (width, height), 0)
    ImageDraw.Draw(shadow).ellipse((190, 680, 410, 720), fill=90)
    image = Image.composite(Image.new("RGB", (width, height), (120, 115, 110)), image,
                            shadow.filter(ImageFilter.GaussianBlur(12)))
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    draw.rounded_rectangle((200, 300, 400, 700), radius=40, fill=255)
    draw.rectangle((260, 200, 340, 300), fill=255)
    x = np.linspace(0.0, 1.0, width)[None, :]
    shade = 0.55 + 0.45 * np.sin(np.pi * np.clip((x - 0.33) / 0.34, 0.0, 1.0))
    body = np.broadcast_to(np.array([214, 150, 140]) * shade[..., None], (height, width, 3)).copy()
    body[200:300] = np.array([40, 36, 34]) * shade[0, :, None]
    image = Image.composite(Image.fromarray(body.astype(np.uint8)), image, mask)
    ImageDraw.Draw(image).rectangle((230, 430, 370, 520), fill=(245, 240, 232))
    image.save(path)
    return np.asarray(mask) > 127


@pytest.fixture(scope="session")
def bottle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("photos") / "bottle.png"
    return path, draw_bottle(path)
