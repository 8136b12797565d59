"""Draw a Layout as a PNG that looks like the paper: previews, the demo, support tickets, tests.

One column of the layout is one character cell of DejaVu Sans Mono (shipped in `printers/fonts`,
loaded through importlib.resources so a fresh clone or a wheel finds it). The image is as wide as
the printer head: 576 px for 80 mm (48 columns), 384 px for 58 mm (32/42 columns).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from printers.blocks import Align, Cut, Feed, Layout, QrBlock, Row, Separator, Style, TextLine
from printers.profile import PAPER_DOTS
from printers.qr_image import qr_image

MARGIN_PX = 10
_FONT_FILES = {False: "DejaVuSansMono.ttf", True: "DejaVuSansMono-Bold.ttf"}
_INK = 0
_PAPER = 255
_PNG_COMPRESSION = 3  # zlib level: within a few % of level 6 in size at half the time


@lru_cache(maxsize=2)
def _font_bytes(bold: bool) -> bytes:
    return (resources.files("printers") / "fonts" / _FONT_FILES[bold]).read_bytes()


@lru_cache(maxsize=16)
def _font(bold: bool, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(io.BytesIO(_font_bytes(bold)), size)


@lru_cache(maxsize=4096)
def _glyph(char: str, bold: bool, size: int, cell: float, line: int) -> Image.Image:
    """One character cell as a mask; receipts reuse few glyphs, FreeType runs once per glyph."""
    mask = Image.new("L", (int(cell) + 3, line), 0)
    ImageDraw.Draw(mask).text((0, 0), char, font=_font(bold, size), fill=255)
    return mask


@dataclass(frozen=True)
class _Metrics:
    size: int
    cell: float
    line: int


@lru_cache(maxsize=8)
def _metrics(columns: int, content_px: int) -> _Metrics:
    """The largest font whose `columns` cells fit the printable width."""
    for size in range(40, 6, -1):
        cell = _font(False, size).getlength("0")
        if cell * columns <= content_px:
            ascent, descent = _font(False, size).getmetrics()
            return _Metrics(size=size, cell=cell, line=ascent + descent + 2)
    raise ValueError(f"{columns} columns do not fit {content_px} px")


def render_png(layout: Layout) -> bytes:
    """The receipt as PNG bytes (8-bit grayscale, white paper, black ink)."""
    buffer = io.BytesIO()
    render_image(layout).save(buffer, format="PNG", compress_level=_PNG_COMPRESSION)
    return buffer.getvalue()


def write_png(layout: Layout, path: Path) -> Path:
    """Write the preview, creating the directory; returns the path for logging."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_png(layout))
    return path


def render_image(layout: Layout) -> Image.Image:
    paper = PAPER_DOTS.get(layout.width, 576)
    metrics = _metrics(layout.width, paper - 2 * MARGIN_PX)
    painter = _Painter(layout, paper, metrics)
    height = sum(painter.height(block) for block in layout.blocks) + 2 * MARGIN_PX
    image = Image.new("L", (paper, height), _PAPER)
    painter.paint(image)
    return image


class _Painter:
    def __init__(self, layout: Layout, paper: int, metrics: _Metrics) -> None:
        self.layout = layout
        self.paper = paper
        self.metrics = metrics
        self.left = (paper - metrics.cell * layout.width) / 2

    def height(self, block: object) -> int:
        line = self.metrics.line
        if isinstance(block, TextLine):
            return line * (2 if block.style.double_height else 1)
        if isinstance(block, Row):
            return line * (2 if block.double_height else 1)
        if isinstance(block, Separator | Cut):
            return line
        if isinstance(block, Feed):
            return line * block.lines
        if isinstance(block, QrBlock):
            return self._qr(block).height + line
        raise TypeError(f"unknown block {block!r}")

    def paint(self, image: Image.Image) -> None:
        draw = ImageDraw.Draw(image)
        y = MARGIN_PX
        for block in self.layout.blocks:
            if isinstance(block, TextLine):
                self._text(image, draw, block.text, block.style, y)
            elif isinstance(block, Row):
                style = Style(bold=block.bold, double_height=block.double_height)
                self._text(image, draw, block.left, style, y)
                right = Style(bold=block.bold, double_height=block.double_height, align=Align.RIGHT)
                self._text(image, draw, block.right, right, y)
            elif isinstance(block, Separator):
                self._text(image, draw, block.char * self.layout.width, Style(), y)
            elif isinstance(block, QrBlock):
                code = self._qr(block)
                image.paste(code, ((self.paper - code.width) // 2, y + self.metrics.line // 2))
            elif isinstance(block, Cut):
                self._tear(draw, y + self.metrics.line // 2)
            y += self.height(block)

    def _qr(self, block: QrBlock) -> Image.Image:
        return qr_image(block.data, block.module_size, self.paper - 2 * MARGIN_PX).convert("L")

    def _text(
        self, image: Image.Image, draw: ImageDraw.ImageDraw, text: str, style: Style, y: int
    ) -> None:
        if not text:
            return
        scale_x = 2 if style.double_width else 1
        cells = len(text) * scale_x
        if style.align is Align.CENTER:
            x = self.left + (self.layout.width - cells) // 2 * self.metrics.cell
        elif style.align is Align.RIGHT:
            x = self.left + (self.layout.width - cells) * self.metrics.cell
        else:
            x = self.left
        font = _font(style.bold, self.metrics.size)
        if not (style.double_width or style.double_height):
            self._cells(image, text, style.bold, x, y)
            return
        glyphs = Image.new("L", (round(len(text) * self.metrics.cell) + 1, self.metrics.line), 0)
        ImageDraw.Draw(glyphs).text((0, 0), text, font=font, fill=255)
        scale_y = 2 if style.double_height else 1
        stretched = glyphs.resize((glyphs.width * scale_x, glyphs.height * scale_y))
        image.paste(_INK, (round(x), y), stretched)

    def _cells(self, image: Image.Image, text: str, bold: bool, x: float, y: int) -> None:
        metrics = self.metrics
        for index, char in enumerate(text):
            if not char.isspace():
                mask = _glyph(char, bold, metrics.size, metrics.cell, metrics.line)
                image.paste(_INK, (round(x + index * metrics.cell), y), mask)

    def _tear(self, draw: ImageDraw.ImageDraw, y: int) -> None:
        for x in range(0, self.paper, 12):
            draw.line((x, y, x + 6, y), fill=160, width=1)
