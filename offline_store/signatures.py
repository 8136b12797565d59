"""Card-payment signatures from `/PosTransactions/signpos`, kept with the receipt they sign.

A receipt has at most one `active` signature: a new one for the same receipt supersedes the
old, and issuing the receipt marks the one it carries as `used`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
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
from offline_store.rows import check_transition, write_one


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
    added = write_one(
        conn,
        "INSERT INTO payment_signatures (document_id, request_id, terminal_id, amount, tip, "
        "input, signature, duration_type, expires_at, status, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?) RETURNING *",
        (
            document_id,
            request_id,
            terminal_id,
            money_to_db(amount),
            money_to_db(tip),
            input,
            signature,
            duration_type,
            optional_time_to_db(expires_at),
            time_to_db(now),
        ),
        _signature_from_row,
    )
    # The row holds the request, terminal and amounts: the entry names it.
    detail = {"signature_id": added.id}
    append_journal(conn, "signature.added", detail, document_id=document_id, at=now)
    return added


def signature_context(conn: sqlite3.Connection, signature_id: int | None) -> bytes:
    """What a row packed against a signature was primed with (a card sale's payload, its sign
    answer): the signature row's input and signature; b"" for None."""
    if signature_id is None:
        return b""
    row = conn.execute(
        "SELECT input, signature FROM payment_signatures WHERE id = ?", (signature_id,)
    ).fetchone()
    if row is None:
        raise PackedDataDamaged(
            f"signature {signature_id}, which a row is packed against, is missing"
        )
    return f"{row[0]}\n{row[1]}".encode()


def get_signature(conn: sqlite3.Connection, signature_id: int) -> StoredSignature | None:
    """One signature by id."""
    row = conn.execute("SELECT * FROM payment_signatures WHERE id = ?", (signature_id,)).fetchone()
    return None if row is None else _signature_from_row(row)


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
    used = write_one(
        conn,
        "UPDATE payment_signatures SET status = 'used' WHERE id = ? RETURNING *",
        (signature_id,),
        _signature_from_row,
    )
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
    return StoredSignature(
        id=row["id"],
        document_id=row["document_id"],
        request_id=row["request_id"],
        terminal_id=row["terminal_id"],
        amount=money_from_db(row["amount"]),
        tip=money_from_db(row["tip"]),
        input=row["input"],
        signature=row["signature"],
        duration_type=row["duration_type"],
        expires_at=optional_time_from_db(row["expires_at"]),
        status=SignatureStatus(row["status"]),
        created_at=time_from_db(row["created_at"]),
    )
