"""Write PNG previews of the sample receipts: `python -m printers.preview docs/receipts`.

The committed previews under docs/receipts are produced by this, so anyone can regenerate them
after a layout change and look at the result.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from printers.layout import build_layout
from printers.payment_qr import SAMPLE_IRIS_SLIP, payment_qr_layout
from printers.png_render import write_png
from printers.samples import (
    sample_card_receipt,
    sample_cash_receipt,
    sample_discount_receipt,
    sample_offline_receipt,
    sample_offline_return,
)

IRIS_NAME = "iris-qr-58mm.png"


def write_sample_previews(directory: Path) -> list[Path]:
    """Cash, card, offline (code 1), discounted receipts and an offline return on 80 mm, plus
    a 58 mm reprint copy and an IRIS QR slip."""
    jobs = [
        ("cash-80mm.png", sample_cash_receipt(), 48),
        ("card-80mm.png", sample_card_receipt(), 48),
        ("offline-80mm.png", sample_offline_receipt(), 48),
        ("discount-80mm.png", sample_discount_receipt(), 48),
        ("return-offline-80mm.png", sample_offline_return(), 48),
        ("card-copy-58mm.png", replace(sample_card_receipt(), copy=True), 32),
    ]
    written = [
        write_png(build_layout(receipt, width), directory / name) for name, receipt, width in jobs
    ]
    return [*written, write_png(payment_qr_layout(SAMPLE_IRIS_SLIP, 32), directory / IRIS_NAME)]


def main(argv: list[str]) -> int:
    directory = Path(argv[1]) if len(argv) > 1 else Path("docs/receipts")
    for path in write_sample_previews(directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
