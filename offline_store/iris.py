"""IRIS payments started through the provider, kept with the receipt they will pay.

`pending` while the customer's QR is valid; `completed`, `expired` or `failed` as the provider
reports it; `used` once the receipt carrying it is issued. Every change is journaled.
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
from offline_store.errors import NotFound
from offline_store.journal import append_journal
from offline_store.rows import check_transition, write_one


class IrisStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    EXPIRED = "expired"
    FAILED = "failed"
    USED = "used"


# Which state each status may be reached from.
_FROM: dict[IrisStatus, set[IrisStatus]] = {
    IrisStatus.COMPLETED: {IrisStatus.PENDING},
    IrisStatus.EXPIRED: {IrisStatus.PENDING},
    IrisStatus.FAILED: {IrisStatus.PENDING},
    IrisStatus.USED: {IrisStatus.COMPLETED},
}


@dataclass(frozen=True)
class NewIrisPayment:
    document_id: int
    request_id: str
    amount: Decimal
    merchant_id: str
    end_to_end_id: str
    authorisation_request_id: str
    qr: str
    signed_input: str
    signature: str
    valid_until: datetime


@dataclass(frozen=True)
class StoredIrisPayment(NewIrisPayment):
    id: int
    status: IrisStatus
    created_at: datetime
    updated_at: datetime
    print_state: str = "none"
    print_attempts: int = 0
    print_next_at: datetime | None = None


def add_iris_payment(
    conn: sqlite3.Connection, new: NewIrisPayment, *, now: datetime
) -> StoredIrisPayment:
    """Store a started payment as `pending`, in the caller's transaction."""
    added = write_one(
        conn,
        "INSERT INTO iris_payments (document_id, request_id, amount, merchant_id, "
        "end_to_end_id, authorisation_request_id, qr, signed_input, signature, valid_until, "
        "status, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) RETURNING *",
        (
            new.document_id,
            new.request_id,
            money_to_db(new.amount),
            new.merchant_id,
            new.end_to_end_id,
            new.authorisation_request_id,
            new.qr,
            new.signed_input,
            new.signature,
            time_to_db(new.valid_until),
            time_to_db(now),
            time_to_db(now),
        ),
        _from_row,
    )
    detail = {
        "iris_payment_id": added.id,
        "request_id": new.request_id,
        "amount": money_to_db(new.amount),
        "end_to_end_id": new.end_to_end_id,
        "authorisation_request_id": new.authorisation_request_id,
        "valid_until": time_to_db(new.valid_until),
    }
    append_journal(conn, "iris.pending", detail, document_id=new.document_id, at=now)
    return added


def get_iris_payment(conn: sqlite3.Connection, payment_id: int) -> StoredIrisPayment | None:
    row = conn.execute("SELECT * FROM iris_payments WHERE id = ?", (payment_id,)).fetchone()
    return None if row is None else _from_row(row)


def set_iris_status(
    conn: sqlite3.Connection, payment_id: int, status: IrisStatus, *, now: datetime
) -> StoredIrisPayment:
    """pending → completed | expired | failed, completed → used; journaled."""
    require_transaction(conn)
    current = get_iris_payment(conn, payment_id)
    if current is None:
        raise NotFound(f"IRIS payment {payment_id} does not exist")
    check_transition(f"iris.{status}", f"IRIS payment {payment_id}", current.status, _FROM[status])
    changed = write_one(
        conn,
        "UPDATE iris_payments SET status = ?, updated_at = ? WHERE id = ? RETURNING *",
        (status.value, time_to_db(now), payment_id),
        _from_row,
    )
    append_journal(
        conn,
        f"iris.{status.value}",
        {"iris_payment_id": payment_id},
        document_id=current.document_id,
        at=now,
    )
    return changed


def queue_iris_print(conn: sqlite3.Connection, payment_id: int, *, now: datetime) -> None:
    """The QR goes to the receipt printer (the printer worker takes it); journaled."""
    require_transaction(conn)
    row = conn.execute(
        "UPDATE iris_payments SET print_state = 'queued', print_next_at = NULL WHERE id = ? "
        "RETURNING document_id",
        (payment_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"IRIS payment {payment_id} does not exist")
    append_journal(
        conn,
        "iris.print_queued",
        {"iris_payment_id": payment_id},
        document_id=row["document_id"],
        at=now,
    )


def next_iris_print(conn: sqlite3.Connection, now: datetime) -> StoredIrisPayment | None:
    """The oldest QR waiting for the printer whose retry time has come, while it can still be
    paid (a QR whose payment settled or expired is not printed any more)."""
    stamp = time_to_db(now)
    row = conn.execute(
        "SELECT * FROM iris_payments WHERE print_state = 'queued' AND status = 'pending' "
        "AND julianday(valid_until) > julianday(?) "
        "AND (print_next_at IS NULL OR julianday(print_next_at) <= julianday(?)) "
        "ORDER BY id LIMIT 1",
        (stamp, stamp),
    ).fetchone()
    return None if row is None else _from_row(row)


def iris_print_done(
    conn: sqlite3.Connection,
    payment_id: int,
    *,
    error: str | None,
    next_attempt_at: datetime | None,
    now: datetime,
) -> None:
    """Printed, or (with `error`) tried again at `next_attempt_at`."""
    require_transaction(conn)
    if error is None:
        conn.execute(
            "UPDATE iris_payments SET print_state = 'printed', print_next_at = NULL WHERE id = ?",
            (payment_id,),
        )
        return
    conn.execute(
        "UPDATE iris_payments SET print_attempts = print_attempts + 1, print_next_at = ? "
        "WHERE id = ?",
        (optional_time_to_db(next_attempt_at), payment_id),
    )


def _from_row(row: sqlite3.Row) -> StoredIrisPayment:
    return StoredIrisPayment(
        id=row["id"],
        document_id=row["document_id"],
        request_id=row["request_id"],
        amount=money_from_db(row["amount"]),
        merchant_id=row["merchant_id"],
        end_to_end_id=row["end_to_end_id"],
        authorisation_request_id=row["authorisation_request_id"],
        qr=row["qr"],
        signed_input=row["signed_input"],
        signature=row["signature"],
        valid_until=time_from_db(row["valid_until"]),
        status=IrisStatus(row["status"]),
        created_at=time_from_db(row["created_at"]),
        updated_at=time_from_db(row["updated_at"]),
        print_state=row["print_state"],
        print_attempts=row["print_attempts"],
        print_next_at=optional_time_from_db(row["print_next_at"]),
    )
