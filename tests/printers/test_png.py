"""PNG previews: paper-sized, non-blank, Greek-capable font shipped with the package, QR present."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from printers.blocks import Layout, QrBlock, TextLine
from printers.layout import build_layout
from printers.png_render import render_image, render_png, write_png
from printers.preview import write_sample_previews
from printers.samples import sample_card_receipt, sample_cash_receipt, sample_offline_receipt

DOCS = Path(__file__).resolve().parents[2] / "docs" / "receipts"


@pytest.mark.parametrize(("width", "pixels"), [(32, 384), (42, 384), (48, 576)])
def test_png_is_paper_width_and_not_blank(width: int, pixels: int) -> None:
    data = render_png(build_layout(sample_card_receipt(), width))
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.width == pixels
    assert 800 < image.height < 6000
    histogram = image.convert("L").histogram()
    dark = sum(histogram[:128])
    assert 0.02 < dark / (image.width * image.height) < 0.4
    assert image.getpixel((0, 0)) == 255, "white paper"


def test_greek_glyphs_are_drawn_not_boxes() -> None:
    """Distinct Greek letters give distinct bitmaps (a missing glyph draws the same box)."""
    bitmaps = set()
    for letter in "ΑΒΓΔΣΩαβγδ€":
        image = render_image(Layout(width=32, blocks=(TextLine(letter * 8),)))
        bitmaps.add(image.tobytes())
    assert len(bitmaps) == len("ΑΒΓΔΣΩαβγδ€")


def test_qr_is_drawn_and_decodable_size() -> None:
    without = render_image(build_layout(replace(sample_cash_receipt(), qr_url=None), 48))
    with_qr = render_image(build_layout(sample_cash_receipt(), 48))
    assert with_qr.height - without.height > 150


def test_offline_receipt_uses_the_larger_offline_qr() -> None:
    layout = build_layout(sample_offline_receipt(), 48)
    (qr,) = [block for block in layout.blocks if isinstance(block, QrBlock)]
    assert "TransmissionFailure" in qr.data
    assert render_image(layout).width == 576


def test_write_png_creates_directories(tmp_path: Path) -> None:
    path = write_png(build_layout(sample_cash_receipt(), 42), tmp_path / "a" / "b.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_sample_previews_regenerate_and_committed_ones_exist(tmp_path: Path) -> None:
    written = write_sample_previews(tmp_path)
    assert [path.name for path in written] == [
        "cash-80mm.png",
        "card-80mm.png",
        "offline-80mm.png",
        "discount-80mm.png",
        "return-offline-80mm.png",
        "card-copy-58mm.png",
        "iris-qr-58mm.png",
    ]
    for path in written:
        committed = DOCS / path.name
        assert committed.exists(), f"run python -m printers.preview {DOCS}"
        assert Image.open(committed).size == Image.open(path).size
