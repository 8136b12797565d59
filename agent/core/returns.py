"""Returns that name their original by receipt id (11.4 of an 11.1, 8.5 of an 8.4), also while
the original is still offline and has no MARK.

Crash-safe order of a return whose original has no MARK yet:
1. One transaction (`IssuingService._freeze`): the return's number, issue time, UID and its
   exact payload, frozen with an empty correlation list: `pending`.
2. No network call (`Transmitter.hold`): one transaction makes it `delayed` with the original's
   IsDelayedCode (the reason it cannot go out), its own offline QR and its print job, so the
   customer leaves with the paper. A crash between 1 and 2 leaves it `pending`: the re-send on
   start meets it, finds the original without a MARK, and does step 2 then.
3. A sync sends the original; its MARK is committed with its acceptance and never changes.
4. The sync sends the return only after that (held back while the original has no MARK and
   released in the same run once the original is accepted), as `with_original_mark(frozen
   payload, MARK)`: a pure function of two committed values that never change, so the first
   send and every retry carry the same bytes, and a 409 adopts the MARK as for any document.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import offline_store as store
from agent.config import AgentConfig
from agent.fiscal.document_builder import price_lines
from agent.fiscal.errors import FieldProblem
from agent.fiscal.receipt_model import PosReceiptRequest, ReceiptRequest
from agent.fiscal.returns import (
    RETURN_OF,
    NamedOriginal,
    OriginalNotReturnable,
    ReturnedItem,
    check_return_amount,
    check_return_items,
    items,
    needs_original_mark,
    with_original_mark,
)

_NOT_ISSUED = (store.DocumentState.RESERVED, store.DocumentState.VOID)


def original_id(doc: store.StoredDocument) -> int | None:
    """The receipt a return names by id, or None (not a return, or named by MARK)."""
    if doc.type_code not in RETURN_OF:
        return None
    return NamedOriginal.of_stored_request(doc.request_json).correlated_receipt_id


def original_of(conn: sqlite3.Connection, doc: store.StoredDocument) -> store.StoredDocument | None:
    named = original_id(doc)
    return None if named is None else store.get_document(conn, named)


def waiting_for(conn: sqlite3.Connection, doc: store.StoredDocument) -> store.StoredDocument | None:
    """The original this return must wait for: frozen without its MARK, which is still unknown."""
    if doc.payload is None or not needs_original_mark(doc.payload, doc.type_code):
        return None
    original = original_of(conn, doc)
    if original is None or original.mark is not None:
        return None
    return original


def payload_to_send(conn: sqlite3.Connection, doc: store.StoredDocument) -> bytes:
    """The frozen payload, with the original's MARK put in when it was frozen without it."""
    assert doc.payload is not None
    if not needs_original_mark(doc.payload, doc.type_code):
        return doc.payload
    original = original_of(conn, doc)
    if original is None or original.mark is None:
        raise ValueError(f"return {doc.id} is sent before its original has a MARK")
    return with_original_mark(doc.payload, doc.type_code, original.mark)


def returnable_original(
    conn: sqlite3.Connection, type_code: str, receipt_id: int
) -> store.StoredDocument:
    """The receipt a new return names: issued here, of the type it returns, not refused."""
    wanted = RETURN_OF[type_code]
    original = store.get_document(conn, receipt_id)
    problem = None
    if original is None or original.state in _NOT_ISSUED:
        problem = "no receipt with this id was issued here"
    elif original.type_code != wanted:
        problem = (
            f"receipt {receipt_id} is a {original.type_code}; a {type_code} returns a {wanted}"
        )
    elif original.state == store.DocumentState.REJECTED:
        problem = f"receipt {receipt_id} was rejected by the provider: it cannot be returned"
    elif original.state == store.DocumentState.ACCEPTED and original.mark is None:
        problem = (
            f"receipt {receipt_id} was accepted without a known MARK: name it by "
            "correlated_marks with the MARK from the provider's portal"
        )
    if original is None or problem is not None:
        raise OriginalNotReturnable(
            f"correlated_receipt_id {receipt_id}: {problem}",
            [FieldProblem("correlated_receipt_id", problem or "")],
        )
    return original


def _names(doc: store.StoredDocument, original: store.StoredDocument) -> bool:
    named = NamedOriginal.of_stored_request(doc.request_json)
    if named.correlated_receipt_id == original.id:
        return True
    return original.mark is not None and original.mark in named.correlated_marks


def check_credit(
    conn: sqlite3.Connection, config: AgentConfig, request: ReceiptRequest
) -> store.StoredDocument:
    """An 11.4 by receipt id: the original, after checking that this credit and the earlier
    ones of it give back at most what it sold (per line, quantity and amount)."""
    assert request.correlated_receipt_id is not None
    original = returnable_original(conn, "11.4", request.correlated_receipt_id)
    include_vat = config.pricing.prices_include_vat

    def sold(document_request: ReceiptRequest) -> list[ReturnedItem]:
        priced = price_lines(
            document_request.lines,
            prices_include_vat=include_vat,
            discount=document_request.discount,
        )
        return items(document_request.lines, priced.lines)

    earlier = [
        item
        for doc in store.issued_after(conn, after_id=original.id, type_code="11.4")
        if _names(doc, original)
        for item in sold(ReceiptRequest.model_validate_json(doc.request_json))
    ]
    check_return_items(
        sold(ReceiptRequest.model_validate_json(original.request_json)),
        earlier,
        sold(request),
    )
    return original


def check_pos_return(conn: sqlite3.Connection, request: PosReceiptRequest) -> store.StoredDocument:
    """An 8.5 by receipt id: at most what its 8.4 took, less the earlier 8.5s of it."""
    assert request.correlated_receipt_id is not None
    original = returnable_original(conn, "8.5", request.correlated_receipt_id)
    earlier = sum(
        (
            doc.total_amount
            for doc in store.issued_after(conn, after_id=original.id, type_code="8.5")
            if _names(doc, original)
        ),
        Decimal(0),
    )
    amount = sum((payment.amount for payment in request.payments), Decimal(0))
    check_return_amount(original.total_amount, earlier, amount)
    return original
