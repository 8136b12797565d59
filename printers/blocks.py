"""The printed-receipt model both renderers consume: styled lines, rows, separators, QR, cut.

Blocks carry text that already fits the layout width (the builder wraps it), so renderers never
wrap or truncate; `Layout` checks that on construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Align(StrEnum):
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


@dataclass(frozen=True)
class Style:
    bold: bool = False
    double_height: bool = False
    double_width: bool = False
    align: Align = Align.LEFT

    def columns(self, width: int) -> int:
        """Characters that fit on a line of `width` columns: double width halves them."""
        return width // 2 if self.double_width else width


@dataclass(frozen=True)
class TextLine:
    text: str
    style: Style = Style()


@dataclass(frozen=True)
class Row:
    """Two columns on one line: text on the left, an amount flush right."""

    left: str
    right: str
    bold: bool = False
    double_height: bool = False


@dataclass(frozen=True)
class Separator:
    char: str = "-"


@dataclass(frozen=True)
class QrBlock:
    """A centred QR code; `module_size` is printer dots per module (GS ( k size, 1-16)."""

    data: str
    module_size: int = 4


@dataclass(frozen=True)
class Feed:
    lines: int = 1


@dataclass(frozen=True)
class Cut:
    pass


Block = TextLine | Row | Separator | QrBlock | Feed | Cut


class LayoutError(ValueError):
    """A block does not fit the width it was built for."""


@dataclass(frozen=True)
class Layout:
    width: int
    blocks: tuple[Block, ...]

    def __post_init__(self) -> None:
        for block in self.blocks:
            if isinstance(block, TextLine):
                columns = block.style.columns(self.width)
                if len(block.text) > columns:
                    raise LayoutError(f"line longer than {columns} columns: {block.text!r}")
            elif isinstance(block, Row) and _row_length(block) > self.width:
                raise LayoutError(f"row longer than {self.width} columns: {block.left!r}")
            elif isinstance(block, QrBlock) and not 1 <= block.module_size <= 16:
                raise LayoutError("QR module size must be 1-16")


def _row_length(row: Row) -> int:
    gap = 1 if row.left and row.right else 0
    return len(row.left) + gap + len(row.right)
