"""The JSON the POS gets for a document: identity, provider result, offline state, delivery."""

from __future__ import annotations

import sqlite3
from typing import Any

import offline_store as store
from agent.core.offline_documents import LEGENDS
from agent.core.runtime import Runtime
from agent.fiscal.provider_payloads import transmission_method
from agent.fiscal.receipt_model import Delivery


def _print_state(conn: sqlite3.Connection, document_id: int) -> dict[str, Any]:
    jobs = store.print_jobs_for(conn, document_id)
    if not jobs:
        return {"requested": False}
    original = jobs[0]
    state: dict[str, Any] = {
        "requested": True,
        "state": original.state.value,
        "job_id": original.id,
    }
    if original.last_error:
        state["reason"] = original.last_error
    copies = len(jobs) - 1
    if copies:
        state["copies"] = copies
    return state


def document_answer(
    rt: Runtime, doc: store.StoredDocument, delivery: Delivery | None = None
) -> dict[str, Any]:
    """`delivery`: the request's, when the caller has it in hand (issuing a receipt); otherwise
    it is read back from the stored request."""
    if delivery is None:
        delivery = Delivery.of_stored_request(doc.request_json)
    method = transmission_method(delivery)
    answer: dict[str, Any] = {
        "receipt_id": doc.id,
        "request_id": doc.request_id,
        "type": doc.type_code,
        "series": doc.series,
        "number": doc.number,
        "issued_at": doc.issued_at.isoformat(),
        "uid": doc.uid,
        "internal_id": doc.internal_id,
        "total": f"{doc.total_amount:.2f}",
        "state": doc.state.value,
        "mark": doc.mark,
        "mark_unknown": doc.mark_unknown,
        "authentication_code": doc.authentication_code,
        "qr_url": doc.qr_url,
        "delayed_code": doc.delayed_code,
        "offline": doc.delayed_code != 0 and doc.state != store.DocumentState.ACCEPTED,
        "delivery": {
            "print": _print_state(rt.conn, doc.id),
            "provider": {"transmission_method": method, "requested": method != "A"},
        },
    }
    if doc.delayed_code:
        answer["legend"] = LEGENDS[doc.delayed_code]
        answer["offline_qr_url"] = doc.offline_qr_url
        answer["due_at"] = doc.due_at.isoformat() if doc.due_at else None
    if doc.last_error and doc.state != store.DocumentState.ACCEPTED:
        answer["last_error"] = doc.last_error
    return answer
