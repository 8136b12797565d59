"""A table's bill and the receipts that pay it: the whole of it, or part of it (a split bill, a
partial payment).

Every receipt of a table is an 11.1 with `SpecialInvoiceCategory` 12 that connects every open
order MARK of the table, as the provider's QA suite sends them (TC 07.1, 08, 09): a part payment
leaves the table open with the rest, and the receipt that brings it to 0.00 settles the orders
and the part payments together. A table that owes the guest (a return after paying) is settled
by an 11.4 for that amount, correlated to the table's receipts. The lines carry the amounts the
order slips carried (`agent.fiscal.table_bill`), so per VAT rate the receipts add up to exactly
the 8.6 documents they connect.

Crash-safe order: the receipt goes through `IssuingService.issue_prepared` (number and payload
frozen before the first send); the part payment row, or the settlement of the orders and part
payments, is written in the transaction that freezes it, so a crash leaves both or neither. A
receipt the provider rejects leaves the table as it was (its rows count only while it lives).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial

from pydantic import BaseModel

import offline_store as store
from agent.config import AgentConfig
from agent.core.answers import (
    ClosingAnswer,
    TableAnswer,
    TableList,
    TableOrderView,
    TablePaymentView,
    TableSummary,
    document_answer,
)
from agent.core.errors import OrdersNotSynced, TableNotOpen
from agent.core.issuing import Draft, IssuingService, Prepared
from agent.core.request_identity import Answer, CanonicalRequest, canonical_call, wire
from agent.core.runtime import Runtime
from agent.core.unpaid_orders import oldest_unpaid, signed_total
from agent.fiscal.amounts import DocumentTotals, document_totals, vat_analysis
from agent.fiscal.document_builder import PricedReceipt
from agent.fiscal.errors import FieldProblem, PaymentsMismatch
from agent.fiscal.frozen_payloads import FrozenInvoice
from agent.fiscal.orders import (
    CATERING_CATEGORY,
    CloseTableRequest,
    ItemKey,
    OrderRequest,
    closing_lines,
)
from agent.fiscal.provider_payloads import DocumentIdentity, PaymentEntry, invoice_payload
from agent.fiscal.receipt_model import (
    Customer,
    Delivery,
    Payment,
    ReceiptLine,
    TablePart,
)
from agent.fiscal.table_bill import (
    Amounts,
    Bill,
    PaidLine,
    PaidLines,
    PricedOrder,
    TablePartRefused,
    amount_part,
    item_line,
    lines_part,
    rest_lines,
    table_bill,
)
from agent.fiscal.tax_codes import NO_SPECIAL_CATEGORY
from agent.json_codec import dumps

ZERO = Decimal("0.00")


class TableReceiptRecord(BaseModel):
    """A table's receipt as stored with its document: what it paid and whether it closed."""

    table: str
    request_id: str
    type: str
    amount: Decimal | None
    closes_table: bool
    lines: list[PaidLine]
    payments: list[Payment]
    customer: Customer | None
    delivery: Delivery


@dataclass(frozen=True)
class TableState:
    table: str
    orders: list[store.TableOrder]
    payments: list[store.TablePayment]
    bill: Bill


@dataclass(frozen=True)
class PartPlan:
    """The receipt a close request (or a card signature for it) stands for."""

    type_code: str
    lines: list[PaidLine]
    closes_table: bool
    priced: PricedReceipt


def order_amounts(order: store.TableOrder) -> list[Amounts]:
    """The amounts each line of the frozen 8.6 carried, as the provider received them."""
    assert order.payload is not None, "an order slip is frozen with its payload"
    return [
        Amounts(line.net, line.vat, line.gross)
        for line in FrozenInvoice.of_payload(order.payload).details
    ]


def order_lines(order: store.TableOrder) -> list[ReceiptLine]:
    return OrderRequest.of_stored_request(order.request_json).lines


def table_state(conn: sqlite3.Connection, table: str) -> TableState:
    orders = store.open_orders(conn, table)
    if not orders:
        raise TableNotOpen(f"table {table!r} has no open orders")
    payments = store.open_part_payments(conn, table)
    priced = [
        PricedOrder(
            is_return=order.kind == store.OrderKind.RETURN,
            lines=order_lines(order),
            amounts=order_amounts(order),
        )
        for order in orders
    ]
    paid = [PaidLines.model_validate_json(payment.paid_json) for payment in payments]
    return TableState(table, orders, payments, table_bill(priced, paid))


def plan_part(config: AgentConfig, state: TableState, part: TablePart) -> PartPlan:
    """What a receipt paying `part` of the table carries; refusals name the field."""
    bill = state.bill
    prices_include_vat = config.pricing.prices_include_vat
    if bill.left < 0 and (part.amount is not None or part.lines is not None):
        raise TablePartRefused(
            f"the table owes the guest {-bill.left}: settle it without amount or lines",
            [FieldProblem("amount" if part.amount is not None else "lines", "not now")],
        )
    if part.lines is not None:
        lines = lines_part(bill, part.lines, prices_include_vat=prices_include_vat)
    elif part.amount is not None:
        lines = amount_part(bill, part.amount)
    else:
        lines = rest_lines(bill)
    paying = sum((line.gross for line in lines), ZERO)
    closes = paying == bill.left
    refund = bill.left < 0
    if refund:
        if any(line.gross > 0 for line in lines):
            raise TablePartRefused(
                "the table owes the guest at one VAT rate and the guest owes at another: "
                "pay the part the guest owes by amount first",
                [FieldProblem("amount", "needed first")],
            )
        lines = [_negated(line) for line in lines]
    if not lines:
        fallback = order_lines(state.orders[0])[0].vat_category
        zero = closing_lines({}, fallback_vat_category=fallback)[0]
        lines = [item_line(ItemKey.of(zero), zero.quantity, Amounts(ZERO, ZERO, ZERO))]
    amounts = [line.priced().amounts for line in lines]
    priced = PricedReceipt(
        [line.priced() for line in lines], vat_analysis(amounts), document_totals(amounts)
    )
    return PartPlan("11.4" if refund else "11.1", lines, closes, priced)


def part_totals(rt: Runtime, part: TablePart) -> tuple[str, DocumentTotals]:
    """The document type and totals a card signs for when it pays `part` of a table."""
    plan = plan_part(rt.config, table_state(rt.conn, part.table), part)
    return plan.type_code, plan.priced.totals


def record_table_receipt(
    conn: sqlite3.Connection,
    state: TableState,
    plan: PartPlan,
    request_id: str,
    doc: store.StoredDocument,
) -> None:
    """In the receipt's transaction: a part payment is kept against the table; the receipt
    that closes it settles every open order and every part payment."""
    if not plan.closes_table:
        paid = PaidLines(lines=plan.lines).model_dump_json()
        store.record_part_payment(
            conn, request_id=request_id, table_id=state.table, paid_json=paid, now=doc.created_at
        )
        return
    store.record_settlement(
        conn,
        order_request_ids=[order.request_id for order in state.orders],
        by_request_id=request_id,
        settlement="close",
        now=doc.created_at,
    )
    store.settle_part_payments(conn, state.table, request_id)


def table_receipt_record(
    table: str, request: CloseTableRequest, plan: PartPlan
) -> TableReceiptRecord:
    """What a table's receipt keeps as its request: the close request with the part it pays."""
    return TableReceiptRecord(
        table=table,
        request_id=request.request_id,
        type=plan.type_code,
        amount=request.amount,
        closes_table=plan.closes_table,
        lines=plan.lines,
        payments=list(request.payments),
        customer=request.customer,
        delivery=request.delivery,
    )


def table_receipt_payload(
    config: AgentConfig,
    identity: DocumentIdentity,
    plan: PartPlan,
    payments: list[PaymentEntry],
    request: CloseTableRequest,
    *,
    connected: list[int],
    correlated: list[int],
) -> bytes:
    """The provider payload of a table's receipt (an 11.1 of category 12, or an 11.4)."""
    return dumps(
        invoice_payload(
            issuer=config.issuer,
            identity=identity,
            lines=plan.priced.lines,
            vat_buckets=plan.priced.vat_buckets,
            totals=plan.priced.totals,
            payments=payments,
            customer=request.customer,
            delivery=request.delivery,
            correlated_marks=correlated,
            connected_marks=connected,
            iapr_sign_policy=config.provider.iapr_sign_policy,
            special_category=(
                CATERING_CATEGORY if plan.type_code == "11.1" else NO_SPECIAL_CATEGORY
            ),
        )
    )


class TablesService:
    def __init__(self, runtime: Runtime, issuing: IssuingService) -> None:
        self.rt = runtime
        self.issuing = issuing

    def tables(self) -> TableList:
        """Every table with open orders: count, total, paid, left, the oldest order's age."""
        names = sorted({order.table_id for order in store.open_orders(self.rt.conn)})
        return TableList(tables=[self._summary(table_state(self.rt.conn, name)) for name in names])

    def table(self, table: str) -> TableAnswer:
        state = table_state(self.rt.conn, table)
        rest = plan_part(self.rt.config, state, TablePart(table=table))
        return TableAnswer(
            **self._summary(state).model_dump(),
            orders=[self._order_view(order) for order in state.orders],
            payments=[self._payment_view(payment) for payment in state.payments],
            closing_lines=[_receipt_line(line) for line in rest.lines],
            closing_total=rest.priced.totals.gross,
            closing_type="11.4" if rest.type_code == "11.4" else "11.1",
        )

    async def close(self, table: str, request: CloseTableRequest) -> Answer[ClosingAnswer]:
        """A receipt of the table: the rest, or the part named by `amount` or `lines`."""
        rt = self.rt
        identity = canonical_call(request, table=table)

        def prepare() -> Prepared:
            state = table_state(rt.conn, table)
            part = TablePart(table=table, amount=request.amount, lines=request.lines)
            plan = plan_part(rt.config, state, part)
            self._check_marks(state, refund=plan.type_code == "11.4")
            _check_payments(request.payments, plan.priced.totals.gross)
            connected = [order.mark for order in state.orders if order.mark is not None]
            correlated = (
                [payment.mark for payment in state.payments if payment.mark is not None]
                if plan.type_code == "11.4"
                else []
            )
            record = table_receipt_record(table, request, plan)

            def build(identity: DocumentIdentity, payments: list[PaymentEntry]) -> bytes:
                return table_receipt_payload(
                    rt.config,
                    identity,
                    plan,
                    payments,
                    request,
                    connected=connected,
                    correlated=correlated,
                )

            within = partial(record_table_receipt, rt.conn, state, plan, request.request_id)
            stored = CanonicalRequest(record.model_dump_json(), identity.digest)
            draft = Draft(request.request_id, stored, plan.type_code, plan.priced.totals.gross)
            return Prepared(draft, build, request.payments, request.delivery, within=within)

        answer = await self.issuing.issue_prepared(request.request_id, identity.digest, prepare)
        doc = store.get_by_request_id(rt.conn, request.request_id)
        assert doc is not None
        record = TableReceiptRecord.model_validate_json(doc.request_json)
        body = ClosingAnswer.model_validate(
            {**wire(answer.body), "table": table, "closes_table": record.closes_table}
        )
        return Answer(body, answer.created)

    # -- helpers ----------------------------------------------------------------------------

    def _check_marks(self, state: TableState, *, refund: bool) -> None:
        """No receipt may connect a MARK that does not exist yet: the orders' for every receipt,
        and for a refund (11.4) the part payments' it correlates. A part payment issued offline
        does not hold up the next guest's 11.1, which does not name it."""
        unsynced = [order.document_id for order in state.orders if order.mark is None]
        if refund:
            unsynced += [p.document_id for p in state.payments if p.mark is None]
        if unsynced:
            raise OrdersNotSynced(
                f"table {state.table!r} has documents without a MARK yet ({unsynced}): the "
                "receipt must connect their MARKs; retry with the same request_id once they "
                "are synced (POST /v1/sync sends them now)",
                order_ids=unsynced,
            )

    def _summary(self, state: TableState) -> TableSummary:
        now = self.rt.clock()
        oldest = min(order.issued_at for order in state.orders)
        unpaid_order = oldest_unpaid(state.orders, state.bill.paid)
        unpaid = None if unpaid_order is None else unpaid_order.issued_at
        return TableSummary(
            table=state.table,
            open_orders=len(state.orders),
            total=state.bill.total,
            paid=state.bill.paid,
            left=state.bill.left,
            oldest_order_at=oldest.isoformat(),
            oldest_order_age_s=_age(now, oldest),
            oldest_unpaid_order_at=None if unpaid is None else unpaid.isoformat(),
            oldest_unpaid_order_age_s=None if unpaid is None else _age(now, unpaid),
            waiting_for_marks=sum(1 for order in state.orders if order.mark is None),
        )

    def _order_view(self, order: store.TableOrder) -> TableOrderView:
        doc = store.get_document(self.rt.conn, order.document_id)
        assert doc is not None
        return TableOrderView.model_validate(
            {
                **wire(document_answer(self.rt, doc)),
                "order_id": order.document_id,
                "kind": order.kind.value,
                "waiter": order.waiter,
                "signed_total": signed_total(order),
                "lines": order_lines(order),
            }
        )

    def _payment_view(self, payment: store.TablePayment) -> TablePaymentView:
        paid = PaidLines.model_validate_json(payment.paid_json)
        return TablePaymentView(
            receipt_id=payment.document_id,
            mark=payment.mark,
            issued_at=payment.issued_at.isoformat(),
            paid=sum((line.gross for line in paid.lines), ZERO),
        )


def _check_payments(payments: Sequence[Payment], gross: Decimal) -> None:
    """Payments add up to what the receipt pays; only a receipt of 0.00 has none."""
    paid = sum((payment.amount for payment in payments), ZERO)
    if paid == gross:
        return
    if not payments:
        rule = f"required: this receipt pays {gross}"
    else:
        rule = f"amounts must add up to {gross} (tips on top); they add up to {paid}"
    raise PaymentsMismatch(
        f"payments add up to {paid} but the receipt pays {gross}", [FieldProblem("payments", rule)]
    )


def _negated(line: PaidLine) -> PaidLine:
    return line.model_copy(
        update={
            "unit_price": -line.unit_price,
            "net": -line.net,
            "vat": -line.vat,
            "gross": -line.gross,
        }
    )


def _receipt_line(line: PaidLine) -> ReceiptLine:
    """A line left to pay as the POS names it back in `lines` (a share line may be negative
    when the table owes the guest, so it is built without validation)."""
    return ReceiptLine.model_construct(**line.model_dump(include=set(ReceiptLine.model_fields)))


def _age(now: datetime, then: datetime) -> int:
    return max(0, round((now - then).total_seconds()))
