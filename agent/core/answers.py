"""The JSON the POS gets for a document: identity, provider result, offline state, delivery."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

import offline_store as store
from agent.core.offline_documents import LEGENDS
from agent.core.runtime import Runtime
from agent.fiscal.provider_payloads import transmission_method
from agent.fiscal.receipt_model import Delivery, ReceiptLine


def _print_state(conn: sqlite3.Connection, document_id: int) -> PrintDelivery:
    jobs = store.print_jobs_for(conn, document_id)
    if not jobs:
        return PrintDelivery(requested=False)
    original = jobs[0]
    state = PrintDelivery(requested=True, state=original.state.value, job_id=original.id)
    if original.last_error:
        state.reason = original.last_error
    copies = len(jobs) - 1
    if copies:
        state.copies = copies
    return state


def document_answer(
    rt: Runtime, doc: store.StoredDocument, delivery: Delivery | None = None
) -> DocumentAnswer:
    """`delivery`: the request's, when the caller has it in hand (issuing a receipt); otherwise
    it is read back from the stored request."""
    if delivery is None:
        delivery = Delivery.of_stored_request(doc.request_json)
    method = transmission_method(delivery)
    answer = DocumentAnswer(
        receipt_id=doc.id,
        request_id=doc.request_id,
        type=doc.type_code,
        series=doc.series,
        number=doc.number,
        issued_at=doc.issued_at.isoformat(),
        uid=doc.uid,
        internal_id=doc.internal_id,
        total=f"{doc.total_amount:.2f}",
        state=doc.state.value,
        mark=doc.mark,
        mark_unknown=doc.mark_unknown,
        authentication_code=doc.authentication_code,
        qr_url=doc.qr_url,
        delayed_code=doc.delayed_code,
        offline=doc.delayed_code != 0 and doc.state != store.DocumentState.ACCEPTED,
        delivery=DeliveryState(
            print=_print_state(rt.conn, doc.id),
            provider=ProviderDelivery(transmission_method=method, requested=method != "A"),
        ),
    )
    if doc.delayed_code:
        answer.legend = LEGENDS[doc.delayed_code]
        answer.offline_qr_url = doc.offline_qr_url
        answer.due_at = doc.due_at.isoformat() if doc.due_at else None
    if doc.last_error and doc.state != store.DocumentState.ACCEPTED:
        answer.last_error = doc.last_error
    return answer


# -- the answers' shapes ------------------------------------------------------------------------
#
# What each endpoint of the local API answers, as the OpenAPI document publishes it and
# schemathesis checks it against the running app. Times are Europe/Athens ISO 8601 with their
# offset; `total`/`amount` strings carry two decimals; table totals are exact JSON numbers.

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Cents = Annotated[str, WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{2}$"})]
Amount = Annotated[Decimal, WithJsonSchema({"type": "number"})]
# An order's lines as the till sent them (amounts as the decimal strings it wrote): a receipt's
# lines the till can send back as they are.
LinesAsSent = Annotated[
    list[ReceiptLine],
    PlainSerializer(lambda lines: [line.model_dump(mode="json") for line in lines]),
]
DocumentStateName = Literal["reserved", "pending", "delayed", "accepted", "rejected", "void"]
PrintStateName = Literal["queued", "printing", "printed", "failed"]


class PrintDelivery(BaseModel):
    """The receipt's print job: `requested` false when the POS asked for no paper."""

    requested: bool
    state: PrintStateName | None = None
    job_id: int | None = None
    reason: str | None = None
    copies: int | None = None


class ProviderDelivery(BaseModel):
    """How the provider hands the receipt to the customer (`A`: on paper only)."""

    transmission_method: str
    requested: bool


class DeliveryState(BaseModel):
    print: PrintDelivery
    provider: ProviderDelivery


class DocumentAnswer(BaseModel):
    """A document as the POS sees it; `legend`, `offline_qr_url` and `due_at` come with an
    offline one, `last_error` with one not (yet) accepted, `archived` with one read from the
    monthly archive."""

    receipt_id: int
    request_id: str
    type: str
    series: str
    number: int
    issued_at: Timestamp
    uid: str
    internal_id: str
    total: Cents
    state: DocumentStateName
    mark: int | None
    mark_unknown: bool
    authentication_code: str | None
    qr_url: str | None
    delayed_code: int
    offline: bool
    delivery: DeliveryState
    legend: str | None = None
    offline_qr_url: str | None = None
    due_at: Timestamp | None = None
    last_error: str | None = None
    archived: bool | None = None


class ReceiptList(BaseModel):
    receipts: list[DocumentAnswer]


class SignedFields(BaseModel):
    """A signed input `UID;MARK;yyyyMMddHHmmss;a1;a2;a3;a4;TID` split into its fields
    (docs/provider.md §7.2); the four amounts in the order the NSP signed them."""

    uid: str
    mark: str | None
    timestamp: str
    amounts_cents: list[int]
    terminal_id: str


class SignatureAnswer(BaseModel):
    """The provider's signature the card terminal needs before it charges."""

    signature_id: int
    receipt_id: int
    type: str
    series: str
    number: int
    issued_at: Timestamp
    uid: str
    mark: int | None
    input: str
    signature: str
    fields: SignedFields
    provider_id: str
    nsp_code: str
    signature_duration: Literal["H_24", "H_2"]
    expires_at: Timestamp
    mode: Literal["standard"]


class PaymentAnswer(BaseModel):
    """A card payment recorded on a MARKed receipt (the provider's payment MARK)."""

    receipt_id: int
    mark: int | None
    payment_mark: str = Field(description="the payment record's MARK, as the provider wrote it")
    transaction_id: str
    amount: Cents


class ReprintAnswer(BaseModel):
    """The copy's print job, queued."""

    receipt_id: int
    print_job_id: int
    copy_: bool = Field(alias="copy")
    state: Literal["queued"]


class DrawerAnswer(BaseModel):
    """A drawer kick, queued for the printer worker and journaled with who asked."""

    kick_id: int
    state: Literal["queued", "opened", "failed"]
    caller: str
    requested_at: Timestamp


class OrderAnswer(DocumentAnswer):
    """An 8.6 order slip (or a return of items) on a table."""

    table: str
    waiter: str
    kind: Literal["order", "return"]


class CancelAnswer(DocumentAnswer):
    """The 8.6 that cancels an open order slip."""

    table: str
    cancelled_order_id: int


class ProviderOrderCancelAnswer(DocumentAnswer):
    """The 8.6 that cancels an order slip the provider held open and this register did not."""

    table: str
    cancelled_mark: int


class ClosingAnswer(DocumentAnswer):
    """A receipt of a table (11.1; an 11.4 when the table owes the guest), connecting every
    open order's MARK; `closes_table` false when it paid only part and the table stays open."""

    table: str
    closes_table: bool


class TableSummary(BaseModel):
    """A table with open orders. `left` = `total` (ordered minus returned) minus `paid` (its
    part payments); the legal 24 h clock runs from `oldest_unpaid_order_at`."""

    table: str
    open_orders: int
    total: Amount
    paid: Amount
    left: Amount
    oldest_order_at: Timestamp
    oldest_order_age_s: int
    oldest_unpaid_order_at: Timestamp | None
    oldest_unpaid_order_age_s: int | None
    waiting_for_marks: int


class TableList(BaseModel):
    tables: list[TableSummary]


class TableOrderView(DocumentAnswer):
    order_id: int
    kind: Literal["order", "return", "cancel"]
    waiter: str
    signed_total: Amount
    lines: LinesAsSent


class TablePaymentView(BaseModel):
    """A receipt that paid part of the table."""

    receipt_id: int
    mark: int | None
    issued_at: Timestamp
    paid: Amount


class TableAnswer(TableSummary):
    """A table's open orders, its part payments, and what is left to pay as the lines of the
    receipt that would pay it (`closing_lines`: the items, or one line per VAT rate once an
    amount was paid; `closing_type` 11.4 when the table owes the guest)."""

    orders: list[TableOrderView]
    payments: list[TablePaymentView]
    closing_lines: LinesAsSent
    closing_total: Amount
    closing_type: Literal["11.1", "11.4"]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    breaker: Literal["closed", "open"]
    in_flight: int = Field(
        description="documents on their way to the provider right now (a sale waiting for its "
        "answer, or the background sync); `pos-agent update` installs only at 0"
    )
