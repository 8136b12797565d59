"""Queue a document for the printer in the spool (the printer worker drains it)."""

from __future__ import annotations

import offline_store as store
from agent.core.printable import printable_receipt
from agent.core.returns import original_of
from agent.core.runtime import Runtime
from agent.fiscal.orders import ORDER_TYPE
from agent.fiscal.receipt_model import Delivery


def queue_print(rt: Runtime, doc: store.StoredDocument, *, copy: bool) -> int:
    """Inside the caller's transaction: the job is durable with the document state it prints.
    An order slip's first print also queues the kitchen's copy when `printer.kitchen_copy`."""
    original = original_of(rt.conn, doc)
    layout = printable_receipt(rt.config, doc, copy=copy, original=original).to_json()
    job_id = store.enqueue_print(rt.conn, doc.id, layout, copy=copy, now=rt.clock())
    if doc.type_code == ORDER_TYPE and rt.config.printer.kitchen_copy and not copy:
        kitchen = printable_receipt(rt.config, doc, copy=False, kitchen=True).to_json()
        store.enqueue_print(rt.conn, doc.id, kitchen, copy=False, now=rt.clock())
    return job_id


def wants_print(rt: Runtime, delivery: Delivery) -> bool:
    """A receipt is printed unless the POS said not to, or asked for e-mail/SMS delivery only."""
    if not rt.config.printer.enabled:
        return False
    if delivery.print is not None:
        return delivery.print
    if delivery.email or delivery.mobile:
        return False
    return rt.config.default_delivery_print
