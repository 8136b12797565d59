"""What the renderer needs to know about one printer model: its Greek table, QR and paper."""

from __future__ import annotations

from dataclasses import dataclass

from printers.codepages import CodePage, code_page

PAPER_DOTS = {32: 384, 42: 384, 48: 576}


@dataclass(frozen=True)
class PrinterProfile:
    """`table` overrides the Epson `ESC t` number for vendors that number tables differently
    (POS-5890: CP1253 is 90, CP737 is 64); `paper_dots` is the printable width of the head,
    by default derived from the layout width (384 dots for 58 mm, 576 for 80 mm)."""

    codepage: str = "cp1253"
    table: int | None = None
    native_qr: bool = True
    paper_dots: int | None = None

    def __post_init__(self) -> None:
        code_page(self.codepage)
        if self.table is not None and not 0 <= self.table <= 255:
            raise ValueError("ESC t table number must be 0-255")
        if self.paper_dots is not None and (self.paper_dots % 8 or self.paper_dots <= 0):
            raise ValueError("paper_dots must be a positive multiple of 8")

    @property
    def code_page(self) -> CodePage:
        return code_page(self.codepage)

    @property
    def escpos_table(self) -> int:
        return self.code_page.escpos_table if self.table is None else self.table

    def dots_for(self, width: int) -> int:
        return self.paper_dots or PAPER_DOTS.get(width, 576)
