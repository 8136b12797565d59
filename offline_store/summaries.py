"""Read-only figures for `status` and metrics: backlog, deadlines, database size.

Every query here is a maintained counter or an index range over the few documents not yet
accepted (delayed, pending, marked unknown), never a scan of the history:
`tests/offline_store/test_query_plans.py` checks the plans."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from offline_store.columns import optional_time_from_db, time_from_db, time_to_db
from offline_store.counts import state_counts
from offline_store.documents import DocumentState


@dataclass(frozen=True)
class OldestDelayed:
    """The delayed document closest to its legal deadline's origin (issued first)."""

    document_id: int
    issued_at: datetime
    due_at: datetime | None


@dataclass(frozen=True)
class BacklogSummary:
    """Document counts for `status`; `overdue` are delayed rows already past `due_at`."""

    by_state: dict[str, int]
    delayed_by_code: dict[int, int]
    oldest_delayed: OldestDelayed | None
    overdue: int
    mark_unknown: int

    @property
    def rejected(self) -> int:
        """Rejected documents (waiting for a person), read from `by_state`."""
        return self.by_state[DocumentState.REJECTED]

    @property
    def reserved(self) -> int:
        """Open card reservations, read from `by_state`."""
        return self.by_state[DocumentState.RESERVED]


def backlog_summary(conn: sqlite3.Connection, now: datetime) -> BacklogSummary:
    """Counts by state and delayed code, the oldest delayed document and how many are overdue."""
    by_state = {state.value: 0 for state in DocumentState}
    for state, n in state_counts(conn, "documents").items():
        if state in by_state:
            by_state[state] = n
    delayed_by_code = {1: 0, 2: 0}
    for row in conn.execute(
        "SELECT delayed_code, count(*) AS n FROM documents WHERE state = 'delayed' "
        "GROUP BY delayed_code"
    ):
        delayed_by_code[row["delayed_code"]] = row["n"]
    oldest = conn.execute(
        "SELECT id, issued_at, due_at FROM documents WHERE state = 'delayed' "
        "ORDER BY julianday(issued_at), id LIMIT 1"
    ).fetchone()
    overdue: int = conn.execute(
        "SELECT count(*) FROM documents WHERE state = 'delayed' "
        "AND julianday(due_at) <= julianday(?)",
        (time_to_db(now),),
    ).fetchone()[0]
    mark_unknown: int = conn.execute(
        "SELECT count(*) FROM documents WHERE mark_unknown = 1"
    ).fetchone()[0]
    return BacklogSummary(
        by_state=by_state,
        delayed_by_code=delayed_by_code,
        oldest_delayed=None
        if oldest is None
        else OldestDelayed(
            document_id=oldest["id"],
            issued_at=time_from_db(oldest["issued_at"]),
            due_at=optional_time_from_db(oldest["due_at"]),
        ),
        overdue=overdue,
        mark_unknown=mark_unknown,
    )


def mark_unknown_ids(conn: sqlite3.Connection, limit: int = 20) -> list[int]:
    """The first accepted documents whose MARK is not known, through the partial index
    `documents_mark_unknown` (a handful at most, never the history)."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT id FROM documents WHERE mark_unknown = 1 ORDER BY id LIMIT ?", (limit,)
        )
    ]


def database_size_bytes(path: Path) -> int:
    """Size of the database file plus its WAL (what the disk really holds for it)."""
    total = 0
    for candidate in (path, path.with_name(path.name + "-wal")):
        if candidate.exists():
            total += candidate.stat().st_size
    return total
