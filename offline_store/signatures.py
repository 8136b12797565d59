"""Card-payment signatures from `/PosTransactions/signpos`, kept with the receipt they sign.

A receipt has at most one `active` signature: a new one for the same receipt supersedes the
old, and issuing the receipt marks the one it carries as `used`.

Since schema 15 a row keeps the provider's signature as its bytes (`signature_raw`, ~70 bytes
instead of 96 characters of base64) and its signed input without the receipt's UID when it
starts with it (`input_uid` 1: the UID is the document's, 40 characters): `signature` and
`input` read back as the texts the provider gave. What each column holds is joined, so a text
written beside the bytes changes what is read (and a payload packed against it no longer
checks).
"""

from __future__ import annotations

import base64
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from offline_store.columns import (
    money_from_db,
    money_to_db,
    optional_time_from_db,
    optional_time_to_db,
    time_from_db,
    time_to_db,
)
from offline_store.database import require_transaction
from offline_store.errors import NotFound, PackedDataDamaged
from offline_store.journal import append_journal
from offline_store.rows import check_transition

# A signature row with its receipt's UID, which a row stored without it needs.
_SELECT = (
    "SELECT s.*, d.uid AS document_uid FROM payment_signatures s "
    "LEFT JOIN documents d ON d.id = s.document_id"
)


class SignatureStatus(StrEnum):
    """Whether a signature may still be used for a payment."""

    ACTIVE = "active"
    USED = "used"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class StoredSignature:
    """A `payment_signatures` row with Python types."""

    id: int
    document_id: int
    request_id: str
    terminal_id: str
    amount: Decimal
    tip: Decimal
    input: str
    signature: str
    duration_type: str
    expires_at: datetime | None
    status: SignatureStatus
    created_at: datetime


def add_signature(
    conn: sqlite3.Connection,
    *,
    document_id: int,
    request_id: str,
    terminal_id: str,
    amount: Decimal,
    tip: Decimal,
    input: str,
    signature: str,
    duration_type: str,
    expires_at: datetime | None,
    now: datetime,
) -> StoredSignature:
    """Store a new active signature; call `supersede_signatures` first if one may exist."""
    require_transaction(conn)
    uid_row = conn.execute("SELECT uid FROM documents WHERE id = ?", (document_id,)).fetchone()
    prefix = f"{uid_row[0]};" if uid_row is not None and uid_row[0] else None
    without_uid = prefix is not None and input.startswith(prefix)
    raw = _signature_bytes(signature)
    signature_id = conn.execute(
        "INSERT INTO payment_signatures (document_id, request_id, terminal_id, amount, tip, "
        "input, input_uid, signature, signature_raw, duration_type, expires_at, status, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?) RETURNING id",
        (
            document_id,
            request_id,
            terminal_id,
            money_to_db(amount),
            money_to_db(tip),
            input[len(prefix) - 1 :] if without_uid and prefix else input,
            1 if without_uid else None,
            "" if raw is not None else signature,
            raw,
            duration_type,
            optional_time_to_db(expires_at),
            time_to_db(now),
        ),
    ).fetchone()[0]
    added = get_signature(conn, signature_id)
    assert added is not None
    # The row holds the request, terminal and amounts: the entry names it.
    detail = {"signature_id": added.id}
    append_journal(conn, "signature.added", detail, document_id=document_id, at=now)
    return added


def signature_context(conn: sqlite3.Connection, signature_id: int | None) -> bytes:
    """What a row packed against a signature was primed with (a card sale's payload, its sign
    answer): the signature row's input and signature; b"" for None."""
    if signature_id is None:
        return b""
    row = conn.execute(f"{_SELECT} WHERE s.id = ?", (signature_id,)).fetchone()
    if row is None:
        raise PackedDataDamaged(
            f"signature {signature_id}, which a row is packed against, is missing"
        )
    input_text, signature = stored_texts(row)
    return f"{input_text}\n{signature}".encode()


def get_signature(conn: sqlite3.Connection, signature_id: int) -> StoredSignature | None:
    """One signature by id."""
    row = conn.execute(f"{_SELECT} WHERE s.id = ?", (signature_id,)).fetchone()
    return None if row is None else _signature_from_row(row)


def stored_texts(row: sqlite3.Row) -> tuple[str, str]:
    """A row's signed input and signature as the provider gave them; `row` has the
    `document_uid` of `_SELECT` (any storage form)."""
    input_text = str(row["input"])
    if row["input_uid"]:
        input_text = f"{row['document_uid'] or ''}{input_text}"
    raw = row["signature_raw"]
    signature = str(row["signature"])
    if raw is not None:
        signature += base64.b64encode(bytes(raw)).decode("ascii")
    return input_text, signature


def _signature_bytes(signature: str) -> bytes | None:
    """The bytes a base64 signature stands for, when they give back exactly that text."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return None
    return raw if raw and base64.b64encode(raw).decode("ascii") == signature else None


def mark_signature_used(
    conn: sqlite3.Connection, signature_id: int, *, now: datetime
) -> StoredSignature:
    """active → used, when the receipt carrying it is issued."""
    require_transaction(conn)
    current = get_signature(conn, signature_id)
    if current is None:
        raise NotFound(f"signature {signature_id} does not exist")
    check_transition(
        "mark_signature_used", f"signature {signature_id}", current.status, {SignatureStatus.ACTIVE}
    )
    conn.execute("UPDATE payment_signatures SET status = 'used' WHERE id = ?", (signature_id,))
    used = replace(current, status=SignatureStatus.USED)
    append_journal(
        conn,
        "signature.used",
        {"signature_id": signature_id},
        document_id=current.document_id,
        at=now,
    )
    return used


def supersede_signatures(conn: sqlite3.Connection, document_id: int, *, now: datetime) -> int:
    """Every active signature of the receipt → superseded; returns how many changed."""
    require_transaction(conn)
    ids = [
        row["id"]
        for row in conn.execute(
            "SELECT id FROM payment_signatures WHERE document_id = ? AND status = 'active'",
            (document_id,),
        )
    ]
    for signature_id in ids:
        conn.execute(
            "UPDATE payment_signatures SET status = 'superseded' WHERE id = ?", (signature_id,)
        )
        append_journal(
            conn,
            "signature.superseded",
            {"signature_id": signature_id},
            document_id=document_id,
            at=now,
        )
    return len(ids)


def _signature_from_row(row: sqlite3.Row) -> StoredSignature:
    input_text, signature = stored_texts(row)
    return StoredSignature(
        id=row["id"],
        document_id=row["document_id"],
        request_id=row["request_id"],
        terminal_id=row["terminal_id"],
        amount=money_from_db(row["amount"]),
        tip=money_from_db(row["tip"]),
        input=input_text,
        signature=signature,
        duration_type=row["duration_type"],
        expires_at=optional_time_from_db(row["expires_at"]),
        status=SignatureStatus(row["status"]),
        created_at=time_from_db(row["created_at"]),
    )
