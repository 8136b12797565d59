"""An archived document as a line of its month file, and back; and as the export shows it.

A line carries the document row and the rows that hang off it (`RELATED_TABLES`) as text, so
the archive stays readable without this code: what the live tables keep packed or split (a
remembered answer, a card signature, a body digest) is written out whole.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from offline_store.columns import (
    digest_from_db,
    money_from_db,
    optional_time_from_db,
    time_from_db,
    time_to_db,
)
from offline_store.documents import (
    DocumentKind,
    DocumentState,
    StoredDocument,
    _document_from_row,
)
from offline_store.requests import answer_text
from offline_store.signatures import stored_texts

# The tables whose rows hang off a document (`document_id`) and move with it. Each is read and
# deleted by `document_id` for every archived document, so each has an index on it: without one
# a batch scanned the table once per document (a million-receipt history stalled for minutes).
RELATED_TABLES = ("print_jobs", "payment_signatures", "iris_payments", "api_requests")


def document_record(doc: StoredDocument) -> dict[str, Any]:
    """An archived document as exported (the accountant's view of one receipt)."""
    return {
        "id": doc.id,
        "series": doc.series,
        "number": doc.number,
        "type_code": doc.type_code,
        "issued_at": time_to_db(doc.issued_at),
        "uid": doc.uid,
        "mark": doc.mark,
        "authentication_code": doc.authentication_code,
        "total_amount": format(doc.total_amount, "f"),
        "qr_url": doc.qr_url,
        "delayed_code": doc.delayed_code,
        "payload": json.loads(doc.payload or b"null"),
    }


def _related_record(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    """A row of a table that hangs off a document, as text: a remembered answer packed by
    schema 4 or 5 is archived as the text it was (the archive stays readable without this
    code)."""
    record = dict(row)
    if record.pop("response_packed", None) is not None:
        record["response"] = answer_text(conn, row)
    if "body_digest" in record:
        record["body_hash"] = digest_from_db(record["body_hash"], record.pop("body_digest"))
    if "signature_raw" in record:
        with_uid = conn.execute(
            "SELECT ? AS input, ? AS input_uid, ? AS signature, ? AS signature_raw, uid AS "
            "document_uid FROM documents WHERE id = ?",
            (
                record["input"],
                record.pop("input_uid"),
                record["signature"],
                record.pop("signature_raw"),
                record["document_id"],
            ),
        ).fetchone()
        record["input"], record["signature"] = stored_texts(with_uid)
    if record.get("printed_at") == "":
        record["printed_at"] = record["created_at"]
    return record


def archived_record(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    doc = _document_from_row(conn, row)
    related = {
        table: [
            _related_record(conn, r)
            for r in conn.execute(
                f"SELECT * FROM {table} WHERE document_id = ? ORDER BY rowid",  # noqa: S608
                (doc.id,),
            )
        ]
        for table in RELATED_TABLES
    }
    return {
        "type": "document",
        "id": doc.id,
        "request_id": doc.request_id,
        "kind": doc.kind.value,
        "type_code": doc.type_code,
        "series": doc.series,
        "number": doc.number,
        "issued_at": row["issued_at"],
        "uid": doc.uid,
        "internal_id": doc.internal_id,
        "request_json": doc.request_json,
        "payload": (doc.payload or b"").decode("utf-8"),
        "total_amount": row["total_amount"],
        "delayed_code": doc.delayed_code,
        "due_at": row["due_at"],
        "attempts": doc.attempts,
        "mark": doc.mark,
        "authentication_code": doc.authentication_code,
        "qr_url": doc.qr_url,
        "offline_qr_url": doc.offline_qr_url,
        "created_at": row["created_at"] or row["issued_at"],
        "updated_at": row["updated_at"],
        **related,
    }


def document_of_record(record: dict[str, Any]) -> StoredDocument:
    request_json = record["request_json"]
    return StoredDocument(
        id=record["id"],
        request_id=record["request_id"],
        request_hash=hashlib.sha256(request_json.encode("utf-8")).hexdigest(),
        kind=DocumentKind(record["kind"]),
        type_code=record["type_code"],
        series=record["series"],
        number=record["number"],
        issued_at=time_from_db(record["issued_at"]),
        uid=record["uid"],
        internal_id=record["internal_id"],
        request_json=request_json,
        payload=record["payload"].encode("utf-8"),
        total_amount=money_from_db(record["total_amount"]),
        state=DocumentState.ACCEPTED,
        delayed_code=record["delayed_code"],
        due_at=optional_time_from_db(record["due_at"]),
        attempts=record["attempts"],
        next_attempt_at=None,
        last_error=None,
        mark=record["mark"],
        mark_unknown=False,
        authentication_code=record["authentication_code"],
        qr_url=record["qr_url"],
        offline_qr_url=record["offline_qr_url"],
        reserved_until=None,
        created_at=time_from_db(record["created_at"]),
        updated_at=time_from_db(record["updated_at"]),
    )
