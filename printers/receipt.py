"""The plain receipt model the agent hands to the printers package.

It holds exactly what is printed, already computed and formatted by the agent (amounts, MARK, UID,
QR URLs): printers never looks at the database or the provider. Print jobs are stored as JSON in
the SQLite spool, so the model round-trips through `to_json()`/`from_json()` exactly; money is
`Decimal` and travels as a JSON string so no float ever touches it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

ATHENS = ZoneInfo("Europe/Athens")

DOCUMENT_TITLES: dict[str, str] = {
    "11.1": "ΑΠΟΔΕΙΞΗ ΛΙΑΝΙΚΗΣ ΠΩΛΗΣΗΣ",
    "11.4": "ΠΙΣΤΩΤΙΚΟ ΣΤΟΙΧΕΙΟ ΛΙΑΝΙΚΗΣ",
    "8.4": "ΑΠΟΔΕΙΞΗ ΕΙΣΠΡΑΞΗΣ POS",
    "8.5": "ΑΠΟΔΕΙΞΗ ΕΠΙΣΤΡΟΦΗΣ POS",
    "8.6": "ΔΕΛΤΙΟ ΠΑΡΑΓΓΕΛΙΑΣ ΕΣΤΙΑΣΗΣ",
}
ORDER_KINDS = ("order", "return", "cancel")

POS_PAYMENT_TYPES = ("8.4", "8.5")
DELAYED_CODES = (0, 1, 2)


class ReceiptFormatError(ValueError):
    """A stored or handed-over receipt does not describe a printable document."""


@dataclass(frozen=True)
class Issuer:
    """The shop as printed at the top (4308/2014: name, address, ΑΦΜ, ΔΟΥ, branch)."""

    name: str
    vat: str
    address_lines: tuple[str, ...] = ()
    brand: str = ""
    tax_office: str = ""
    branch: int = 0
    activity: str = ""
    phone: str = ""


@dataclass(frozen=True)
class ReceiptLine:
    """One sold item; `unit_price` and `total` are gross (VAT included), as on the till.
    `discount` is the gross amount taken off the line (its own discount and its share of the
    receipt's): `total` is after it, quantity × unit price before it."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    total: Decimal
    vat_percent: Decimal
    vat_category: int
    unit: str = ""
    exemption: str | None = None
    discount: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class VatBreakdown:
    """One row of the VAT analysis: everything sold at one VAT category."""

    category: int
    percent: Decimal
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True)
class Totals:
    """`gross` is what is paid; `discount` the gross taken off the lines before it."""

    net: Decimal
    vat: Decimal
    gross: Decimal
    discount: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class CardDetails:
    """What Α.1155/2023 requires for a terminal payment: TID, AADE transaction id, signature."""

    terminal_id: str
    transaction_id: str
    signature: str
    signature_input: str | None = None


@dataclass(frozen=True)
class Payment:
    """`amount` pays the document; a tip is on top of it and printed separately."""

    method_code: int
    label: str
    amount: Decimal
    tip: Decimal = Decimal("0.00")
    card: CardDetails | None = None
    reference: str = ""  # the document that carried it, e.g. the 8.4 of a connected 11.1


@dataclass(frozen=True)
class Customer:
    vat: str = ""
    name: str = ""


@dataclass(frozen=True)
class OrderSlip:
    """What an order slip (8.6) adds: its table and waiter, whether it orders, returns or
    cancels, and whether this print is the kitchen's copy (items only, no prices)."""

    table: str
    waiter: str
    kind: str = "order"
    kitchen: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ORDER_KINDS:
            raise ReceiptFormatError(f"order kind {self.kind!r} is not one of {ORDER_KINDS}")


@dataclass(frozen=True)
class OriginalDocument:
    """The receipt a return gives back: printed on the return by its series and number (and
    its MARK once known)."""

    type_code: str
    series: str
    number: int
    issued_at: datetime
    mark: str | None = None


@dataclass(frozen=True)
class PrintableReceipt:
    """An issued fiscal document, reduced to what the paper must show.

    `delayed_code` is the provider's IsDelayedCode: 0 online, 1 entity-provider link lost,
    2 provider-AADE link lost; a delayed receipt prints the legend and `offline_qr_url`.
    """

    issuer: Issuer
    type_code: str
    series: str
    number: int
    issued_at: datetime
    lines: tuple[ReceiptLine, ...]
    vat_analysis: tuple[VatBreakdown, ...]
    totals: Totals
    payments: tuple[Payment, ...]
    uid: str
    mark: str | None = None
    authentication_code: str | None = None
    qr_url: str | None = None
    delayed_code: int = 0
    offline_qr_url: str | None = None
    correlated_marks: tuple[str, ...] = ()
    customer: Customer | None = None
    footer: tuple[str, ...] = ()
    copy: bool = False
    order: OrderSlip | None = None
    original: OriginalDocument | None = None

    def __post_init__(self) -> None:
        if self.type_code not in DOCUMENT_TITLES:
            raise ReceiptFormatError(f"type_code {self.type_code!r} is not a retail type")
        if (self.type_code == "8.6") != (self.order is not None):
            raise ReceiptFormatError("an order slip (8.6), and only it, carries its table")
        if self.issued_at.tzinfo is None:
            raise ReceiptFormatError("issued_at must be timezone-aware")
        if self.delayed_code not in DELAYED_CODES:
            raise ReceiptFormatError(f"delayed_code {self.delayed_code} is not 0, 1 or 2")

    @property
    def title(self) -> str:
        """The document title in Greek capitals without accents, as printed titles are written."""
        return DOCUMENT_TITLES[self.type_code]

    @property
    def has_vat_analysis(self) -> bool:
        """A POS receipt (8.4, 8.5) records a card payment, not a sale: it has no net/VAT, and
        "ΦΠΑ 0,00" would read as a 0 % sale."""
        return self.type_code not in POS_PAYMENT_TYPES

    @property
    def local_issued_at(self) -> datetime:
        return self.issued_at.astimezone(ATHENS)

    @property
    def document_number(self) -> str:
        """The "Μοναδικός αριθμός παραστατικού" `ΑΦΜ|dd/MM/yyyy|branch|type|series|aa`."""
        day = self.local_issued_at.strftime("%d/%m/%Y")
        parts = (self.issuer.vat, day, str(self.issuer.branch), self.type_code, self.series)
        return "|".join((*parts, str(self.number)))

    def to_json(self) -> str:
        return json.dumps(_encode(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes) -> PrintableReceipt:
        try:
            return _decode_receipt(json.loads(data))
        except ReceiptFormatError:
            raise
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise ReceiptFormatError(f"not a printable receipt: {error!r}") from error


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    if is_dataclass(value):
        return {spec.name: _encode(getattr(value, spec.name)) for spec in fields(value)}
    return value


def _money(raw: Any) -> Decimal:
    if not isinstance(raw, str):
        raise ReceiptFormatError(f"amount {raw!r} must be a decimal string")
    return Decimal(raw)


def _decode_line(raw: dict[str, Any]) -> ReceiptLine:
    return ReceiptLine(
        description=raw["description"],
        quantity=_money(raw["quantity"]),
        unit_price=_money(raw["unit_price"]),
        total=_money(raw["total"]),
        vat_percent=_money(raw["vat_percent"]),
        vat_category=int(raw["vat_category"]),
        unit=raw.get("unit", ""),
        exemption=raw.get("exemption"),
        discount=_money(raw.get("discount", "0.00")),
    )


def _decode_vat(raw: dict[str, Any]) -> VatBreakdown:
    return VatBreakdown(
        category=int(raw["category"]),
        percent=_money(raw["percent"]),
        net=_money(raw["net"]),
        vat=_money(raw["vat"]),
        gross=_money(raw["gross"]),
    )


def _decode_payment(raw: dict[str, Any]) -> Payment:
    card = raw.get("card")
    return Payment(
        method_code=int(raw["method_code"]),
        label=raw["label"],
        amount=_money(raw["amount"]),
        tip=_money(raw.get("tip", "0.00")),
        card=CardDetails(**card) if card is not None else None,
        reference=raw.get("reference", ""),
    )


def _decode_receipt(raw: dict[str, Any]) -> PrintableReceipt:
    issuer = dict(raw["issuer"])
    issuer["address_lines"] = tuple(issuer.get("address_lines", ()))
    customer = raw.get("customer")
    order = raw.get("order")
    original = raw.get("original")
    return PrintableReceipt(
        issuer=Issuer(**issuer),
        type_code=raw["type_code"],
        series=raw["series"],
        number=int(raw["number"]),
        issued_at=datetime.fromisoformat(raw["issued_at"]),
        lines=tuple(_decode_line(line) for line in raw["lines"]),
        vat_analysis=tuple(_decode_vat(row) for row in raw["vat_analysis"]),
        totals=Totals(**{key: _money(value) for key, value in raw["totals"].items()}),
        payments=tuple(_decode_payment(payment) for payment in raw["payments"]),
        uid=raw["uid"],
        mark=raw.get("mark"),
        authentication_code=raw.get("authentication_code"),
        qr_url=raw.get("qr_url"),
        delayed_code=int(raw.get("delayed_code", 0)),
        offline_qr_url=raw.get("offline_qr_url"),
        correlated_marks=tuple(raw.get("correlated_marks", ())),
        customer=Customer(**customer) if customer is not None else None,
        footer=tuple(raw.get("footer", ())),
        copy=bool(raw.get("copy", False)),
        order=OrderSlip(**order) if order is not None else None,
        original=(
            OriginalDocument(
                **{**original, "issued_at": datetime.fromisoformat(original["issued_at"])}
            )
            if original is not None
            else None
        ),
    )
