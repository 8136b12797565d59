"""The cash drawer on the receipt printer's RJ-11 port (ESC p): opened by a cash sale and on
the till's request.

The agent owns the printer, so it opens the drawer too. A kick is queued in the store, in the
transaction that records the sale's outcome (or that answers the till's request), and the printer
worker sends the pulse: the till's answer never waits for the printer, and a kick that fails is a
printer finding in `status`, never a failed sale.
"""

from __future__ import annotations

from collections.abc import Callable

import offline_store as store
from agent.config import PrinterConfig
from agent.core.answers import DrawerAnswer
from agent.core.errors import DrawerNotConfigured
from agent.core.print_orders import queue_print
from agent.core.request_identity import (
    Answer,
    remembered_answer,
    request_hash,
    wire,
)
from agent.core.runtime import Runtime
from agent.fiscal.frozen_payloads import FrozenPayments
from agent.fiscal.orders import DrawerOpenRequest
from agent.fiscal.tax_codes import CASH_PAYMENT

AfterOutcome = Callable[[store.StoredDocument], None]


def drawer_configured(config: PrinterConfig) -> bool:
    return config.enabled and config.cash_drawer != "none"


def pays_cash(doc: store.StoredDocument) -> bool:
    """From the frozen payload: what the provider records is what opens the drawer."""
    if doc.payload is None:
        return False
    payments = FrozenPayments.of_payload(doc.payload).payments
    return any(payment.method == CASH_PAYMENT for payment in payments)


def wants_cash_kick(rt: Runtime, doc: store.StoredDocument) -> bool:
    """A receipt with a cash payment opens the drawer (`printer.drawer_on_cash`)."""
    printer = rt.config.printer
    return drawer_configured(printer) and printer.drawer_on_cash and pays_cash(doc)


def sale_followups(rt: Runtime, *, printing: bool, kick: bool) -> AfterOutcome | None:
    """What the outcome's transaction also commits for a sale: its print job, its drawer kick."""
    if not printing and not kick:
        return None

    def follow(issued: store.StoredDocument) -> None:
        if printing:
            queue_print(rt, issued, copy=False)
        if kick:
            store.enqueue_kick(
                rt.conn,
                reason=store.KickReason.CASH_RECEIPT,
                caller="sale",
                document_id=issued.id,
                now=rt.clock(),
            )

    return follow


OPEN_DRAWER = "drawer.open"  # the endpoint its remembered answers are stored under


class DrawerService:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def open(self, request: DrawerOpenRequest, caller: str) -> Answer[DrawerAnswer]:
        """Queue a kick; the same request_id answers with the first kick and never kicks twice.
        `caller` is who asked (the socket peer's uid/gid/pid), journaled with the kick."""
        rt = self.rt
        if not drawer_configured(rt.config.printer):
            raise DrawerNotConfigured(
                'no cash drawer is configured (printer.cash_drawer = "none" or printing is '
                "disabled)"
            )
        digest = request_hash(request)
        replay = remembered_answer(
            rt.conn, request.request_id, digest, endpoint=OPEN_DRAWER, model=DrawerAnswer
        )
        if replay is not None:
            return replay
        now = rt.clock()
        with store.transaction(rt.conn):
            kick = store.enqueue_kick(
                rt.conn,
                reason=store.KickReason.MANUAL,
                caller=caller,
                request_id=request.request_id,
                now=now,
            )
            body = DrawerAnswer(
                kick_id=kick.id,
                state=kick.state.value,
                caller=caller,
                requested_at=now.isoformat(),
            )
            store.remember_request(
                rt.conn,
                request_id=request.request_id,
                endpoint=OPEN_DRAWER,
                body_hash=digest,
                created=True,
                response=wire(body),
                document_id=None,
                now=now,
            )
        rt.notify_printer()
        return Answer(body, created=True)
