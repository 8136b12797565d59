"""Queue a document for the printer in the spool (the printer worker drains it)."""

from __future__ import annotations

import offline_store as store
from agent.core.printable import printable_receipt
from agent.core.runtime import Runtime


def queue_print(rt: Runtime, doc: store.StoredDocument, *, copy: bool) -> int:
    """Inside the caller's transaction: the job is durable with the document state it prints."""
    layout = printable_receipt(rt.config, doc, copy=copy).to_json()
    return store.enqueue_print(rt.conn, doc.id, layout, copy=copy, now=rt.clock())
