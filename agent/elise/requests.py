"""The `/PosTransactions/signpos` request body (docs/provider.md §7.1).

`issueDate` is written in Greek local time without offset or fraction (`2024-03-23T19:49:29`),
the form of the provider's documented example: the provider builds the signed timestamp and the
UID date from it, and both are defined in Greek local time. `issuerTin` goes without the `EL`
prefix, as in the provider's own QA requests. Amounts are exact JSON numbers (Decimal, never
float).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from agent.fiscal.uid import bare_vat
from agent.json_codec import dumps

ATHENS = ZoneInfo("Europe/Athens")


@dataclass(frozen=True)
class PaymentReference:
    """The document a payment pays and the part of it paid: the fields signpos and IRIS's
    InitiatePayment both take, in the same form (the provider signs them the same way)."""

    issuer_tin: str
    issue_date: datetime
    branch_code: int
    invoice_type_code: str
    series: str
    identifier: str
    payment_amount: Decimal
    total_net_amount: Decimal
    total_vat_amount: Decimal
    total_amount: Decimal

    def __post_init__(self) -> None:
        if self.issue_date.tzinfo is None:
            raise ValueError("issue_date must be timezone-aware")

    def body_fields(self) -> dict[str, object]:
        local = self.issue_date.astimezone(ATHENS)
        return {
            "issuerTin": bare_vat(self.issuer_tin),
            "issueDate": local.strftime("%Y-%m-%dT%H:%M:%S"),
            "branchCode": self.branch_code,
            "invoiceTypeCode": self.invoice_type_code,
            "series": self.series,
            "identifier": self.identifier,
            "paymentAmount": self.payment_amount,
            "totalNetAmount": self.total_net_amount,
            "totalVatAmount": self.total_vat_amount,
            "totalAmount": self.total_amount,
        }


@dataclass(frozen=True)
class SignPosRequest:
    payment: PaymentReference
    mark: int | None
    terminal_id: str
    signature_duration: Literal["H_24", "H_2"] = "H_24"
    nsp_code: str = "CommonWeb"

    def to_json(self) -> bytes:
        return dumps(
            {
                "nspCode": self.nsp_code,
                **self.payment.body_fields(),
                "mark": self.mark,
                "terminalId": self.terminal_id,
                "signatureDurationType": self.signature_duration,
            }
        )


@dataclass(frozen=True)
class IrisPaymentRequest:
    """`POST /IrisPayments/InitiatePayment`: the document's identity and amounts, as signpos
    takes them (docs/provider.md "IRIS"); the provider's merchant is the terminal."""

    payment: PaymentReference

    def to_json(self) -> bytes:
        return dumps(self.payment.body_fields())
