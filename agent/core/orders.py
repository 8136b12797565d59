"""Tables in a café or restaurant: order slips (8.6), returns, cancellations, and the closing
receipt (11.1) that connects every open order's MARK.

Each document goes through the issuing path of a receipt (`IssuingService.issue_prepared`):
number and payload frozen before the first network call, the breaker, offline with the offline QR
and `IsDelayedCode` 1/2, the background sync, the print job in the outcome's transaction. The
table's own rows (which order belongs to which table, what closed or cancelled it) are written in
the transaction that freezes the document, so a crash leaves both or neither.

A close or a cancellation names MARKs, and no document may connect a MARK that does not exist:
while one of the table's orders is delayed (no MARK yet), the close is refused with
`OrdersNotSynced` (409, retryable) naming those orders; the POS retries with the same request_id
once the sync has delivered them (`POST /v1/sync` sends them at once).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import offline_store as store
from agent.core.answers import document_answer
from agent.core.errors import CancelLeavesReturns, OrderNotOpen, OrdersNotSynced, TableNotOpen
from agent.core.issuing import Draft, IssuingService, Prepared
from agent.core.request_identity import Answer, CanonicalRequest, canonical
from agent.core.runtime import Runtime
from agent.fiscal.amounts import DocumentTotals, LineAmounts, VatBucket
from agent.fiscal.document_builder import (
    check_payments_cover_total,
    price_lines,
    receipt_payload,
)
from agent.fiscal.orders import (
    NO_VAT_CATEGORY,
    ORDER_TYPE,
    CancelOrderRequest,
    CloseTableRequest,
    OrderRequest,
    PlacedOrder,
    cancel_payload,
    check_return,
    closing_lines,
    closing_payload,
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
from agent.fiscal.receipt_model import Delivery, ReceiptLine, ReceiptRequest, SaleLine
from agent.json_codec import dumps, loads

ZERO = Decimal("0.00")


def _canonical_call(body: dict[str, Any]) -> CanonicalRequest:
    """A call whose identity includes its URL (the order or table it names)."""
    text = dumps(body).decode("utf-8")
    return CanonicalRequest(text, hashlib.sha256(text.encode("utf-8")).hexdigest())


def placed(order: store.TableOrder) -> PlacedOrder:
    lines = [ReceiptLine.model_validate(line) for line in loads(order.request_json)["lines"]]
    return PlacedOrder(is_return=order.kind == store.OrderKind.RETURN, lines=lines)


def signed_total(order: store.TableOrder) -> Decimal:
    """What the order adds to the table's bill: a return takes its total off."""
    return -order.total_amount if order.kind == store.OrderKind.RETURN else order.total_amount


class OrdersService:
    def __init__(self, runtime: Runtime, issuing: IssuingService) -> None:
        self.rt = runtime
        self.issuing = issuing

    # -- order slips ------------------------------------------------------------------------

    async def place(self, request: OrderRequest) -> Answer:
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
                document = self._invoice(identity, priced.lines, priced.vat_buckets, priced.totals)
                return dumps(
                    order_payload(
                        document, table=request.table, waiter=request.waiter, is_return=is_return
                    )
                )

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

    async def cancel(self, order_id: int, request: CancelOrderRequest) -> Answer:
        """An 8.6 with `totalCancelDeliveryOrders` that cancels one open order slip."""
        rt = self.rt
        stored = _canonical_call({"order_id": order_id, **request.model_dump(mode="json")})

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

            def build(identity: DocumentIdentity, _: list[PaymentEntry]) -> bytes:
                zero = LineAmounts(ZERO, ZERO, ZERO, Decimal("0"), NO_VAT_CATEGORY, ZERO)
                line = PricedLine(
                    description=f"Ακύρωση παραγγελίας {order.series}/{order.number}",
                    quantity=Decimal("1"),
                    unit=1,
                    vat_category=NO_VAT_CATEGORY,
                    exemption_cause=None,
                    code=None,
                    kind="goods",
                    amounts=zero,
                )
                bucket = VatBucket(NO_VAT_CATEGORY, Decimal("0"), ZERO, ZERO)
                document = self._invoice(
                    identity, [line], [bucket], DocumentTotals(ZERO, ZERO, ZERO)
                )
                return dumps(
                    cancel_payload(document, table=order.table_id, waiter=waiter, marks=[mark])
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
        return Answer(
            {**answer.body, "table": table, "cancelled_order_id": order_id}, answer.created
        )

    # -- tables -----------------------------------------------------------------------------

    def tables(self) -> list[dict[str, Any]]:
        """Every table with open orders: count, total, the oldest order's age."""
        now = self.rt.clock()
        by_table: dict[str, list[store.TableOrder]] = {}
        for order in store.open_orders(self.rt.conn):
            by_table.setdefault(order.table_id, []).append(order)
        return [
            self._table_summary(table, orders, now) for table, orders in sorted(by_table.items())
        ]

    def table(self, table: str) -> dict[str, Any]:
        orders = store.open_orders(self.rt.conn, table)
        if not orders:
            raise TableNotOpen(f"table {table!r} has no open orders")
        now = self.rt.clock()
        items = table_items(placed(order) for order in orders)
        lines = closing_lines(items, fallback_vat_category=placed(orders[0]).lines[0].vat_category)
        priced = price_lines(lines, prices_include_vat=self.rt.config.pricing.prices_include_vat)
        return {
            **self._table_summary(table, orders, now),
            "orders": [self._order_view(order) for order in orders],
            "closing_lines": [line.model_dump(mode="json") for line in lines],
            "closing_total": priced.totals.gross,
        }

    async def close(self, table: str, request: CloseTableRequest) -> Answer:
        """The closing 11.1: what is left on the table, paid, connecting every open MARK."""
        rt = self.rt
        call = {"table": table, **request.model_dump(mode="json")}
        digest = _canonical_call(call).digest

        def prepare() -> Prepared:
            orders = store.open_orders(rt.conn, table)
            if not orders:
                raise TableNotOpen(f"table {table!r} has no open orders to close")
            unsynced = [order.document_id for order in orders if order.mark is None]
            if unsynced:
                raise OrdersNotSynced(
                    f"table {table!r} has order slips without a MARK yet ({unsynced}): the "
                    "closing receipt must connect their MARKs; retry with the same request_id "
                    "once they are synced (POST /v1/sync sends them now)",
                    order_ids=unsynced,
                )
            items = table_items(placed(order) for order in orders)
            lines = closing_lines(
                items, fallback_vat_category=placed(orders[0]).lines[0].vat_category
            )
            marks = [order.mark for order in orders if order.mark is not None]
            # Built from parts already validated (stored order lines, the close request's
            # payments); a table may connect more MARKs than a POS request may name.
            receipt = ReceiptRequest.model_construct(
                request_id=request.request_id,
                type="11.1",
                lines=[SaleLine.model_validate(line, from_attributes=True) for line in lines],
                payments=list(request.payments),
                correlated_marks=[],
                connected_marks=marks,
                customer=request.customer,
                delivery=request.delivery,
            )
            priced = price_lines(lines, prices_include_vat=rt.config.pricing.prices_include_vat)
            check_payments_cover_total(receipt, priced.totals)

            def build(identity: DocumentIdentity, payments: list[PaymentEntry]) -> bytes:
                document = receipt_payload(rt.config, identity, receipt, priced, payments)
                return dumps(closing_payload(document))

            def within(doc: store.StoredDocument) -> None:
                store.record_settlement(
                    rt.conn,
                    order_request_ids=[order.request_id for order in orders],
                    by_request_id=request.request_id,
                    settlement="close",
                    now=doc.created_at,
                )

            stored = CanonicalRequest(canonical(receipt).json, digest)
            draft = Draft(request.request_id, stored, "11.1", priced.totals.gross)
            return Prepared(draft, build, request.payments, request.delivery, within=within)

        answer = await self.issuing.issue_prepared(request.request_id, digest, prepare)
        return Answer({**answer.body, "table": table}, answer.created)

    # -- helpers ----------------------------------------------------------------------------

    def _invoice(
        self,
        identity: DocumentIdentity,
        lines: list[PricedLine],
        buckets: list[VatBucket],
        totals: DocumentTotals,
    ) -> dict[str, Any]:
        config = self.rt.config
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

    def _with_table(self, answer: Answer, table: str, waiter: str, kind: str) -> Answer:
        return Answer(
            {**answer.body, "table": table, "waiter": waiter, "kind": kind}, answer.created
        )

    def _table_summary(
        self, table: str, orders: Sequence[store.TableOrder], now: datetime
    ) -> dict[str, Any]:
        oldest = min(order.issued_at for order in orders)
        return {
            "table": table,
            "open_orders": len(orders),
            "total": sum((signed_total(order) for order in orders), ZERO),
            "oldest_order_at": oldest.isoformat(),
            "oldest_order_age_s": max(0, round((now - oldest).total_seconds())),
            "waiting_for_marks": sum(1 for order in orders if order.mark is None),
        }

    def _order_view(self, order: store.TableOrder) -> dict[str, Any]:
        doc = store.get_document(self.rt.conn, order.document_id)
        assert doc is not None
        return {
            **document_answer(self.rt, doc),
            "order_id": order.document_id,
            "kind": order.kind.value,
            "waiter": order.waiter,
            "signed_total": signed_total(order),
            "lines": [line.model_dump(mode="json") for line in placed(order).lines],
        }
