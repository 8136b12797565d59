"""The local API's request models (pydantic v2).

Every rule a caller can break is checked here or in
`agent.fiscal.document_builder.check_payments_cover_total`, with the field path and the rule in the
message, before anything is written.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from agent.fiscal.tax_codes import (
    CARD_PAYMENT,
    EXEMPTION_CAUSES,
    IRIS_PAYMENT,
    MEASUREMENT_UNITS,
    PAYMENT_METHODS,
    VAT_RATES,
    ZERO_RATE_CATEGORY,
)
from agent.fiscal.uid import bare_vat
from agent.fiscal.vat_number import is_valid_afm
from agent.json_codec import loads

RETAIL_TYPES = ("11.1", "11.4")
POS_PAYMENT_TYPES = ("8.4", "8.5")
MOBILE_NUMBER = re.compile(r"^(\+30)?69\d{8}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")


def _printable(value: str) -> str:
    """Control characters would corrupt the ESC/POS stream and the provider's PDF.

    `str.isprintable` is False for every Cc, Cf and Cs character (and for some allowed ones:
    spaces other than ' ', private use, unassigned), so a text it passes needs no look per
    character: most of a receipt's texts, at C speed."""
    if value.isprintable():
        return value
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _vat_category(value: int) -> int:
    if value not in VAT_RATES:
        raise ValueError(
            "unknown VAT category: use 1-7, 9 or 10 (8 'records without VAT' is not a sale)"
        )
    return value


def _payment_method(value: int) -> int:
    if value not in PAYMENT_METHODS:
        raise ValueError("unknown payment method: use a myDATA code 1-8")
    return value


def _afm(value: str) -> str:
    if not is_valid_afm(value):
        raise ValueError("not a valid Greek VAT number (ΑΦΜ check digit fails)")
    return bare_vat(value)


def _mobile(value: str) -> str:
    if not MOBILE_NUMBER.match(value):
        raise ValueError(
            "mobile numbers must be Greek mobiles in international format without spaces "
            "or dashes, e.g. +306912345678 or 6912345678"
        )
    return value


def _email(value: str) -> str:
    if not EMAIL.match(value):
        raise ValueError("not an e-mail address")
    return value


RequestId = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:\-]+$")
]
Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False)]
PositiveMoney = Annotated[
    Decimal, Field(gt=0, max_digits=12, decimal_places=2, allow_inf_nan=False)
]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3, allow_inf_nan=False)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=300), AfterValidator(_printable)]
ShortText = Annotated[
    str, StringConstraints(min_length=1, max_length=50), AfterValidator(_printable)
]
Mark = Annotated[int, Field(gt=0, lt=10**18)]
TableId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=20, pattern=r"^[0-9A-Za-zΑ-Ωα-ω._\-]+$"
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ReceiptLine(_Strict):
    description: Text
    quantity: Quantity
    unit_price: Money = Field(description="gross unit price (net when the agent runs in net mode)")
    vat_category: Annotated[int, AfterValidator(_vat_category)]
    exemption_cause: int | None = Field(None, description="myDATA VAT exemption cause 1-31")
    unit: int = Field(1, description="myDATA measurement unit code 1-7")
    code: ShortText | None = None
    kind: Literal["goods", "services"] = "goods"

    @model_validator(mode="after")
    def _exemption_rules(self) -> ReceiptLine:
        if self.unit not in MEASUREMENT_UNITS:
            raise ValueError("unit: unknown measurement unit, use 1-7")
        if self.vat_category == ZERO_RATE_CATEGORY:
            if self.exemption_cause is None:
                raise ValueError("exemption_cause: required when vat_category is 7 (0% VAT)")
            if self.exemption_cause not in EXEMPTION_CAUSES:
                raise ValueError("exemption_cause: unknown cause, use 1-31")
        elif self.exemption_cause is not None:
            raise ValueError("exemption_cause: only allowed with vat_category 7 (0% VAT)")
        return self


Percent = Annotated[
    Decimal, Field(gt=0, le=100, max_digits=5, decimal_places=2, allow_inf_nan=False)
]


class Discount(_Strict):
    """A discount given by `amount` (in the till's prices: gross, or net in net mode) or by
    `percent` of the value it applies to; exactly one of the two."""

    amount: PositiveMoney | None = None
    percent: Percent | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Discount:
        if (self.amount is None) == (self.percent is None):
            raise ValueError("amount: give exactly one of amount or percent")
        return self


class SaleLine(ReceiptLine):
    """A line of a sale (11.1/11.4 and what is signed for it), which may carry a discount."""

    discount: Discount | None = None


class Payment(_Strict):
    method: Annotated[int, AfterValidator(_payment_method)]
    amount: PositiveMoney
    tip: Money = Decimal("0")
    terminal_id: ShortText | None = None
    transaction_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    signature_id: int | None = Field(None, description="from POST /v1/payments/sign")
    iris_payment_id: int | None = Field(
        None, description="IRIS (method 8): the completed payment from POST /v1/payments/iris"
    )

    @model_validator(mode="after")
    def _card_fields(self) -> Payment:
        if self.iris_payment_id is not None and self.method != IRIS_PAYMENT:
            raise ValueError("iris_payment_id: only for IRIS payments (method 8)")
        card_fields = {
            "terminal_id": self.terminal_id,
            "transaction_id": self.transaction_id,
            "signature_id": self.signature_id,
        }
        if self.method == CARD_PAYMENT:
            if self.terminal_id is None:
                raise ValueError("terminal_id: required for card payments (method 7)")
            if self.transaction_id is None:
                raise ValueError("transaction_id: required for card payments (method 7)")
        else:
            for name, value in card_fields.items():
                if value is not None:
                    raise ValueError(f"{name}: only for card payments (method 7)")
        return self


class Customer(_Strict):
    vat: Annotated[str, AfterValidator(_afm)] | None = None
    name: Annotated[str, StringConstraints(max_length=200), AfterValidator(_printable)] = ""
    emails: list[Annotated[str, StringConstraints(max_length=254), AfterValidator(_email)]] = Field(
        default_factory=list, max_length=10
    )
    mobile_numbers: list[Annotated[str, AfterValidator(_mobile)]] = Field(
        default_factory=list, max_length=5
    )


class Delivery(_Strict):
    print: bool | None = Field(None, description="print on the receipt printer (default: config)")
    email: bool = False
    mobile: bool = Field(False, description="Viber with SMS fallback, Greek mobiles only")

    @classmethod
    def of_stored_request(cls, request_json: str) -> Delivery:
        """What a request stored with its document asked for (the defaults if it named none)."""
        return _StoredDelivery.model_validate(loads(request_json)).delivery


class _StoredDelivery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    delivery: Delivery = Delivery()


class _StoredPrice(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    unit_price: Decimal


class RequestedPrices(BaseModel):
    """The unit prices a request stored with its document named, line by line: a printout shows
    the price the till sent, which the payload (net amounts) does not carry. A request without
    lines (an 8.4's) names none."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    lines: list[_StoredPrice] = Field(default_factory=list)

    @classmethod
    def of_stored_request(cls, request_json: str) -> RequestedPrices:
        return cls.model_validate(loads(request_json))

    def unit_prices(self) -> list[Decimal]:
        return [line.unit_price for line in self.lines]


def check_delivery_addresses(customer: Customer | None, delivery: Delivery) -> None:
    """A delivery channel needs the customer's address for it."""
    customer = customer or Customer()
    if delivery.email and not customer.emails:
        raise ValueError("delivery.email: needs customer.emails")
    if delivery.mobile and not customer.mobile_numbers:
        raise ValueError("delivery.mobile: needs customer.mobile_numbers")


def check_retail_customer(customer: Customer | None) -> None:
    """A retail document (11.1/11.4) cannot carry the customer's ΑΦΜ."""
    if customer is not None and customer.vat:
        raise ValueError(
            "customer.vat: a retail document (11.1/11.4) has no counterpart in myDATA and "
            "cannot carry the customer's ΑΦΜ; a customer who needs an invoice with their "
            "ΑΦΜ needs another document type (a sales invoice, 1.1/2.1), which this agent "
            "does not issue: issue it from the accounting software. Name, e-mails and "
            "mobile numbers are kept for delivery"
        )


class _Document(_Strict):
    request_id: RequestId
    customer: Customer | None = None
    connected_marks: list[Mark] = Field(
        default_factory=list, max_length=50, description="multipleConnectedMarks"
    )
    delivery: Delivery = Delivery()

    @model_validator(mode="after")
    def _delivery_needs_addresses(self) -> _Document:
        check_delivery_addresses(self.customer, self.delivery)
        return self


class ReceiptRequest(_Document):
    """POST /v1/receipts: an 11.1 sales receipt or an 11.4 credit of an earlier MARK."""

    type: Literal["11.1", "11.4"] = "11.1"
    lines: list[SaleLine] = Field(min_length=1, max_length=500)
    discount: Discount | None = Field(
        None, description="a discount on the whole receipt, spread over its lines to the cent"
    )
    payments: list[Payment] = Field(default_factory=list, max_length=20)
    correlated_marks: list[Mark] = Field(default_factory=list, max_length=50)
    correlated_receipt_id: int | None = Field(
        None,
        gt=0,
        description="an 11.4's original 11.1 by its receipt_id, instead of correlated_marks: "
        "works before the original has a MARK (issued offline)",
    )

    @model_validator(mode="after")
    def _type_rules(self) -> ReceiptRequest:
        if self.correlated_receipt_id is not None and self.correlated_marks:
            raise ValueError(
                "correlated_receipt_id: name the original either by receipt id or by "
                "correlated_marks, not both"
            )
        if self.type == "11.4" and not self.correlated_marks and self.correlated_receipt_id is None:
            raise ValueError(
                "correlated_marks: an 11.4 credit needs the MARK of the original (or its "
                "correlated_receipt_id)"
            )
        if self.type == "11.1" and (self.correlated_marks or self.correlated_receipt_id):
            raise ValueError("correlated_marks: only for 11.4 credits")
        check_retail_customer(self.customer)
        if not self.payments and not self.connected_marks:
            raise ValueError(
                "payments: at least one payment, unless connected_marks point to the POS "
                "receipts (8.4) that carried the payment"
            )
        return self


class PosReceiptRequest(_Document):
    """POST /v1/pos-receipts: an 8.4 POS receipt (8.5 return) with card lines."""

    type: Literal["8.4", "8.5"] = "8.4"
    payments: list[Payment] = Field(min_length=1, max_length=20)
    correlated_receipt_id: int | None = Field(
        None, gt=0, description="an 8.5's original 8.4 by its receipt_id (with or without a MARK)"
    )

    @model_validator(mode="after")
    def _card_only(self) -> PosReceiptRequest:
        if any(p.method != CARD_PAYMENT for p in self.payments):
            raise ValueError("payments: a POS receipt carries card payments only (method 7)")
        if self.type == "8.4" and self.correlated_receipt_id is not None:
            raise ValueError("correlated_receipt_id: only for 8.5 POS returns")
        return self


class TablePart(_Strict):
    """The part of a table's bill a receipt pays: `amount` (part of what is left), `lines`
    (items of the table's `closing_lines` with quantities), or neither (what is left)."""

    table: TableId
    amount: PositiveMoney | None = None
    lines: list[ReceiptLine] | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_way(self) -> TablePart:
        if self.amount is not None and self.lines is not None:
            raise ValueError("amount: give amount or lines, not both")
        return self


class PaymentSignRequest(_Strict):
    """POST /v1/payments/sign, before the card is charged.

    For a new receipt give `document_type` and (for 11.x) its `lines`: the agent reserves the
    number and signs the final identity. For a table's receipt give `table` (the table, and the
    `amount` or `lines` the receipt pays) instead of `lines`: the agent signs the amounts that
    receipt will carry. A refund to a card is signed the same way (Α.1155/2023
    covers refunds): an 11.4 credit note, or an 8.5 POS return. After a decline, pass the `receipt_id` from the first
    answer to sign again for the same receipt. For a receipt that already has a MARK, pass its
    `receipt_id` and then confirm with POST /v1/receipts/{id}/payments.
    """

    request_id: RequestId
    terminal_id: ShortText
    amount: PositiveMoney
    tip: Money = Decimal("0")
    document_type: Literal["11.1", "11.4", "8.4", "8.5"] = "11.1"
    lines: list[SaleLine] = Field(default_factory=list, max_length=500)
    discount: Discount | None = Field(None, description="the receipt's own discount, if any")
    receipt_id: int | None = None
    table: TablePart | None = Field(
        None, description="sign for a table's receipt: the table and the part it pays"
    )

    @model_validator(mode="after")
    def _target(self) -> PaymentSignRequest:
        if self.table is not None:
            if self.lines or self.receipt_id is not None:
                raise ValueError("table: not with lines or receipt_id (the table gives them)")
            return self
        if self.receipt_id is None and self.document_type in RETAIL_TYPES and not self.lines:
            raise ValueError(
                f"lines: required to sign for a new {self.document_type} (amounts are signed)"
            )
        if self.document_type in POS_PAYMENT_TYPES and self.lines:
            raise ValueError(
                f"lines: a {self.document_type} POS receipt has no lines (its amount is signed)"
            )
        if self.receipt_id is not None and self.lines:
            raise ValueError("lines: not allowed with receipt_id (the receipt already has them)")
        if self.discount is not None and not self.lines:
            raise ValueError("discount: only with lines (a receipt's discount is on its lines)")
        return self


class IrisPaymentRequest(_Strict):
    """POST /v1/payments/iris: an IRIS payment of a new 11.1 through the provider.

    The agent reserves the receipt's number and issue time, asks the provider for the QR the
    customer scans, and answers it; poll GET /v1/payments/iris/{id} until `completed`, then
    issue the receipt with the payment `{"method": 8, "iris_payment_id": id}`."""

    request_id: RequestId
    amount: PositiveMoney
    lines: list[SaleLine] = Field(min_length=1, max_length=500)
    discount: Discount | None = None
    print_qr: bool = Field(
        False, description="also print the QR on the receipt printer (no customer display)"
    )


class ReceiptPaymentRequest(_Strict):
    """POST /v1/receipts/{id}/payments: a card payment on an already MARKed receipt."""

    request_id: RequestId
    signature_id: int
    transaction_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class PrintRequest(_Strict):
    request_id: RequestId
