"""The IRIS payment QR as a slip for the receipt printer, when the till has no customer display.

Not a fiscal document: it says so, names the receipt it pays, the amount and until when the QR
can be scanned. Laid out into the same blocks as a receipt, so both renderers (ESC/POS, PNG)
draw it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from printers.blocks import (
    Align,
    Block,
    Cut,
    Feed,
    Layout,
    QrBlock,
    Row,
    Separator,
    Style,
    TextLine,
)
from printers.money import format_money
from printers.receipt import ATHENS
from printers.wrap import wrap_text

TITLE = "ΠΛΗΡΩΜΗ IRIS"
NOTICE = "Σαρώστε με την εφαρμογή της τράπεζάς σας. Δεν είναι φορολογικό στοιχείο."


@dataclass(frozen=True)
class PaymentQrSlip:
    issuer: str
    series: str
    number: int
    amount: Decimal
    qr: str
    valid_until: datetime


def payment_qr_layout(slip: PaymentQrSlip, width: int) -> Layout:
    centre = Style(align=Align.CENTER)
    bold = Style(bold=True, align=Align.CENTER)
    blocks: list[Block] = [TextLine(line, bold) for line in wrap_text(slip.issuer, width)]
    blocks += [
        TextLine(TITLE, Style(bold=True, double_height=True, align=Align.CENTER)),
        Separator("="),
        Row(f"Απόδειξη {slip.series} {slip.number}", ""),
        Row("ΠΟΣΟ", f"{format_money(slip.amount)} €", bold=True, double_height=True),
        Feed(1),
        QrBlock(slip.qr, module_size=5 if width >= 48 else 4),
        Feed(1),
        TextLine(f"Ισχύει έως {slip.valid_until.astimezone(ATHENS):%H:%M:%S}", centre),
    ]
    blocks += [TextLine(line, centre) for line in wrap_text(NOTICE, width)]
    blocks.append(Cut())
    return Layout(width=width, blocks=tuple(blocks))


SAMPLE_IRIS_SLIP = PaymentQrSlip(
    issuer="Καφέ «Ακρόπολις»",
    series="ΑΛΠ",
    number=1240,
    amount=Decimal("9.00"),
    qr="IRIS:IRIS-SANDBOX-0001:AR5F2C9E0A7B31D4E8:E2E8C1D0F2A9B7E6C5D4A3B2C1D0:9.00",
    valid_until=datetime(2026, 11, 21, 14, 8, 9, tzinfo=ATHENS),
)
