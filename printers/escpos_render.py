"""Render a Layout to ESC/POS bytes through python-escpos, with Greek under our control.

The stream starts with ESC @ and then ESC t n for the profile's table (ESC @ resets the table, and
printers keep it across jobs). All text is encoded by `CodePage` and written with `_raw`, so
python-escpos' MagicEncode never sees Greek. Styles are tracked and emitted only on change, which
keeps the output small and byte-for-byte deterministic.
"""

from __future__ import annotations

from escpos.constants import QR_ECLEVEL_M
from escpos.escpos import Escpos
from escpos.printer import Dummy
from PIL import Image

from printers.blocks import Align, Cut, Feed, Layout, QrBlock, Row, Separator, Style, TextLine
from printers.profile import PrinterProfile
from printers.qr_image import qr_image
from printers.wrap import wrap_text

ESC = b"\x1b"
GS = b"\x1d"
LF = b"\n"
_ALIGN_CODES = {Align.LEFT: 0, Align.CENTER: 1, Align.RIGHT: 2}


def render_escpos(layout: Layout, profile: PrinterProfile) -> bytes:
    """The complete job as bytes, built on python-escpos' Dummy backend."""
    printer = Dummy()
    _Writer(printer, layout, profile).write()
    return printer.output


class _Writer:
    def __init__(self, printer: Escpos, layout: Layout, profile: PrinterProfile) -> None:
        self.printer = printer
        self.layout = layout
        self.profile = profile
        self.codepage = profile.code_page
        self.align = Align.LEFT
        self.bold = False
        self.size = 0

    def write(self) -> None:
        self.printer._raw(ESC + b"@" + ESC + b"t" + bytes((self.profile.escpos_table,)))
        for block in self.layout.blocks:
            if isinstance(block, TextLine):
                self._text(block)
            elif isinstance(block, Row):
                self._row(block)
            elif isinstance(block, Separator):
                self._style(Style())
                self._line(block.char * self.layout.width)
            elif isinstance(block, QrBlock):
                self._qr(block)
            elif isinstance(block, Feed):
                self.printer._raw(ESC + b"d" + bytes((block.lines,)))
            elif isinstance(block, Cut):
                self._style(Style())
                self.printer.cut()

    def _style(self, style: Style) -> None:
        size = (0x10 if style.double_width else 0) | (0x01 if style.double_height else 0)
        if style.align is not self.align:
            self.printer._raw(ESC + b"a" + bytes((_ALIGN_CODES[style.align],)))
            self.align = style.align
        if style.bold != self.bold:
            self.printer._raw(ESC + b"E" + bytes((int(style.bold),)))
            self.bold = style.bold
        if size != self.size:
            self.printer._raw(GS + b"!" + bytes((size,)))
            self.size = size

    def _line(self, text: str) -> None:
        self.printer._raw(self.codepage.encode(text) + LF)

    def _text(self, block: TextLine) -> None:
        self._style(block.style)
        columns = block.style.columns(self.layout.width)
        prepared = self.codepage.prepare(block.text)
        for line in wrap_text(prepared, columns) if len(prepared) > columns else [prepared]:
            self._line(line)

    def _row(self, block: Row) -> None:
        """Pad after substitution: CP737 prints € as EUR, which is two columns wider."""
        self._style(Style(bold=block.bold, double_height=block.double_height))
        left = self.codepage.prepare(block.left)
        right = self.codepage.prepare(block.right)
        gap = self.layout.width - len(left) - len(right)
        if gap < 1 and left and right:
            self._line(left)
            gap = self.layout.width - len(right)
            left = ""
        self._line(left + " " * max(gap, 0) + right)

    def _qr(self, block: QrBlock) -> None:
        self._style(Style(align=Align.CENTER))
        if self.profile.native_qr:
            self.printer.qr(block.data, ec=QR_ECLEVEL_M, size=block.module_size, native=True)
            self.printer._raw(LF)
            return
        self.printer._raw(_raster_qr(block, self.profile.dots_for(self.layout.width)) + LF)


def _raster_qr(block: QrBlock, paper_dots: int) -> bytes:
    """GS v 0 raster of the code centred on a full-width canvas (no reliance on ESC a for images).

    Same bytes python-escpos' `image()` sends, built directly from a 1-bit image whose set bits
    are dots; `image()` itself would print a warning to stdout on profiles without a paper width.
    """
    code = qr_image(block.data, block.module_size, paper_dots, ink=1)
    canvas = Image.new("1", (paper_dots, code.height), 0)
    canvas.paste(code, ((paper_dots - code.width) // 2, 0))
    size = (paper_dots // 8).to_bytes(2, "little") + code.height.to_bytes(2, "little")
    return GS + b"v0\x00" + size + canvas.tobytes()
