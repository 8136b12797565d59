"""The X and Z reports on paper: a title, then sections of `label  value` rows.

What the sections hold is decided by the agent (`agent/core/day_slip.py`); this module only lays
them out for a paper width, wrapping as the receipts do, so the same layout goes to the printer
(ESC/POS), to the PNG preview and, as text, to the technician's terminal.
"""

from __future__ import annotations

from dataclasses import dataclass

from printers.blocks import Align, Cut, Layout, Row, Separator, Style, TextLine
from printers.layout import SUPPORTED_WIDTHS, _Builder

_TITLE = Style(bold=True, double_height=True, align=Align.CENTER)
_CENTER = Style(align=Align.CENTER)
_BOLD = Style(bold=True)


@dataclass(frozen=True)
class SlipSection:
    heading: str
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DaySlip:
    title: str
    header: tuple[str, ...]
    sections: tuple[SlipSection, ...]


def build_day_layout(slip: DaySlip, width: int) -> Layout:
    if width not in SUPPORTED_WIDTHS:
        raise ValueError(f"width {width} is not one of {SUPPORTED_WIDTHS}")
    builder = _Builder(width)
    builder.text(slip.title, _TITLE)
    for line in slip.header:
        builder.text(line, _CENTER)
    for section in slip.sections:
        builder.separator("=")
        builder.text(section.heading, _BOLD)
        for label, value in section.rows:
            builder.field(label, value)
    builder.separator("=")
    builder.blocks.append(Cut())
    return Layout(width=width, blocks=tuple(builder.blocks))


def layout_text(layout: Layout) -> str:
    """The layout as plain text lines of its width (for a terminal)."""
    lines: list[str] = []
    for block in layout.blocks:
        if isinstance(block, TextLine):
            columns = layout.width
            text = block.text
            if block.style.align is Align.CENTER:
                text = text.center(columns).rstrip()
            lines.append(text)
        elif isinstance(block, Row):
            gap = layout.width - len(block.left) - len(block.right)
            lines.append(block.left + " " * max(gap, 1) + block.right)
        elif isinstance(block, Separator):
            lines.append(block.char * layout.width)
    return "\n".join(lines) + "\n"
