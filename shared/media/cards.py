"""Text cards: user text rendered to transparent PNGs with Pillow.

Text is drawn here, never by ffmpeg's drawtext, so quotes, colons, percent signs, backslashes and braces
in a title appear literally and cannot inject filtergraph syntax.
"""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFilter, ImageFont


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
          max_width: int) -> list[str]:
    """Greedy word wrap; a word wider than the line is broken by characters (CJK has no spaces)."""
    lines: list[str] = []
    current = ""
    for token in _tokens(text):
        candidate = current + token
        if current and draw.textlength(candidate.rstrip(), font=font) > max_width:
            lines.append(current.rstrip())
            current = token.lstrip()
        else:
            current = candidate
    if current.strip():
        lines.append(current.rstrip())
    return lines


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    word = ""
    for char in text:
        if char.isspace():
            tokens.append(word + char)
            word = ""
        elif ord(char) > 0x2E80:  # CJK and beyond: every character may start a line
            if word:
                tokens.append(word)
                word = ""
            tokens.append(char)
        else:
            word += char
    if word:
        tokens.append(word)
    return tokens


def render_card(
    lines: list[tuple[str, int]], *, width: int, color: str = "#ffffff", shadow: str = "#000000",
    max_width_ratio: float = 0.84,
) -> Image.Image:
    """Render ``(text, font_size)`` lines centred in a transparent RGBA image ``width`` wide.

    A soft drop shadow keeps the text readable over any background.
    """
    measure = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    laid_out: list[tuple[str, ImageFont.FreeTypeFont | ImageFont.ImageFont, int]] = []
    for text, size in lines:
        font = _font(size)
        for line in _wrap(measure, text, font, int(width * max_width_ratio)):
            laid_out.append((line, font, int(size * 1.3)))
    margin = 24
    height = sum(step for _, _, step in laid_out) + 2 * margin
    card = Image.new("RGBA", (width, max(height, 2 * margin)), (0, 0, 0, 0))
    shadow_layer = Image.new("RGBA", card.size, (0, 0, 0, 0))
    draw, shadow_draw = ImageDraw.Draw(card), ImageDraw.Draw(shadow_layer)
    y = margin
    for line, font, step in laid_out:
        x = (width - draw.textlength(line, font=font)) / 2
        shadow_draw.text((x + 2, y + 3), line, font=font, fill=shadow)
        draw.text((x, y), line, font=font, fill=color)
        y += step
    shadow_layer = shadow_layer.filter(ImageFilter.GaussianBlur(4))
    return Image.alpha_composite(shadow_layer, card)
