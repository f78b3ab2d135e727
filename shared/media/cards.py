"""Text cards: user text rendered to transparent PNGs with Pillow, in a font that has CJK glyphs.

Text is drawn here, never by ffmpeg's drawtext, so quotes, colons, percent signs, backslashes and braces
in a title appear literally and cannot inject filtergraph syntax.

The font is Noto Sans SC / Noto Serif SC (SIL Open Font License 1.1) from the ``pylopdf-fonts-zh-cn``
package: Latin, Chinese (and the Japanese kana and Korean Hangul those fonts carry) render with real
glyphs. Without that package a system Noto CJK font is used, and as a last resort Pillow's built-in font
(Latin only), with a warning.

Cards never clip: a block of text is wrapped to the card's width (a word or CJK run wider than the line is
broken between characters, and CJK closing punctuation never starts a line), the font shrinks step by
step until the block fits its line cap, and only at the smallest size is the last line cut with an
ellipsis. The card is as tall as its content plus room for the shadow.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import structlog
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_SYSTEM_FONTS = {  # Debian's fonts-noto-cjk, then Arch/Fedora's layout
    False: ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
            "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
    True: ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
           "/usr/share/fonts/noto-cjk/NotoSerifCJK-Regular.ttc"),
}
# Characters that must not begin a line (CJK and Latin closing punctuation).
_NO_LINE_START = set("，。！？、；：）」』》〉】”’…,.!?;:)]}%")
ELLIPSIS = "…"


def font_path(*, serif: bool = False) -> Path | None:
    """The CJK-capable font file used for cards, or None when only Pillow's built-in font is left."""
    try:
        import pylopdf_fonts_zh_cn

        path = Path(pylopdf_fonts_zh_cn.serif_path() if serif else pylopdf_fonts_zh_cn.sans_path())
        if path.is_file():
            return path
    except ImportError:
        pass
    for candidate in (*_SYSTEM_FONTS[serif], *_SYSTEM_FONTS[False]):
        if Path(candidate).is_file():
            return Path(candidate)
    return None


@functools.lru_cache(maxsize=64)
def load_font(size: int, *, serif: bool = False) -> Font:
    """The card font at ``size`` pixels (cached)."""
    path = font_path(serif=serif)
    if path is None:
        structlog.get_logger("vidluxe.cards").warning(
            "no CJK font found; install pylopdf-fonts-zh-cn. Falling back to Pillow's font (no CJK glyphs)"
        )
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(str(path), size)


def _tokens(text: str) -> list[str]:
    """Break opportunities: words with their trailing space, and every CJK character on its own."""
    tokens: list[str] = []
    word = ""
    for char in text:
        if char.isspace():
            tokens.append(word + " ")
            word = ""
        elif ord(char) >= 0x2E80:  # CJK and beyond: every character may start a line
            if word:
                tokens.append(word)
                word = ""
            tokens.append(char)
        else:
            word += char
    if word:
        tokens.append(word)
    return [token for token in tokens if token]


def _width(text: str, font: Font) -> float:
    return float(font.getlength(text))


def wrap(text: str, font: Font, max_width: float) -> list[str]:
    """Greedy wrap of ``text`` into lines no wider than ``max_width`` (explicit newlines are kept)."""
    lines: list[str] = []
    for paragraph in text.replace("\r\n", "\n").split("\n"):
        lines.extend(_wrap_paragraph(" ".join(paragraph.split()), font, max_width))
    return lines or [""]


def _wrap_paragraph(text: str, font: Font, max_width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for token in _tokens(text):
        if _width(token.rstrip(), font) > max_width:  # a word wider than a line: break it between characters
            for char in token:
                current = _push(lines, current, char, font, max_width)
            continue
        current = _push(lines, current, token, font, max_width)
    if current.strip():
        lines.append(current.rstrip())
    return lines


def _push(lines: list[str], current: str, token: str, font: Font, max_width: float) -> str:
    candidate = current + token
    if not current or _width(candidate.rstrip(), font) <= max_width:
        return candidate
    if token[0] in _NO_LINE_START and len(current.rstrip()) > 1:
        # Kinsoku: carry the previous character down with the punctuation instead of starting a line with it.
        kept = current.rstrip()
        lines.append(kept[:-1].rstrip())
        return kept[-1] + token
    lines.append(current.rstrip())
    return token.lstrip()


def _ellipsize(line: str, font: Font, max_width: float) -> str:
    while line and _width(line + ELLIPSIS, font) > max_width:
        line = line[:-1].rstrip()
    return line + ELLIPSIS


@dataclass(frozen=True)
class TextBlock:
    """One block of a card: ``text`` at ``size`` px, shrinking to ``min_size`` and capped at ``max_lines``."""

    text: str
    size: int
    color: str = "#ffffff"
    min_size: int | None = None
    max_lines: int = 4
    serif: bool = False
    bold: bool = False  # a stroke of the text's own color thickens it (the fonts ship one weight)
    line_spacing: float = 1.25
    space_before: int = 0


@dataclass(frozen=True)
class _Laid:
    font: Font
    lines: list[str]
    block: TextBlock

    @property
    def stroke(self) -> int:
        size = getattr(self.font, "size", self.block.size)
        return max(1, round(size / 45)) if self.block.bold else 0

    @property
    def line_height(self) -> int:
        ascent, descent = _metrics(self.font)
        return round((ascent + descent) * self.block.line_spacing)


def _metrics(font: Font) -> tuple[int, int]:
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return ascent, descent
    box = font.getbbox("Ag")
    return int(box[3]), 0


def layout(block: TextBlock, max_width: float) -> _Laid:
    """Fit ``block`` into ``max_width``: the largest size whose wrap needs at most ``max_lines`` lines."""
    smallest = max(8, block.min_size if block.min_size is not None else round(block.size * 0.6))
    size = block.size
    while True:
        font = load_font(size, serif=block.serif)
        lines = wrap(block.text, font, max_width)
        if len(lines) <= block.max_lines:
            return _Laid(font, lines, block)
        if size <= smallest:
            kept = lines[: block.max_lines]
            kept[-1] = _ellipsize(kept[-1], font, max_width)
            return _Laid(font, kept, block)
        size = max(smallest, int(size * 0.92))


def render_blocks(
    blocks: list[TextBlock], *, width: int, shadow: str = "#000000", shadow_opacity: float = 0.6,
    max_width_ratio: float = 0.84, rule: tuple[int, str] | None = None, mark: tuple[str, int, str] | None = None,
) -> Image.Image:
    """Render text blocks centred, top to bottom, in a transparent RGBA image ``width`` wide.

    ``rule`` = (index, color) draws a short accent rule before block ``index``; ``mark`` = (char, size,
    color) draws a large decorative glyph (an opening quote) above the first block. A soft drop shadow
    keeps the text readable over any background.
    """
    unit = width / 1080
    max_width = width * max_width_ratio
    laid = [layout(block, max_width) for block in blocks if block.text.strip()]
    blur = max(2.0, 5.0 * unit)
    offset = max(1, round(3 * unit))
    margin = round(3 * blur + offset + 8 * unit)

    # Vertical plan: each element's top y, from the font metrics (ascent + descent), never the font size.
    y = margin
    mark_box: tuple[Font, int] | None = None
    if mark is not None:
        mark_font = load_font(mark[1], serif=True)
        ink = mark_font.getbbox(mark[0])
        mark_box = (mark_font, y - int(ink[1]))
        y += int(ink[3] - ink[1]) + round(14 * unit)
    rule_height, rule_gap = max(2, round(3 * unit)), round(22 * unit)
    placements: list[tuple[_Laid, int]] = []
    rule_y: int | None = None
    for index, item in enumerate(laid):
        if rule is not None and index == rule[0] and index > 0:
            rule_y = y + rule_gap
            y += 2 * rule_gap + rule_height
        y += round(item.block.space_before * unit) if index > 0 else 0
        placements.append((item, y))
        y += item.line_height * len(item.lines) + 2 * item.stroke
    height = y + margin

    card = Image.new("RGBA", (width, max(height, 2 * margin)), (0, 0, 0, 0))
    shadow_layer = Image.new("RGBA", card.size, (0, 0, 0, 0))
    draw, shadow_draw = ImageDraw.Draw(card), ImageDraw.Draw(shadow_layer)
    shade = (*_hex_rgb(shadow), round(255 * shadow_opacity))
    if mark is not None and mark_box is not None:
        mark_font, top = mark_box
        ink = mark_font.getbbox(mark[0])
        x = (width - (ink[2] - ink[0])) / 2 - ink[0]  # centre the ink, not the advance (CJK quotes sit aside)
        draw.text((x, top), mark[0], font=mark_font, fill=mark[2])
    if rule is not None and rule_y is not None:
        half = round(36 * unit)
        box = (width // 2 - half, rule_y, width // 2 + half, rule_y + rule_height - 1)
        draw.rectangle(box, fill=rule[1])
        shadow_draw.rectangle((box[0], box[1] + offset, box[2], box[3] + offset), fill=shade)
    for item, top in placements:
        ascent, _ = _metrics(item.font)
        leading = item.line_height - sum(_metrics(item.font))
        for number, line in enumerate(item.lines):
            baseline = top + item.stroke + number * item.line_height + leading // 2 + ascent
            x = (width - _width(line, item.font)) / 2
            common = {"font": item.font, "anchor": "ls", "stroke_width": item.stroke}
            shadow_draw.text((x, baseline + offset), line, fill=shade, stroke_fill=shade, **common)  # type: ignore[arg-type]
            draw.text((x, baseline), line, fill=item.block.color, stroke_fill=item.block.color, **common)  # type: ignore[arg-type]
    shadow_layer = shadow_layer.filter(ImageFilter.GaussianBlur(blur))
    return Image.alpha_composite(shadow_layer, card)


def _hex_rgb(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def render_card(
    lines: list[tuple[str, int]], *, width: int, color: str = "#ffffff", shadow: str = "#000000",
    max_width_ratio: float = 0.84, serif: bool = False, max_lines: int = 4,
) -> Image.Image:
    """Render ``(text, font_size)`` lines centred in a transparent RGBA image ``width`` wide (each line a
    block that wraps and shrinks to fit, see the module docstring)."""
    blocks = [TextBlock(text, size, color=color, serif=serif, max_lines=max_lines) for text, size in lines]
    return render_blocks(blocks, width=width, shadow=shadow, max_width_ratio=max_width_ratio)


@dataclass(frozen=True)
class CardLook:
    """How a style dresses its cards."""

    text: str = "#fbf8f3"
    accent: str = "#d9b26a"
    shadow: str = "#000000"
    serif: bool = False


def render_title_card(
    title: str | None, subtitle: str | None, *, width: int, look: CardLook = CardLook(),
) -> Image.Image:
    """Title (large, up to 3 lines) and subtitle (up to 2 lines), with a short accent rule between them."""
    unit = width / 1080
    blocks: list[TextBlock] = []
    if title and title.strip():
        blocks.append(TextBlock(title, round(78 * unit), color=look.text, min_size=round(44 * unit), max_lines=3,
                                serif=look.serif, bold=True, line_spacing=1.18))
    if subtitle and subtitle.strip():
        blocks.append(TextBlock(subtitle, round(40 * unit), color=look.text, min_size=round(28 * unit), max_lines=2,
                                serif=False, line_spacing=1.3))
    rule = (1, look.accent) if len(blocks) == 2 else None
    return render_blocks(blocks, width=width, shadow=look.shadow, rule=rule)


def render_quote_card(quote: str, *, width: int, look: CardLook = CardLook()) -> Image.Image:
    """A quote (up to 5 lines) under a large opening quotation mark in the accent color."""
    unit = width / 1080
    text = quote.strip().strip("\"“”「」『』")
    block = TextBlock(text or quote, round(56 * unit), color=look.text, min_size=round(32 * unit), max_lines=5,
                      serif=look.serif, line_spacing=1.3)
    return render_blocks([block], width=width, shadow=look.shadow, mark=("“", round(150 * unit), look.accent),
                         max_width_ratio=0.8)
