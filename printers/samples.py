"""Sample receipts (cash, card, offline) for previews, the demo and the printer tests.

Values are invented but shaped like the real ones: 15-digit MARK, 40-hex UID and authentication
code, a base64 ECDSA signature from the card flow, the Elise TransmissionFailure offline URL.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from printers.receipt import (
    ATHENS,
    CardDetails,
    Issuer,
    OriginalDocument,
    Payment,
    PrintableReceipt,
    ReceiptLine,
    Totals,
    VatBreakdown,
)

SAMPLE_ISSUER = Issuer(
    name="ΠΑΠΑΔΟΠΟΥΛΟΣ ΓΕΩΡΓΙΟΣ ΚΑΙ ΣΙΑ Ο.Ε.",
    brand="Καφέ «Ακρόπολις»",
    vat="801234567",
    tax_office="Α' ΑΘΗΝΩΝ",
    branch=0,
    activity="Καφετέρια - Αναψυκτήριο",
    address_lines=("Ερμού 25, 105 63 Αθήνα",),
    phone="210 3212345",
)

SAMPLE_FOOTER = (
    "Πάροχος: SoftOne Technologies Α.Ε.",
    "https://www.s1ecos.gr",
    "Άδεια παρόχου: ELISE_SAMPLE_001",
)


def _hex40(seed: str) -> str:
    return hashlib.sha1(seed.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


def _lines() -> tuple[ReceiptLine, ...]:
    def line(text: str, quantity: str, price: str, total: str, percent: str) -> ReceiptLine:
        category = 1 if percent == "24" else 2
        return ReceiptLine(
            description=text,
            quantity=Decimal(quantity),
            unit_price=Decimal(price),
            total=Decimal(total),
            vat_percent=Decimal(percent),
            vat_category=category,
            unit="τεμ.",
        )

    return (
        line("Ελληνικός καφές διπλός", "2", "3.50", "7.00", "24"),
        line("Τυρόπιτα χωριάτικη με χειροποίητο φύλλο κρούστας", "1", "2.80", "2.80", "13"),
        line("Ούζο Καΐκι 200ml", "1", "6.50", "6.50", "24"),
        line("Νερό 500ml", "2", "0.50", "1.00", "13"),
    )


_VAT = (
    VatBreakdown(1, Decimal("24"), Decimal("10.89"), Decimal("2.61"), Decimal("13.50")),
    VatBreakdown(2, Decimal("13"), Decimal("3.36"), Decimal("0.44"), Decimal("3.80")),
)
_TOTALS = Totals(net=Decimal("14.25"), vat=Decimal("3.05"), gross=Decimal("17.30"))
_ISSUED = datetime(2026, 11, 21, 14, 5, 9, tzinfo=ATHENS)


def _receipt(number: int, payments: tuple[Payment, ...]) -> PrintableReceipt:
    uid = _hex40(f"801234567-2026-11-21-0-11.1-ΑΛΠ-{number}")
    return PrintableReceipt(
        issuer=SAMPLE_ISSUER,
        type_code="11.1",
        series="ΑΛΠ",
        number=number,
        issued_at=_ISSUED,
        lines=_lines(),
        vat_analysis=_VAT,
        totals=_TOTALS,
        payments=payments,
        uid=uid,
        mark=f"40000{number:010d}",
        authentication_code=_hex40(f"auth-{number}"),
        qr_url=f"https://einvoice.s1ecos.gr/v/{uid.lower()}",
        footer=SAMPLE_FOOTER,
    )


def sample_cash_receipt() -> PrintableReceipt:
    return _receipt(1234, (Payment(3, "Μετρητά", Decimal("17.30")),))


def sample_card_receipt() -> PrintableReceipt:
    signature = base64.b64encode(hashlib.sha512(b"sample card signature").digest() * 2).decode()
    card = CardDetails(
        terminal_id="16012345",
        transaction_id="702C5A8F-1D2B-4E31-9C77-AB12CD34EF56",
        signature=signature,
    )
    payment = Payment(7, "Κάρτα (POS)", Decimal("17.30"), tip=Decimal("2.00"), card=card)
    return _receipt(1235, (payment,))


def sample_offline_receipt() -> PrintableReceipt:
    online = _receipt(1236, (Payment(3, "Μετρητά", Decimal("17.30")),))
    offline_url = (
        "https://einvoice.s1ecos.gr/TransmissionFailure?issuerTin=801234567&customerTin="
        "&customerName=&invoiceType=11.1&series=%CE%91%CE%9B%CE%A0&number=1236"
        "&dateIssued=20261121140509&totalAmount=17.30&totalNetAmount=14.25"
        "&totalVatAmount=3.05&internalId=7f3e9a10-5b2c-4d8e-a1f6-0c9b8e7d6a51"
        f"&signature={_hex40('offline-1236').lower()}"
    )
    return replace(
        online,
        mark=None,
        authentication_code=None,
        qr_url=None,
        delayed_code=1,
        offline_qr_url=offline_url,
    )


def sample_discount_receipt() -> PrintableReceipt:
    """10 % off the coffees and 1,00 off the whole receipt, over two VAT rates: the amounts the
    agent computes for that sale (tests/core/test_printable.py issues it and compares)."""

    def line(text: str, quantity: str, price: str, total: str, discount: str) -> ReceiptLine:
        percent = "24" if text.startswith("Καφές") else "13"
        return ReceiptLine(
            description=text,
            quantity=Decimal(quantity),
            unit_price=Decimal(price),
            total=Decimal(total),
            vat_percent=Decimal(percent),
            vat_category=1 if percent == "24" else 2,
            unit="τεμ.",
            discount=Decimal(discount),
        )

    receipt = _receipt(1237, (Payment(3, "ΜΕΤΡΗΤΑ", Decimal("9.60")),))
    return replace(
        receipt,
        lines=(
            line("Καφές φίλτρου", "2", "3.50", "5.70", "1.30"),
            line("Τυρόπιτα", "1", "2.80", "2.54", "0.26"),
            line("Νερό 500ml", "3", "0.50", "1.36", "0.14"),
        ),
        vat_analysis=(
            VatBreakdown(1, Decimal("24"), Decimal("4.60"), Decimal("1.10"), Decimal("5.70")),
            VatBreakdown(2, Decimal("13"), Decimal("3.45"), Decimal("0.45"), Decimal("3.90")),
        ),
        totals=Totals(
            net=Decimal("8.05"),
            vat=Decimal("1.55"),
            gross=Decimal("9.60"),
            discount=Decimal("1.70"),
        ),
    )


def sample_offline_return() -> PrintableReceipt:
    """An 11.4 credit issued during an outage against a receipt of the same outage: offline,
    printed with its original's series, number and date (its MARK is not known yet)."""
    credit = replace(
        sample_offline_receipt(),
        type_code="11.4",
        series="ΠΠΛ",
        number=57,
        lines=_lines()[:1],
        vat_analysis=(
            VatBreakdown(1, Decimal("24"), Decimal("5.65"), Decimal("1.35"), Decimal("7.00")),
        ),
        totals=Totals(net=Decimal("5.65"), vat=Decimal("1.35"), gross=Decimal("7.00")),
        payments=(Payment(3, "ΜΕΤΡΗΤΑ", Decimal("7.00")),),
        original=OriginalDocument("11.1", "ΑΛΠ", 1236, _ISSUED),
        uid=_hex40("801234567-2026-11-21-0-11.4-ΠΠΛ-57"),
        offline_qr_url=(
            "https://einvoice.s1ecos.gr/TransmissionFailure?issuerTin=801234567&customerTin="
            "&customerName=&invoiceType=11.4&series=%CE%A0%CE%A0%CE%9B&number=57"
            "&dateIssued=20261121140509&totalAmount=7&totalNetAmount=5.65"
            "&totalVatAmount=1.35&internalId=11.4_%CE%A0%CE%A0%CE%9B_57"
            f"&signature={_hex40('offline-return-57').lower()}"
        ),
    )
    return credit
