"""The durable print spool: paper out or a dead printer never touches fiscal issuing.

Worker loop: `next_print_job` → `mark_printing` → print → `mark_printed`, or `retry_print`
(back to queued later) / `fail_print`. After a crash, `requeue_interrupted` puts jobs left in
`printing` back in the queue. Every change is journalled (`print.*` events).

A job's layout (the agent's printable-receipt JSON, ~1.3 KB) lives in `print_layouts`, apart
from the job, and is deleted once the job is finished (printed or given up): a reprint is
rebuilt from the document. Written in the job's own row and cleared there, it left the row's
page nearly empty for ever, since SQLite does not merge pages whose rows shrank in place; in a
table of its own, a deleted layout frees whole pages that the next ones reuse, and a printed
job keeps ~80 bytes. Jobs written before schema 7 may still hold theirs in
`print_jobs.layout`: `print_layout` reads both, and `compact_print_jobs` rewrites those rows.
`document_id` has no foreign key, because a copy of a receipt that moved to the archive is
queued for a document no longer in the live file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from offline_store.columns import (
    optional_time_from_db,
    optional_time_to_db,
    time_from_db,
    time_to_db,
)
from offline_store.counts import state_counts
from offline_store.database import require_transaction
from offline_store.errors import NotFound
from offline_store.journal import append_journal
from offline_store.rows import check_transition, write_one


class PrintState(StrEnum):
    """Where a print job is."""

    QUEUED = "queued"
    PRINTING = "printing"
    PRINTED = "printed"
    FAILED = "failed"


@dataclass(frozen=True)
class PrintJob:
    """A `print_jobs` row (its layout is read with `print_layout`); `copy` a reprint."""

    id: int
    document_id: int
    copy: bool
    state: PrintState
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    printed_at: datetime | None


def enqueue_print(
    conn: sqlite3.Connection, document_id: int, layout_json: str, *, copy: bool, now: datetime
) -> int:
    """Queue a receipt (or a copy) for printing; returns the job id. The document must exist,
    in the live file or in a sealed archive batch (this check replaces the foreign key)."""
    require_transaction(conn)
    if not _document_known(conn, document_id):
        raise NotFound(f"document {document_id} does not exist")
    # The id only: the job is not read back (`RETURNING *` and a `PrintJob` nobody reads cost
    # ~10 µs of every sale that prints).
    job_id = conn.execute(
        "INSERT INTO print_jobs (document_id, copy, layout, state, created_at) "
        "VALUES (?, ?, '', 'queued', ?)",
        (document_id, int(copy), time_to_db(now)),
    ).lastrowid
    assert job_id is not None  # an INSERT that did not raise wrote its row
    conn.execute("INSERT INTO print_layouts (job_id, layout) VALUES (?, ?)", (job_id, layout_json))
    _journal(conn, "print.queued", job_id, document_id, {}, now)  # the row holds `copy`
    return job_id


def next_print_job(conn: sqlite3.Connection, now: datetime) -> PrintJob | None:
    """The oldest queued job whose retry time has come."""
    row = conn.execute(
        "SELECT * FROM print_jobs WHERE state = 'queued' "
        "AND (next_attempt_at IS NULL OR julianday(next_attempt_at) <= julianday(?)) "
        "ORDER BY id LIMIT 1",
        (time_to_db(now),),
    ).fetchone()
    return None if row is None else _job_from_row(row)


def print_layout(conn: sqlite3.Connection, job_id: int) -> str | None:
    """The layout to print for a job; None once it is finished (or for a job that never had
    one)."""
    row = conn.execute(
        "SELECT layout FROM print_layouts WHERE job_id = :id "
        "UNION ALL SELECT layout FROM print_jobs WHERE id = :id AND layout != '' LIMIT 1",
        {"id": job_id},
    ).fetchone()
    return None if row is None else str(row[0])


def mark_printing(conn: sqlite3.Connection, job_id: int, *, now: datetime) -> PrintJob:
    """queued → printing, just before the bytes go to the printer."""
    job = _begin(conn, job_id, {PrintState.QUEUED}, "mark_printing")
    after = _returning(
        conn, "UPDATE print_jobs SET state = 'printing' WHERE id = ? RETURNING *", (job_id,)
    )
    _journal(conn, "print.printing", job_id, job.document_id, {}, now)
    return after


def mark_printed(conn: sqlite3.Connection, job_id: int, *, now: datetime) -> PrintJob:
    """printing → printed; the layout is deleted."""
    job = _begin(conn, job_id, {PrintState.PRINTING}, "mark_printed")
    after = _returning(
        conn,
        "UPDATE print_jobs SET state = 'printed', printed_at = iif(created_at = ?1, '', ?1), "
        "last_error = NULL, next_attempt_at = NULL, layout = NULL WHERE id = ?2 RETURNING *",
        (time_to_db(now), job_id),
    )
    _drop_layout(conn, job_id)
    _journal(conn, "print.printed", job_id, job.document_id, {}, now)
    return after


def retry_print(
    conn: sqlite3.Connection,
    job_id: int,
    *,
    reason: str,
    next_attempt_at: datetime | None,
    now: datetime,
) -> PrintJob:
    """printing → queued for a later attempt (paper out, printer offline); counts an attempt."""
    job = _begin(conn, job_id, {PrintState.PRINTING}, "retry_print")
    after = _returning(
        conn,
        "UPDATE print_jobs SET state = 'queued', attempts = attempts + 1, next_attempt_at = ?, "
        "last_error = ? WHERE id = ? RETURNING *",
        (optional_time_to_db(next_attempt_at), reason, job_id),
    )
    detail = {"reason": reason, "next_attempt_at": optional_time_to_db(next_attempt_at)}
    _journal(conn, "print.retry", job_id, job.document_id, detail, now)
    return after


def fail_print(conn: sqlite3.Connection, job_id: int, *, reason: str, now: datetime) -> PrintJob:
    """queued|printing → failed: given up (its layout deleted); the receipt can still be
    reprinted as a new job."""
    job = _begin(conn, job_id, {PrintState.QUEUED, PrintState.PRINTING}, "fail_print")
    after = _returning(
        conn,
        "UPDATE print_jobs SET state = 'failed', attempts = attempts + 1, "
        "next_attempt_at = NULL, last_error = ?, layout = '' WHERE id = ? RETURNING *",
        (reason, job_id),
    )
    _drop_layout(conn, job_id)
    _journal(conn, "print.failed", job_id, job.document_id, {"reason": reason}, now)
    return after


def requeue_interrupted(conn: sqlite3.Connection, *, now: datetime) -> int:
    """printing → queued for jobs a crash left half-done; returns how many. The bytes may
    have reached the paper before the crash (a power cut between the printer's write and the
    `printed` commit), so the job prints again as a copy («ΑΝΤΙΓΡΑΦΟ»): a receipt never comes
    out twice as an original."""
    require_transaction(conn)
    rows = conn.execute(
        "SELECT id, document_id FROM print_jobs WHERE state = 'printing' ORDER BY id"
    ).fetchall()
    for row in rows:
        conn.execute(
            "UPDATE print_jobs SET state = 'queued', copy = 1, next_attempt_at = NULL, "
            "last_error = 'interrupted by a restart: printed again as a copy' WHERE id = ?",
            (row["id"],),
        )
        _journal(conn, "print.requeued", row["id"], row["document_id"], {"copy": True}, now)
    return len(rows)


def print_jobs_for(conn: sqlite3.Connection, document_id: int) -> list[PrintJob]:
    """All print jobs of a receipt, oldest first (original, then copies)."""
    rows = conn.execute(
        "SELECT * FROM print_jobs WHERE document_id = ? ORDER BY id", (document_id,)
    )
    return [_job_from_row(row) for row in rows]


def print_queue_summary(
    conn: sqlite3.Connection, states: Iterable[PrintState] | None = None
) -> dict[str, int]:
    """Job counts for every state (zero included), or for `states` only, for `status` and the
    scrape: read from the counters the triggers maintain, not counted over years of printed
    jobs."""
    counts = {state.value: 0 for state in PrintState}
    for state, n in state_counts(conn, "print_jobs").items():
        if state in counts:
            counts[state] = n
    if states is not None:
        return {state.value: counts[state.value] for state in states}
    return counts


def _drop_layout(conn: sqlite3.Connection, job_id: int) -> None:
    conn.execute("DELETE FROM print_layouts WHERE job_id = ?", (job_id,))


def _document_known(conn: sqlite3.Connection, document_id: int) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM documents WHERE id = :id) "
        "OR EXISTS (SELECT 1 FROM archive_batches WHERE :id BETWEEN first_id AND last_id)",
        {"id": document_id},
    ).fetchone()
    return bool(row[0])


def _begin(
    conn: sqlite3.Connection, job_id: int, allowed: set[PrintState], action: str
) -> PrintJob:
    require_transaction(conn)
    row = conn.execute("SELECT * FROM print_jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFound(f"print job {job_id} does not exist")
    job = _job_from_row(row)
    check_transition(action, f"print job {job_id}", job.state, allowed)
    return job


def _journal(
    conn: sqlite3.Connection,
    event: str,
    job_id: int,
    document_id: int,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    append_journal(conn, event, {"job_id": job_id, **detail}, document_id=document_id, at=now)


def _returning(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> PrintJob:
    return write_one(conn, sql, params, _job_from_row)


def _job_from_row(row: sqlite3.Row) -> PrintJob:
    return PrintJob(
        id=row["id"],
        document_id=row["document_id"],
        copy=bool(row["copy"]),
        state=PrintState(row["state"]),
        attempts=row["attempts"],
        next_attempt_at=optional_time_from_db(row["next_attempt_at"]),
        last_error=row["last_error"],
        created_at=time_from_db(row["created_at"]),
        printed_at=printed_at(row),
    )


def printed_at(row: sqlite3.Row) -> datetime | None:
    """When the job was printed: `printed_at`, '' (schema 15) when in the second it was queued,
    as nearly every job is (25 bytes a receipt), None while it is not printed."""
    text = row["printed_at"]
    return time_from_db(row["created_at"]) if text == "" else optional_time_from_db(text)
