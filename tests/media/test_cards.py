"""Text cards: real CJK glyphs, literal punctuation, and text that wraps and shrinks but never clips."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from shared.media.cards import (
    CardLook,
    TextBlock,
    font_path,
    layout,
    load_font,
    render_blocks,
    render_card,
    render_quote_card,
    render_title_card,
    wrap,
)

TOFU = "\ue000\ue001\ue002\ue003"  # private-use code points: no font has them, so they draw as .notdef boxes


def _alpha(image: Image.Image) -> np.ndarray:
    return np.asarray(image.getchannel("A"), dtype=np.uint8)


def _ink(text: str, size: int = 64) -> np.ndarray:
    return _alpha(render_card([(text, size)], width=600))


def _assert_inside(image: Image.Image) -> None:
    """Nothing touches the border: text and its shadow lie fully inside the card."""
    box = image.getchannel("A").getbbox()
    assert box is not None, "the card is empty"
    left, top, right, bottom = box
    assert left > 0 and top > 0 and right < image.width and bottom < image.height, (box, image.size)


def test_the_card_font_is_a_cjk_font() -> None:
    path = font_path()
    assert path is not None and path.is_file()
    assert "SC" in path.name or "CJK" in path.name
    assert load_font(40).getname()[0].startswith("Noto")


def test_cjk_renders_real_glyphs_not_tofu() -> None:
    cjk, tofu = _ink("你好世界"), _ink(TOFU)
    assert cjk.shape == tofu.shape
    assert not np.array_equal(cjk, tofu)
    # Tofu boxes are all alike; real glyphs are not.
    assert not np.array_equal(_ink("你"), _ink("好"))
    assert np.array_equal(_ink("\ue000"), _ink("\ue001"))
    for char in "你好世界。，慢稳快":
        assert load_font(48).getmask(char).getbbox() is not None


@pytest.mark.parametrize("serif", [False, True])
def test_every_ascii_punctuation_mark_has_a_glyph(serif: bool) -> None:
    font = load_font(48, serif=serif)
    text = "quotes: 100% {braces} \\ backslash \"'`~!@#$^&*()[]<>|/?;,.-_=+"
    for char in text.replace(" ", ""):
        assert font.getmask(char).getbbox() is not None, repr(char)
        assert not np.array_equal(_ink(char), _ink("\ue000")), repr(char)
    card = render_card([(text, 48)], width=1080)
    _assert_inside(card)


def test_punctuation_renders_literally_in_a_title_card() -> None:
    card = render_title_card("quotes: 100% {braces} \\ backslash", "50% off: {x}", width=1080)
    _assert_inside(card)
    assert card.width == 1080


def test_long_text_wraps_and_never_clips() -> None:
    text = ("Slow is smooth and smooth is fast, and this sentence goes on long enough that it must wrap "
            "across several lines of the card without losing a single character at either edge")
    for width in (360, 720, 1080):
        card = render_quote_card(text, width=width)
        _assert_inside(card)
        box = card.getchannel("A").getbbox()
        assert box is not None and box[2] - box[0] <= width * 0.9


def test_shrinks_then_caps_the_line_count_with_an_ellipsis() -> None:
    block = TextBlock("word " * 400, 60, min_size=30, max_lines=3)
    laid = layout(block, 800)
    assert len(laid.lines) == 3
    assert laid.lines[-1].endswith("…")
    assert getattr(laid.font, "size", 0) == 30
    card = render_blocks([block], width=1000)
    _assert_inside(card)

    short = layout(TextBlock("A short title", 60, max_lines=3), 800)
    assert short.lines == ["A short title"] and getattr(short.font, "size", 0) == 60


def test_an_unbreakable_word_is_broken_between_characters() -> None:
    font = load_font(50)
    lines = wrap("W" * 120, font, 400)
    assert len(lines) > 1
    assert all(font.getlength(line) <= 400 for line in lines)
    _assert_inside(render_card([("W" * 120, 50)], width=500, max_lines=20))


def test_cjk_wraps_between_characters_and_keeps_closing_punctuation_off_line_starts() -> None:
    font = load_font(48)
    text = "慢就是稳，稳就是快。真正的高手，都懂得在忙碌中保持专注，在专注中找到节奏。" * 2
    lines = wrap(text, font, 300)
    assert len(lines) > 3
    assert "".join(lines) == text
    assert not any(line[0] in "，。" for line in lines)
    assert all(font.getlength(line) <= 300 + font.getlength("。") for line in lines)
    _assert_inside(render_quote_card(text, width=540))


def test_newlines_in_the_text_start_new_lines() -> None:
    assert wrap("first line\nsecond line", load_font(40), 1000) == ["first line", "second line"]


def test_title_card_layout() -> None:
    look = CardLook(text="#ffffff", accent="#d9b26a", serif=True)
    both = render_title_card("Three habits of calm creators", "Episode 12", width=1080, look=look)
    title_only = render_title_card("Three habits of calm creators", None, width=1080, look=look)
    _assert_inside(both)
    _assert_inside(title_only)
    assert both.height > title_only.height
    # The accent rule between title and subtitle is drawn in the accent color.
    pixels = np.asarray(both)
    gold = (np.abs(pixels[..., :3].astype(int) - [0xD9, 0xB2, 0x6A]).sum(axis=-1) < 12) & (pixels[..., 3] > 250)
    assert gold.sum() > 50


def test_quote_card_scales_with_the_output_width() -> None:
    small, large = render_quote_card("慢就是稳", width=540), render_quote_card("慢就是稳", width=1080)
    assert small.width == 540 and large.width == 1080
    assert large.height > small.height
