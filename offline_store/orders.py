"""Food-service orders (8.6 order slips) per table, and what closed or cancelled them.

An order row is written in the transaction that freezes its 8.6 document and is keyed by the
document's `request_id`. A receipt that pays only part of a table (a split bill, a partial
payment) is a `table_payments` row written the same way; the table stays open. Closing and cancelling work the same way: the orders are stamped with
the closing 11.1's (or the cancelling 8.6's) request id in the transaction that freezes that
document, and count as closed (cancelled) only while that document was not rejected: a close the
provider refuses leaves the table open again without touching a row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from offline_store.columns import money_from_db, time_from_db, time_to_db
from offline_store.database import require_transaction
from offline_store.documents import stored_request_and_payload
from offline_store.journal import append_journal


class OrderKind(StrEnum):
    ORDER = "order"  # 8.6 with debit lines (RecordTypeCode 0)
    RETURN = "return"  # 8.6 with return lines (RecordTypeCode 7)
    CANCEL = "cancel"  # 8.6 with totalCancelDeliveryOrders: cancels other 8.6 MARKs


@dataclass(frozen=True)
class TableOrder:
    """An issued order of a table that no live receipt closed and no live 8.6 cancelled."""

    document_id: int
    request_id: str
    table_id: str
    waiter: str
    kind: OrderKind
    series: str
    number: int
    issued_at: datetime
    state: str
    delayed_code: int
    mark: int | None
    total_amount: Decimal
    request_json: str
    payload: bytes | None


# Candidates first (never the whole history): orders nothing settled yet, by the partial index
# `table_orders_unsettled`, and orders whose closing or cancelling document was rejected (rare).
_CANDIDATES = """
SELECT request_id FROM table_orders INDEXED BY table_orders_unsettled
WHERE close_request_id IS NULL AND cancel_request_id IS NULL AND kind != 'cancel'
UNION
SELECT o.request_id FROM documents r JOIN table_orders o ON o.close_request_id = r.request_id
WHERE r.state IN ('rejected', 'void')
UNION
SELECT o.request_id FROM documents r JOIN table_orders o ON o.cancel_request_id = r.request_id
WHERE r.state IN ('rejected', 'void')
"""

OPEN_ORDERS_QUERY = f"""
SELECT o.request_id, o.table_id, o.waiter, o.kind, d.id AS document_id, d.series, d.number,
       d.issued_at, d.state, d.delayed_code, d.mark, d.total_amount, d.request_json,
       d.packed, d.pack_dict, d.pack_signature, d.payload, d.request_packed, d.id
FROM table_orders o
JOIN documents d ON d.request_id = o.request_id AND d.state NOT IN ('rejected', 'void')
LEFT JOIN documents c ON c.request_id = o.cancel_request_id AND c.state NOT IN ('rejected', 'void')
LEFT JOIN documents x ON x.request_id = o.close_request_id AND x.state NOT IN ('rejected', 'void')
WHERE o.request_id IN ({_CANDIDATES})
  AND o.kind != 'cancel' AND c.id IS NULL AND x.id IS NULL
"""  # noqa: S608 (constant text, no value is formatted in)


def record_order(
    conn: sqlite3.Connection,
    *,
    request_id: str,
    table_id: str,
    waiter: str,
    kind: OrderKind,
    now: datetime,
) -> None:
    """With the 8.6's frozen document: which table and waiter it is for."""
    require_transaction(conn)
    conn.execute(
        "INSERT INTO table_orders (request_id, table_id, waiter, kind, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (request_id, table_id, waiter, kind.value, time_to_db(now)),
    )
    append_journal(
        conn,
        "order.placed",
        {"request_id": request_id, "table_id": table_id, "waiter": waiter, "kind": kind.value},
        document_id=None,
        at=now,
    )


def record_settlement(
    conn: sqlite3.Connection,
    *,
    order_request_ids: Sequence[str],
    by_request_id: str,
    settlement: str,
    now: datetime,
) -> None:
    """With the closing 11.1 (`settlement="close"`) or the cancelling 8.6 (`"cancel"`): stamp
    the orders it settles with its request id."""
    require_transaction(conn)
    statement = {
        "close": "UPDATE table_orders SET close_request_id = ? WHERE request_id = ?",
        "cancel": "UPDATE table_orders SET cancel_request_id = ? WHERE request_id = ?",
    }[settlement]
    conn.executemany(
        statement,
        [(by_request_id, request_id) for request_id in order_request_ids],
    )
    append_journal(
        conn,
        f"order.{settlement}",
        {"request_id": by_request_id, "orders": list(order_request_ids)},
        document_id=None,
        at=now,
    )


def open_orders(conn: sqlite3.Connection, table_id: str | None = None) -> list[TableOrder]:
    """Open orders (and returns), oldest first; of one table or of all."""
    sql = OPEN_ORDERS_QUERY
    params: tuple[str, ...] = ()
    if table_id is not None:
        sql += " AND o.table_id = ?"
        params = (table_id,)
    rows = conn.execute(sql + " ORDER BY d.issued_at, d.id", params).fetchall()
    return [_order_from_row(conn, row) for row in rows]


def order_of_document(conn: sqlite3.Connection, document_id: int) -> TableOrder | None:
    """The order an 8.6 document is, if it is still open."""
    row = conn.execute(OPEN_ORDERS_QUERY + " AND d.id = ?", (document_id,)).fetchone()
    return None if row is None else _order_from_row(conn, row)


def order_settled_by(conn: sqlite3.Connection, request_id: str) -> str | None:
    """The request id of the document that closed (or cancelled) this order, if any."""
    row = conn.execute(
        "SELECT coalesce(close_request_id, cancel_request_id) FROM table_orders "
        "WHERE request_id = ?",
        (request_id,),
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def table_of_request(conn: sqlite3.Connection, request_id: str) -> str | None:
    row = conn.execute(
        "SELECT table_id FROM table_orders WHERE request_id = ?", (request_id,)
    ).fetchone()
    return None if row is None else str(row["table_id"])


def _order_from_row(conn: sqlite3.Connection, row: sqlite3.Row) -> TableOrder:
    request, payload = stored_request_and_payload(conn, row)
    return TableOrder(
        document_id=row["document_id"],
        request_id=row["request_id"],
        table_id=row["table_id"],
        waiter=row["waiter"],
        kind=OrderKind(row["kind"]),
        series=row["series"],
        number=row["number"],
        issued_at=time_from_db(row["issued_at"]),
        state=row["state"],
        delayed_code=row["delayed_code"],
        mark=row["mark"],
        total_amount=money_from_db(row["total_amount"]),
        request_json=request,
        payload=payload,
    )


@dataclass(frozen=True)
class TablePayment:
    """A live receipt that paid part of a table still open: what it carried, as JSON written by
    the use case (`agent.fiscal.table_bill.PaidLines`)."""

    request_id: str
    table_id: str
    paid_json: str
    document_id: int
    mark: int | None
    issued_at: datetime


# Part payments not yet settled by a close, or settled by a close that was rejected or voided.
_OPEN_PAYMENTS = """
SELECT request_id FROM table_payments INDEXED BY table_payments_unsettled
WHERE close_request_id IS NULL
UNION
SELECT p.request_id FROM documents r JOIN table_payments p ON p.close_request_id = r.request_id
WHERE r.state IN ('rejected', 'void')
"""
_SETTLE_PAYMENTS = f"""
UPDATE table_payments SET close_request_id = ?
WHERE request_id IN ({_OPEN_PAYMENTS}) AND table_id = ?
"""  # noqa: S608 (constant text, no value is formatted in)
_PART_PAYMENTS_OF_TABLE = f"""
SELECT p.request_id, p.table_id, p.paid_json, d.id, d.mark, d.issued_at
FROM table_payments p
JOIN documents d ON d.request_id = p.request_id AND d.state NOT IN ('rejected', 'void')
WHERE p.request_id IN ({_OPEN_PAYMENTS}) AND p.table_id = ?
ORDER BY d.issued_at, d.id
"""  # noqa: S608 (constant text, no value is formatted in)


def record_part_payment(
    conn: sqlite3.Connection, *, request_id: str, table_id: str, paid_json: str, now: datetime
) -> None:
    """With the frozen receipt that pays part of a table (the table stays open)."""
    require_transaction(conn)
    conn.execute(
        "INSERT INTO table_payments (request_id, table_id, paid_json, created_at) "
        "VALUES (?, ?, ?, ?)",
        (request_id, table_id, paid_json, time_to_db(now)),
    )
    append_journal(
        conn,
        "table.part_paid",
        {"request_id": request_id, "table_id": table_id},
        document_id=None,
        at=now,
    )


def settle_part_payments(conn: sqlite3.Connection, table_id: str, by_request_id: str) -> None:
    """With the receipt that brings the table to 0.00: its part payments are settled with it."""
    require_transaction(conn)
    conn.execute(_SETTLE_PAYMENTS, (by_request_id, table_id))


def open_part_payments(conn: sqlite3.Connection, table_id: str) -> list[TablePayment]:
    """The live part payments of a table that no live close settled, oldest first."""
    rows = conn.execute(_PART_PAYMENTS_OF_TABLE, (table_id,)).fetchall()
    return [
        TablePayment(
            request_id=row["request_id"],
            table_id=row["table_id"],
            paid_json=row["paid_json"],
            document_id=row["id"],
            mark=row["mark"],
            issued_at=time_from_db(row["issued_at"]),
        )
        for row in rows
    ]
