"""Sample order slips (8.6) for previews and the printer tests: online, offline (code 1), a
return, a cancellation and the kitchen's copy. `python -m printers.order_samples docs/receipts`
writes their PNG previews."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from printers.layout import build_layout
from printers.png_render import write_png
from printers.receipt import (
    ATHENS,
    OrderSlip,
    PrintableReceipt,
    ReceiptLine,
    Totals,
    VatBreakdown,
)
from printers.samples import SAMPLE_FOOTER, SAMPLE_ISSUER

_ISSUED = datetime(2026, 11, 21, 13, 42, 30, tzinfo=ATHENS)
_UID = "9A1C33F08B7D2E64C51A0F9E8D7C6B5A49382716"


def _line(text: str, quantity: str, price: str, total: str) -> ReceiptLine:
    return ReceiptLine(
        description=text,
        quantity=Decimal(quantity),
        unit_price=Decimal(price),
        total=Decimal(total),
        vat_percent=Decimal("13"),
        vat_category=2,
        unit="ΤΕΜ",
    )


def sample_order_slip() -> PrintableReceipt:
    """Table 12, waiter Μαρία: two freddo espresso and a toast, online with its MARK."""
    return PrintableReceipt(
        issuer=SAMPLE_ISSUER,
        type_code="8.6",
        series="ΔΠΕ",
        number=318,
        issued_at=_ISSUED,
        lines=(
            _line("Φρέντο εσπρέσο μέτριο", "2", "3.50", "7.00"),
            _line("Τοστ γαλοπούλα - τυρί", "1", "4.00", "4.00"),
        ),
        vat_analysis=(
            VatBreakdown(2, Decimal("13"), Decimal("9.73"), Decimal("1.27"), Decimal("11.00")),
        ),
        totals=Totals(net=Decimal("9.73"), vat=Decimal("1.27"), gross=Decimal("11.00")),
        payments=(),
        uid=_UID,
        mark="400001961636061",
        authentication_code="5E1B0C7A9D3F2468ACE013579BDF2468ACE01357",
        qr_url=f"https://einvoice.s1ecos.gr/v/{_UID.lower()}",
        footer=SAMPLE_FOOTER,
        order=OrderSlip(table="12", waiter="Μαρία"),
    )


def sample_offline_order_slip() -> PrintableReceipt:
    offline_url = (
        "https://einvoice.s1ecos.gr/TransmissionFailure?issuerTin=EL801234567&customerTin="
        "&customerName=&invoiceType=8.6&series=%CE%94%CE%A0%CE%95&number=318"
        "&dateIssued=20261121134230&totalAmount=11.00&totalNetAmount=9.73"
        "&totalVatAmount=1.27&internalId=8.6_%CE%94%CE%A0%CE%95_318"
        "&signature=0f6e1d2c3b4a59687766554433221100ffeeddcc"
    )
    return replace(
        sample_order_slip(),
        mark=None,
        authentication_code=None,
        qr_url=None,
        delayed_code=1,
        offline_qr_url=offline_url,
    )


def sample_kitchen_copy() -> PrintableReceipt:
    slip = sample_order_slip()
    assert slip.order is not None
    return replace(slip, order=replace(slip.order, kitchen=True))


def sample_cancel_slip() -> PrintableReceipt:
    zero = Decimal("0.00")
    return replace(
        sample_order_slip(),
        number=319,
        lines=(),
        vat_analysis=(),
        totals=Totals(net=zero, vat=zero, gross=zero),
        correlated_marks=("400001961636061",),
        mark="400001961636070",
        order=OrderSlip(table="12", waiter="Μαρία", kind="cancel"),
    )


def write_order_previews(directory: Path) -> list[Path]:
    """The order slip online and offline (80 mm), and the kitchen's copy (58 mm)."""
    jobs = [
        ("order-80mm.png", sample_order_slip(), 48),
        ("order-offline-80mm.png", sample_offline_order_slip(), 48),
        ("order-kitchen-58mm.png", sample_kitchen_copy(), 32),
    ]
    return [
        write_png(build_layout(receipt, width), directory / name) for name, receipt, width in jobs
    ]


def main(argv: list[str]) -> int:
    directory = Path(argv[1]) if len(argv) > 1 else Path("docs/receipts")
    for path in write_order_previews(directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
