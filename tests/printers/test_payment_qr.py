"""The IRIS QR slip: what the customer scans, the amount, the receipt it pays, until when."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from printers.blocks import QrBlock, Row, TextLine
from printers.escpos_render import render_escpos
from printers.payment_qr import TITLE, PaymentQrSlip, payment_qr_layout
from printers.profile import PrinterProfile
from printers.receipt import ATHENS

SLIP = PaymentQrSlip(
    issuer="ΠΑΠΑΔΟΠΟΥΛΟΣ ΓΕΩΡΓΙΟΣ ΚΑΙ ΣΙΑ Ο.Ε. - Καφέ «Ακρόπολις» Ερμού 25",
    series="ΑΛΠ",
    number=1240,
    amount=Decimal("9.00"),
    qr="IRIS:IRIS-SANDBOX-0001:AR01:E2E01:9.00",
    valid_until=datetime(2026, 11, 21, 14, 8, 9, tzinfo=ATHENS),
)


@pytest.mark.parametrize("width", [32, 42, 48])
def test_slip_names_the_amount_the_receipt_and_the_validity(width: int) -> None:
    layout = payment_qr_layout(SLIP, width)  # a text wider than the paper would raise
    texts = [
        f"{b.left} {b.right}".strip() if isinstance(b, Row) else b.text.strip()
        for b in layout.blocks
        if isinstance(b, TextLine | Row)
    ]
    assert TITLE in texts
    assert "ΠΟΣΟ 9,00 €" in texts
    assert "Απόδειξη ΑΛΠ 1240" in texts
    assert "Ισχύει έως 14:08:09" in texts
    assert [b.data for b in layout.blocks if isinstance(b, QrBlock)] == [SLIP.qr]


def test_slip_renders_to_escpos_with_a_native_qr() -> None:
    data = render_escpos(payment_qr_layout(SLIP, 48), PrinterProfile("cp1253"))
    assert SLIP.qr.encode() in data
    assert "ΠΛΗΡΩΜΗ IRIS".encode("cp1253") in data
