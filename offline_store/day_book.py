"""The day's documents and drawer kicks for the X and Z reports, and the kept daily closings.

A day is an Athens calendar day: the date part of the stored `issued_at` (`created_at` for a
kick), which carries Athens' offset. Its rows are read through the id range the day spans
(`day_ranges`, kept by triggers), so a report of one day costs that day's rows however many
years the store holds. A closing (Z) covers ids, not dates: everything after the previous
closing up to the newest row when it was made.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime

from offline_store.columns import time_from_db, time_to_db
from offline_store.database import require_transaction
from offline_store.documents import (
    DocumentState,
    StoredDocument,
    _begin_change,
    _document_from_row,
    _finish_change,
    _returning,
    _state_before,
)
from offline_store.drawer import DrawerKick, _kick_from_row
from offline_store.journal import append_journal, archive_boundary, journal_head


@dataclass(frozen=True)
class IdRange:
    """Rows with `after < id <= last` (empty when `last == after`)."""

    after: int
    last: int


@dataclass(frozen=True)
class Closing:
    """A kept Z report: its number, what it covers and the report as written (JSON text)."""

    number: int
    request_id: str
    closed_at: datetime
    documents: IdRange
    kicks: IdRange
    journal_seq: int
    report: str
    reconciliation: str | None
    print_state: str = "none"
    print_attempts: int = 0
    print_error: str | None = None


def day_range(conn: sqlite3.Connection, day: date, source: str) -> IdRange | None:
    """The ids the day's rows of `source` ('documents' or 'drawer_kicks') lie between."""
    row = conn.execute(
        "SELECT first_id, last_id FROM day_ranges WHERE day = ? AND source = ?",
        (day.isoformat(), source),
    ).fetchone()
    return None if row is None else IdRange(row["first_id"] - 1, row["last_id"])


def documents_between(
    conn: sqlite3.Connection, ids: IdRange, day: date | None = None
) -> list[StoredDocument]:
    """The documents of an id range (of that day only, when a day is given), by id."""
    sql = "SELECT * FROM documents WHERE id > ? AND id <= ?"
    params: tuple[object, ...] = (ids.after, ids.last)
    if day is not None:
        sql += " AND substr(issued_at, 1, 10) = ?"
        params += (day.isoformat(),)
    rows = conn.execute(sql + " ORDER BY id", params).fetchall()
    return [_document_from_row(conn, row) for row in rows]


def kicks_between(
    conn: sqlite3.Connection, ids: IdRange, day: date | None = None
) -> list[DrawerKick]:
    sql = "SELECT * FROM drawer_kicks WHERE id > ? AND id <= ?"
    params: tuple[object, ...] = (ids.after, ids.last)
    if day is not None:
        sql += " AND substr(created_at, 1, 10) = ?"
        params += (day.isoformat(),)
    return [_kick_from_row(row) for row in conn.execute(sql + " ORDER BY id", params)]


def newest_ids(conn: sqlite3.Connection) -> tuple[int, int]:
    """The newest document and kick ids (0 when none): where a closing made now ends."""
    documents = conn.execute("SELECT coalesce(max(id), 0) FROM documents").fetchone()[0]
    kicks = conn.execute("SELECT coalesce(max(id), 0) FROM drawer_kicks").fetchone()[0]
    return int(documents), int(kicks)


def first_unclosed(conn: sqlite3.Connection) -> datetime | None:
    """When the first document no closing covers yet was issued (None: all are closed).
    Two seeks: the last closing's end, then the next document by id."""
    row = conn.execute(
        "SELECT issued_at FROM documents WHERE id > coalesce("
        "(SELECT last_document_id FROM closings ORDER BY number DESC LIMIT 1), 0) "
        "ORDER BY id LIMIT 1"
    ).fetchone()
    return None if row is None else time_from_db(row[0])


def last_closing(conn: sqlite3.Connection) -> Closing | None:
    row = conn.execute("SELECT * FROM closings ORDER BY number DESC LIMIT 1").fetchone()
    return None if row is None else _closing_from_row(row)


def get_closing(conn: sqlite3.Connection, number: int) -> Closing | None:
    row = conn.execute("SELECT * FROM closings WHERE number = ?", (number,)).fetchone()
    return None if row is None else _closing_from_row(row)


def closing_by_request(conn: sqlite3.Connection, request_id: str) -> Closing | None:
    row = conn.execute("SELECT * FROM closings WHERE request_id = ?", (request_id,)).fetchone()
    return None if row is None else _closing_from_row(row)


def record_closing(
    conn: sqlite3.Connection,
    *,
    request_id: str,
    documents: IdRange,
    kicks: IdRange,
    report: str,
    totals: dict[str, object],
    print_slip: bool,
    now: datetime,
    print_not_before: datetime | None = None,
) -> Closing:
    """Keep the next Z report and journal it with its totals, in the caller's transaction; the
    journal entry names the head it covers (the entry before it). `print_slip`: its slip is
    queued in the same transaction, held until `print_not_before` when given (it waits for the
    reconciliation that follows; `release_closing_print` lets it go sooner)."""
    require_transaction(conn)
    previous = last_closing(conn)
    number = 1 if previous is None else previous.number + 1
    entry = journal_head(conn)
    head, head_hash = (entry.seq, entry.hash) if entry else archive_boundary(conn)
    conn.execute(
        "INSERT INTO closings (number, request_id, closed_at, after_document_id, "
        "last_document_id, after_kick_id, last_kick_id, journal_seq, report, print_state, "
        "next_print_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            number,
            request_id,
            time_to_db(now),
            documents.after,
            documents.last,
            kicks.after,
            kicks.last,
            head,
            report,
            "queued" if print_slip else "none",
            time_to_db(print_not_before) if print_slip and print_not_before else None,
        ),
    )
    detail = {
        "number": number,
        "request_id": request_id,
        "documents": [documents.after, documents.last],
        "kicks": [kicks.after, kicks.last],
        "journal_seq": head,
        "journal_hash": head_hash,
        "totals": totals,
    }
    append_journal(conn, "closing.z", detail, document_id=None, at=now)
    closing = get_closing(conn, number)
    assert closing is not None
    return closing


def record_reconciliation(
    conn: sqlite3.Connection, number: int, result: str, *, now: datetime
) -> None:
    """The provider reconciliation's result beside the closing it followed, journaled."""
    require_transaction(conn)
    conn.execute("UPDATE closings SET reconciliation = ? WHERE number = ?", (result, number))
    append_journal(
        conn, "closing.reconciled", {"number": number, "result": result}, document_id=None, at=now
    )


def queue_closing_print(conn: sqlite3.Connection, number: int, *, now: datetime) -> None:
    """Print a kept closing (again): its slip goes back to the print queue."""
    require_transaction(conn)
    conn.execute(
        "UPDATE closings SET print_state = 'queued', print_error = NULL, next_print_at = NULL "
        "WHERE number = ?",
        (number,),
    )
    append_journal(conn, "closing.print_queued", {"number": number}, document_id=None, at=now)


def held_closing_prints(conn: sqlite3.Connection) -> list[int]:
    """The closings whose slip, queued with the closing, still waits for its reconciliation
    (never tried by the printer, a time set): a crash cut the wait short."""
    rows = conn.execute(
        "SELECT number FROM closings WHERE print_state = 'queued' AND print_attempts = 0 "
        "AND print_error IS NULL AND next_print_at IS NOT NULL ORDER BY number"
    ).fetchall()
    return [int(row[0]) for row in rows]


def release_closing_print(conn: sqlite3.Connection, number: int, *, now: datetime) -> bool:
    """A held slip may print now (journaled). Only a slip still held is touched: one the
    printer already took (its hold ran out) is not queued again, so it never prints twice."""
    require_transaction(conn)
    released = conn.execute(
        "UPDATE closings SET next_print_at = NULL WHERE number = ? AND print_state = 'queued' "
        "AND print_attempts = 0 AND print_error IS NULL AND next_print_at IS NOT NULL",
        (number,),
    ).rowcount
    if released:
        append_journal(conn, "closing.print_released", {"number": number}, document_id=None, at=now)
    return bool(released)


def next_closing_print(conn: sqlite3.Connection, now: datetime) -> Closing | None:
    """The oldest closing waiting for the printer whose retry time has come (partial index)."""
    row = conn.execute(
        "SELECT * FROM closings WHERE print_state = 'queued' AND "
        "(next_print_at IS NULL OR julianday(next_print_at) <= julianday(?)) "
        "ORDER BY number LIMIT 1",
        (time_to_db(now),),
    ).fetchone()
    return None if row is None else _closing_from_row(row)


def closing_print_done(
    conn: sqlite3.Connection,
    number: int,
    *,
    error: str | None,
    next_attempt_at: datetime | None,
    now: datetime,
) -> None:
    """Printed (`error` None), or still queued until `next_attempt_at` with the printer's
    reason; journaled either way."""
    require_transaction(conn)
    if error is None:
        conn.execute(
            "UPDATE closings SET print_state = 'printed', print_attempts = print_attempts + 1, "
            "print_error = NULL, next_print_at = NULL WHERE number = ?",
            (number,),
        )
        append_journal(conn, "closing.printed", {"number": number}, document_id=None, at=now)
        return
    conn.execute(
        "UPDATE closings SET print_attempts = print_attempts + 1, print_error = ?, "
        "next_print_at = ? WHERE number = ?",
        (error, time_to_db(next_attempt_at or now), number),
    )
    append_journal(
        conn, "closing.print_retry", {"number": number, "error": error}, document_id=None, at=now
    )


_ACCEPTED = frozenset({DocumentState.ACCEPTED})
_LAST_RECONCILIATION = "reconciliation.last"


def resolve_mark(
    conn: sqlite3.Connection, document_id: int, mark: int, *, now: datetime
) -> StoredDocument:
    """An accepted document without a known MARK takes the one the provider's list gives it."""
    before = _begin_change(conn, document_id, _ACCEPTED, "resolve_mark")
    if not before.mark_unknown:
        raise ValueError(f"document {document_id} already has MARK {before.mark}")
    after = _returning(
        conn,
        "UPDATE documents SET mark = ?, mark_unknown = 0, updated_at = ? WHERE id = ? RETURNING *",
        (mark, time_to_db(now), document_id),
    )
    detail = {"mark": mark, "source": "the provider's list of documents"}
    return _finish_change(conn, before, after, "document.mark_resolved", detail, now)


def requeue_for_resend(
    conn: sqlite3.Connection, document_id: int, *, reason: str, now: datetime
) -> StoredDocument:
    """accepted → pending: the provider's list lacks a document it once accepted, so the same
    frozen bytes go to the provider again (the sync sends it; the answer's MARK is recorded)."""
    before = _state_before(conn, document_id, _ACCEPTED, "requeue_for_resend")
    after = _returning(
        conn,
        "UPDATE documents SET state = 'pending', next_attempt_at = NULL, last_error = ?, "
        "updated_at = ? WHERE id = ? RETURNING *",
        (reason, time_to_db(now), document_id),
    )
    return _finish_change(conn, before, after, "document.resend", {"reason": reason}, now)


def get_by_internal_id(conn: sqlite3.Connection, internal_id: str) -> StoredDocument | None:
    row = conn.execute("SELECT * FROM documents WHERE internal_id = ?", (internal_id,)).fetchone()
    return None if row is None else _document_from_row(conn, row)


def remember_reconciliation(conn: sqlite3.Connection, result: str) -> None:
    """The last reconciliation's result (JSON), for `status` and `/metrics`."""
    require_transaction(conn)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (_LAST_RECONCILIATION, result),
    )


def last_reconciliation(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_LAST_RECONCILIATION,)).fetchone()
    return None if row is None else str(row[0])


def _closing_from_row(row: sqlite3.Row) -> Closing:
    return Closing(
        number=row["number"],
        request_id=row["request_id"],
        closed_at=time_from_db(row["closed_at"]),
        documents=IdRange(row["after_document_id"], row["last_document_id"]),
        kicks=IdRange(row["after_kick_id"], row["last_kick_id"]),
        journal_seq=row["journal_seq"],
        report=row["report"],
        reconciliation=row["reconciliation"],
        print_state=row["print_state"],
        print_attempts=row["print_attempts"],
        print_error=row["print_error"],
    )
