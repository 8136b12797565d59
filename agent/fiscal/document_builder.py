"""From a validated request to everything the store freezes: priced lines, totals, payload.

Pure functions: the issuing service calls them inside the transaction that allocated the number,
so the payload is built exactly once and frozen with the document row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from agent.config import AgentConfig
from agent.fiscal.amounts import (
    DocumentTotals,
    VatBucket,
    document_totals,
    line_amounts,
    to_cents,
    vat_analysis,
)
from agent.fiscal.discounts import apply_discounts, line_discounts, receipt_shares
from agent.fiscal.errors import FieldProblem, PaymentsMismatch
from agent.fiscal.provider_payloads import (
    DocumentIdentity,
    PaymentEntry,
    PricedLine,
    invoice_payload,
    pos_receipt_payload,
)
from agent.fiscal.receipt_model import (
    Discount,
    PosReceiptRequest,
    ReceiptLine,
    ReceiptRequest,
    SaleLine,
)
from agent.fiscal.uid import document_uid


@dataclass(frozen=True)
class PricedReceipt:
    lines: list[PricedLine]
    vat_buckets: list[VatBucket]
    totals: DocumentTotals


def price_lines(
    lines: Sequence[ReceiptLine], *, prices_include_vat: bool, discount: Discount | None = None
) -> PricedReceipt:
    """Each line priced after its own discount and its share of the receipt's `discount`
    (`agent.fiscal.discounts` states the rule); lines without a discount price as always."""
    before = [
        line_amounts(
            line.quantity, line.unit_price, line.vat_category, prices_include_vat=prices_include_vat
        )
        for line in lines
    ]
    values = [to_cents(line.quantity * line.unit_price) for line in lines]
    own_discounts = [line.discount if isinstance(line, SaleLine) else None for line in lines]
    own = line_discounts(values, own_discounts)
    shares = receipt_shares([v - o for v, o in zip(values, own, strict=True)], discount)
    priced = []
    for index, line in enumerate(lines):
        discounted = apply_discounts(
            before[index],
            values[index],
            (own[index], own_discounts[index]),
            (shares[index], discount),
            prices_include_vat=prices_include_vat,
        )
        priced.append(
            PricedLine(
                description=line.description,
                quantity=line.quantity,
                unit=line.unit,
                vat_category=line.vat_category,
                exemption_cause=line.exemption_cause,
                code=line.code,
                kind=line.kind,
                amounts=discounted.amounts,
                allowances=discounted.allowances,
            )
        )
    amounts = [line.amounts for line in priced]
    return PricedReceipt(priced, vat_analysis(amounts), document_totals(amounts))


def check_payments_cover_total(request: ReceiptRequest, totals: DocumentTotals) -> None:
    """Payments must add up to the gross total; tips come on top (myDATA rule)."""
    if not request.payments:
        return
    paid = sum((p.amount for p in request.payments), Decimal("0"))
    if paid != totals.gross:
        raise PaymentsMismatch(
            f"payments add up to {paid} but the receipt total is {totals.gross}",
            [
                FieldProblem(
                    "payments",
                    f"amounts must add up to the gross total {totals.gross} (tips on top); "
                    f"they add up to {paid}",
                )
            ],
        )


def internal_document_id(type_code: str, series: str, number: int) -> str:
    """Stable across retries and unique per document: type, series and number never repeat."""
    return f"{type_code}_{series}_{number}"


def document_identity(
    type_code: str, series: str, number: int, issued_at: datetime
) -> DocumentIdentity:
    """A new document's identity: the internal id follows from the other four."""
    return DocumentIdentity(
        type_code, series, number, issued_at, internal_document_id(type_code, series, number)
    )


def identity_uid(config: AgentConfig, identity: DocumentIdentity) -> str:
    return document_uid(
        config.issuer.vat,
        identity.issued_at.date(),
        config.issuer.branch,
        identity.type_code,
        identity.series,
        identity.number,
    )


def receipt_payload(
    config: AgentConfig,
    identity: DocumentIdentity,
    request: ReceiptRequest,
    priced: PricedReceipt,
    payments: list[PaymentEntry],
    correlated_marks: list[int] | None = None,
) -> dict[str, Any]:
    """A counter or takeaway receipt: `SpecialInvoiceCategory` 0, food service or not (only the
    receipt that pays a table is a catering transaction, `agent.core.tables`).
    `correlated_marks`: the original's MARK when the request named it by receipt id (empty
    while the original has none yet; `agent.fiscal.returns` fills it in)."""
    return invoice_payload(
        issuer=config.issuer,
        identity=identity,
        lines=priced.lines,
        vat_buckets=priced.vat_buckets,
        totals=priced.totals,
        payments=payments,
        customer=request.customer,
        delivery=request.delivery,
        correlated_marks=request.correlated_marks if correlated_marks is None else correlated_marks,
        connected_marks=request.connected_marks,
        iapr_sign_policy=config.provider.iapr_sign_policy,
    )


def pos_payload(
    config: AgentConfig,
    identity: DocumentIdentity,
    request: PosReceiptRequest,
    payments: list[PaymentEntry],
    correlated_marks: list[int] | None = None,
) -> dict[str, Any]:
    """`correlated_marks`: an 8.5's original 8.4 MARK (empty while it has none yet)."""
    return pos_receipt_payload(
        issuer=config.issuer,
        identity=identity,
        payments=payments,
        customer=request.customer,
        delivery=request.delivery,
        connected_marks=request.connected_marks,
        iapr_sign_policy=config.provider.iapr_sign_policy,
        correlated_marks=correlated_marks,
    )


def series_by_type(config: AgentConfig) -> dict[str, str]:
    """Each document type numbers in its own configured series."""
    return {
        "11.1": config.series.receipt,
        "11.4": config.series.credit,
        "8.4": config.series.pos_receipt,
        "8.5": config.series.pos_return,
        "8.6": config.series.order,
    }


def series_for(config: AgentConfig, type_code: str) -> str:
    return series_by_type(config)[type_code]
