"""Queue a document for the printer in the spool (the printer worker drains it)."""

from __future__ import annotations

import offline_store as store
from agent.core.printable import printable_receipt
from agent.core.runtime import Runtime
from agent.fiscal.receipt_model import Delivery


def queue_print(rt: Runtime, doc: store.StoredDocument, *, copy: bool) -> int:
    """Inside the caller's transaction: the job is durable with the document state it prints."""
    layout = printable_receipt(rt.config, doc, copy=copy).to_json()
    return store.enqueue_print(rt.conn, doc.id, layout, copy=copy, now=rt.clock())


def wants_print(rt: Runtime, delivery: Delivery) -> bool:
    """A receipt is printed unless the POS said not to, or asked for e-mail/SMS delivery only."""
    if not rt.config.printer.enabled:
        return False
    if delivery.print is not None:
        return delivery.print
    if delivery.email or delivery.mobile:
        return False
    return rt.config.default_delivery_print
