"""Clearing an order slip (8.6) the provider holds open that no open table of this register
holds: the reconciliation found it (`order_reconcile.py`) and a person decides to cancel it.

The cancellation is the provider's own way to take an 8.6 out of a table's pool (an 8.6 with
`totalCancelDeliveryOrders`, one zero line, the MARK in `multipleConnectedMarks`); it goes the
way every order slip goes (`IssuingService.issue_prepared`: number and payload frozen before the
first send, offline with the offline QR, the sync), recorded as a cancellation of the provider's
table in the transaction that freezes it. If the guest was served, the items are then placed
again on the table (`POST /v1/orders`) and the table closed as usual: the receipt connects the
new order, and the provider's pool holds nothing this register does not.

Only a MARK the last reconciliation lists as unheld may be cancelled this way (an order this
register holds open is cancelled with `POST /v1/orders/{id}/cancel`), and only once: while a
cancellation of it waits offline another is refused. Once the provider accepted the
cancellation, its open orders are read again so `status` tells the truth at once.
"""

from __future__ import annotations

from decimal import Decimal

import offline_store as store
from agent.core.answers import ProviderOrderCancelAnswer
from agent.core.day_report import UnheldOrder
from agent.core.errors import OrderNotOpen, ProviderOrderNotFound
from agent.core.issuing import Draft, IssuingService, Prepared
from agent.core.order_reconcile import cancellation_on_its_way
from agent.core.orders import OrdersService
from agent.core.reconcile import ReconcileService
from agent.core.request_identity import Answer, canonical_call, wire
from agent.core.runtime import Runtime
from agent.fiscal.orders import ORDER_TYPE, CancelProviderOrderRequest
from agent.fiscal.receipt_model import Delivery

ZERO = Decimal("0.00")


class ProviderOrders:
    def __init__(
        self,
        runtime: Runtime,
        issuing: IssuingService,
        orders: OrdersService,
        reconcile: ReconcileService,
    ) -> None:
        self.rt = runtime
        self.issuing = issuing
        self.orders = orders
        self.reconcile = reconcile

    async def cancel(
        self, mark: int, request: CancelProviderOrderRequest
    ) -> Answer[ProviderOrderCancelAnswer]:
        """An 8.6 cancelling the provider's open order slip `mark` of its table."""
        rt = self.rt
        stored = canonical_call(request, mark=mark)

        def prepare() -> Prepared:
            unheld = self._unheld(mark)
            table = unheld.table
            assert table is not None  # _unheld refuses an order without one
            build = self.orders.cancel_builder(
                f"Ακύρωση παραγγελίας ΜΑΡΚ {mark}", table=table, waiter=request.waiter, mark=mark
            )

            def within(doc: store.StoredDocument) -> None:
                store.record_order(
                    rt.conn,
                    request_id=request.request_id,
                    table_id=table,
                    waiter=request.waiter,
                    kind=store.OrderKind.CANCEL,
                    now=doc.created_at,
                )

            draft = Draft(request.request_id, stored, ORDER_TYPE, ZERO)
            return Prepared(draft, build, payments=(), delivery=Delivery(), within=within)

        answer = await self.issuing.issue_prepared(request.request_id, stored.digest, prepare)
        if answer.body.state == "accepted":
            await self.reconcile.refresh_orders()
        table = store.table_of_request(rt.conn, request.request_id) or ""
        body = ProviderOrderCancelAnswer.model_validate(
            {**wire(answer.body), "table": table, "cancelled_mark": mark}
        )
        return Answer(body, answer.created)

    def _unheld(self, mark: int) -> UnheldOrder:
        on_its_way = cancellation_on_its_way(self.rt.conn, mark)
        if on_its_way is not None:
            raise OrderNotOpen(
                f"order slip MARK {mark} is already being cancelled by receipt {on_its_way.id} "
                f"({on_its_way.state}): the sync sends it; retry that request's request_id "
                "for its state"
            )
        last = self.reconcile.last()
        found = [
            order
            for order in (last.orders.unheld if last is not None and last.orders else [])
            if order.mark == mark
        ]
        if not found:
            raise ProviderOrderNotFound(
                f"MARK {mark} is not an order slip the provider holds open without this "
                "register (per the last reconciliation): run `pos-agent reconcile` first; an "
                "order this register holds open is cancelled with POST /v1/orders/{id}/cancel"
            )
        if found[0].table is None:
            raise ProviderOrderNotFound(
                f"the provider's list gives order slip MARK {mark} no table, and a cancellation "
                "names the table: cancel it in the provider's portal"
            )
        return found[0]
