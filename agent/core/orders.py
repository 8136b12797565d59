"""Tables in a café or restaurant: order slips (8.6), returns and cancellations. The receipts
that pay a table are `agent.core.tables`.

Each document goes through the issuing path of a receipt (`IssuingService.issue_prepared`):
number and payload frozen before the first network call, the breaker, offline with the offline QR
and `IsDelayedCode` 1/2, the background sync, the print job in the outcome's transaction. The
table's own rows (which order belongs to which table, what closed or cancelled it) are written in
the transaction that freezes the document, so a crash leaves both or neither.

A cancellation names the MARK it cancels, and no document may connect a MARK that does not
exist: while the order is delayed (no MARK yet), it is refused with `OrdersNotSynced` (409,
retryable); the POS retries with the same request_id once the sync has delivered it
(`POST /v1/sync` sends it at once).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import offline_store as store
from agent.config import AgentConfig
from agent.core.answers import CancelAnswer, DocumentAnswer, OrderAnswer
from agent.core.errors import CancelLeavesReturns, OrderNotOpen, OrdersNotSynced
from agent.core.issuing import Draft, IssuingService, Prepared
from agent.core.request_identity import Answer, canonical, canonical_call, wire
from agent.core.runtime import Runtime
from agent.fiscal.amounts import DocumentTotals, LineAmounts, VatBucket
from agent.fiscal.document_builder import PricedReceipt, price_lines
from agent.fiscal.orders import (
    NO_VAT_CATEGORY,
    ORDER_TYPE,
    CancelOrderRequest,
    OrderRequest,
    PlacedOrder,
    cancel_payload,
    check_return,
    negative_items,
    order_payload,
    table_items,
)
from agent.fiscal.provider_payloads import (
    DocumentIdentity,
    PaymentEntry,
    PricedLine,
    invoice_payload,
)
from agent.fiscal.receipt_model import Delivery
from agent.json_codec import dumps

ZERO = Decimal("0.00")


def placed(order: store.TableOrder) -> PlacedOrder:
    lines = OrderRequest.of_stored_request(order.request_json).lines
    return PlacedOrder(is_return=order.kind == store.OrderKind.RETURN, lines=lines)


class OrdersService:
    def __init__(self, runtime: Runtime, issuing: IssuingService) -> None:
        self.rt = runtime
        self.issuing = issuing

    # -- order slips ------------------------------------------------------------------------

    async def place(self, request: OrderRequest) -> Answer[OrderAnswer]:
        rt = self.rt
        stored = canonical(request)
        is_return = request.kind == "return"

        def prepare() -> Prepared:
            if is_return:
                orders = store.open_orders(rt.conn, request.table)
                check_return(table_items(placed(order) for order in orders), request.lines)
            priced = price_lines(
                request.lines, prices_include_vat=rt.config.pricing.prices_include_vat
            )

            def build(identity: DocumentIdentity, _: list[PaymentEntry]) -> bytes:
                return order_slip_payload(rt.config, identity, request, priced)

            def within(doc: store.StoredDocument) -> None:
                store.record_order(
                    rt.conn,
                    request_id=request.request_id,
                    table_id=request.table,
                    waiter=request.waiter,
                    kind=store.OrderKind.RETURN if is_return else store.OrderKind.ORDER,
                    now=doc.created_at,
                )

            draft = Draft(request.request_id, stored, ORDER_TYPE, priced.totals.gross)
            return Prepared(draft, build, payments=(), delivery=Delivery(), within=within)

        answer = await self.issuing.issue_prepared(request.request_id, stored.digest, prepare)
        return self._with_table(answer, request.table, request.waiter, request.kind)

    async def cancel(self, order_id: int, request: CancelOrderRequest) -> Answer[CancelAnswer]:
        """An 8.6 with `totalCancelDeliveryOrders` that cancels one open order slip."""
        rt = self.rt
        stored = canonical_call(request, order_id=order_id)

        def prepare() -> Prepared:
            order = store.order_of_document(rt.conn, order_id)
            if order is None:
                raise OrderNotOpen(
                    f"order {order_id} is not an open order slip (unknown, closed or cancelled)"
                )
            if order.mark is None:
                raise OrdersNotSynced(
                    f"order {order_id} has no MARK yet (it is {order.state}); a cancellation "
                    "names the MARK it cancels: retry with the same request_id once it is synced",
                    order_ids=[order_id],
                )
            others = [
                o for o in store.open_orders(rt.conn, order.table_id) if o.document_id != order_id
            ]
            if negative_items(table_items(placed(o) for o in others)):
                raise CancelLeavesReturns(
                    f"the table has returns of items from order {order_id}: cancel those first"
                )
            waiter = request.waiter or order.waiter
            mark = order.mark

            build = self.cancel_builder(
                f"Ακύρωση παραγγελίας {order.series}/{order.number}",
                table=order.table_id,
                waiter=waiter,
                mark=mark,
            )

            def within(doc: store.StoredDocument) -> None:
                store.record_order(
                    rt.conn,
                    request_id=request.request_id,
                    table_id=order.table_id,
                    waiter=waiter,
                    kind=store.OrderKind.CANCEL,
                    now=doc.created_at,
                )
                store.record_settlement(
                    rt.conn,
                    order_request_ids=[order.request_id],
                    by_request_id=request.request_id,
                    settlement="cancel",
                    now=doc.created_at,
                )

            draft = Draft(request.request_id, stored, ORDER_TYPE, ZERO)
            return Prepared(draft, build, payments=(), delivery=Delivery(), within=within)

        answer = await self.issuing.issue_prepared(request.request_id, stored.digest, prepare)
        table = store.table_of_request(rt.conn, request.request_id) or ""
        body = CancelAnswer.model_validate(
            {**wire(answer.body), "table": table, "cancelled_order_id": order_id}
        )
        return Answer(body, answer.created)

    # -- helpers ----------------------------------------------------------------------------

    def cancel_builder(
        self, description: str, *, table: str, waiter: str, mark: int
    ) -> Callable[[DocumentIdentity, list[PaymentEntry]], bytes]:
        """The payload of an 8.6 cancelling `mark` of `table`: one zero line (VAT category 8)."""

        def build(identity: DocumentIdentity, _: list[PaymentEntry]) -> bytes:
            zero = LineAmounts(ZERO, ZERO, ZERO, Decimal("0"), NO_VAT_CATEGORY, ZERO)
            line = PricedLine(
                description=description,
                quantity=Decimal("1"),
                unit=1,
                vat_category=NO_VAT_CATEGORY,
                exemption_cause=None,
                code=None,
                kind="goods",
                amounts=zero,
            )
            bucket = VatBucket(NO_VAT_CATEGORY, Decimal("0"), ZERO, ZERO)
            document = order_invoice(
                self.rt.config, identity, [line], [bucket], DocumentTotals(ZERO, ZERO, ZERO)
            )
            return dumps(cancel_payload(document, table=table, waiter=waiter, marks=[mark]))

        return build

    def _with_table(
        self, answer: Answer[DocumentAnswer], table: str, waiter: str, kind: str
    ) -> Answer[OrderAnswer]:
        body = OrderAnswer.model_validate(
            {**wire(answer.body), "table": table, "waiter": waiter, "kind": kind}
        )
        return Answer(body, answer.created)


def order_slip_payload(
    config: AgentConfig, identity: DocumentIdentity, request: OrderRequest, priced: PricedReceipt
) -> bytes:
    """The provider payload of an order slip (8.6) or a return of ordered items."""
    document = order_invoice(config, identity, priced.lines, priced.vat_buckets, priced.totals)
    return dumps(
        order_payload(
            document,
            table=request.table,
            waiter=request.waiter,
            is_return=request.kind == "return",
        )
    )


def order_invoice(
    config: AgentConfig,
    identity: DocumentIdentity,
    lines: list[PricedLine],
    buckets: list[VatBucket],
    totals: DocumentTotals,
) -> dict[str, Any]:
    """The invoice part of an 8.6: no payments, no customer."""
    return invoice_payload(
        issuer=config.issuer,
        identity=identity,
        lines=lines,
        vat_buckets=buckets,
        totals=totals,
        payments=[],
        customer=None,
        delivery=Delivery(),
        correlated_marks=[],
        connected_marks=[],
        iapr_sign_policy=config.provider.iapr_sign_policy,
    )
