"""Idempotency records for calls that do not create a document (a replay gets the first answer).

The response is stored as JSON with `Decimal` written as an exact number and read back as
`Decimal`, so a replayed answer carries the same amounts as the first one. Since schema 4 it is
packed (`response_packed`, `packing.pack_answer`); rows written before keep it as text. Since
schema 7 a card signature's answer names its signature row (`signature_id`) and is packed
against that row's input and signature, so the provider's signature is stored once, not again
in the answer (~410 → ~150 bytes a card sale). Since schema 11 a row records whether the call
created something (`created`); what HTTP status that becomes is the API's business.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from offline_store.columns import digest_from_db, digest_to_db, time_from_db, time_to_db
from offline_store.packing import pack_answer, unpack_answer
from offline_store.rows import write_one
from offline_store.signatures import signature_context


@dataclass(frozen=True)
class StoredRequest:
    """An `api_requests` row: what was asked (`body_hash`) and what was answered, and whether
    that call created something (a replay answers as the first call did)."""

    request_id: str
    endpoint: str
    body_hash: str
    created: bool
    response: dict[str, Any]
    document_id: int | None
    created_at: datetime


def find_request(conn: sqlite3.Connection, request_id: str) -> StoredRequest | None:
    """The stored answer for `request_id`, if this request was seen before."""
    row = conn.execute("SELECT * FROM api_requests WHERE request_id = ?", (request_id,)).fetchone()
    return None if row is None else _request_from_row(conn, row)


def remember_request(
    conn: sqlite3.Connection,
    *,
    request_id: str,
    endpoint: str,
    body_hash: str,
    created: bool,
    response: Mapping[str, Any],
    document_id: int | None,
    now: datetime,
    signature_id: int | None = None,
) -> StoredRequest:
    """Record the answer given to `request_id`; a second record for it is an IntegrityError.
    `signature_id`: the signature row the answer carries (a sign call's)."""
    return write_one(
        conn,
        "INSERT INTO api_requests (request_id, endpoint, body_hash, body_digest, created, "
        "response, response_packed, document_id, created_at, signature_id) "
        "VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?) RETURNING *",
        (
            request_id,
            endpoint,
            *digest_to_db(body_hash),
            int(created),
            pack_answer(_exact_json(response), context=signature_context(conn, signature_id)),
            document_id,
            time_to_db(now),
            signature_id,
        ),
        lambda row: _request_from_row(conn, row),
    )


def answer_text(conn: sqlite3.Connection, row: sqlite3.Row) -> str:
    """The JSON text of a stored answer, whatever its storage form."""
    if row["response_packed"] is None:
        return str(row["response"])
    context = signature_context(conn, row["signature_id"])
    return unpack_answer(row["response_packed"], context=context)


def _request_from_row(conn: sqlite3.Connection, row: sqlite3.Row) -> StoredRequest:
    return StoredRequest(
        request_id=row["request_id"],
        endpoint=row["endpoint"],
        body_hash=digest_from_db(row["body_hash"], row["body_digest"]),
        created=bool(row["created"]),
        response=json.loads(answer_text(conn, row), parse_float=Decimal),
        document_id=row["document_id"],
        created_at=time_from_db(row["created_at"]),
    )


def _exact_json(value: Any) -> str:
    """JSON with `Decimal` as exact numbers; a float is refused, as everywhere in the store, since
    it would come back as a `Decimal` the first answer never had."""
    if isinstance(value, float):
        raise TypeError(f"float {value!r} in a stored answer: amounts must be Decimal")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON form")
        return format(value, "f")
    if isinstance(value, Mapping):
        items = (
            f"{json.dumps(str(k), ensure_ascii=False)}:{_exact_json(v)}" for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return "[" + ",".join(_exact_json(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
