"""Cash drawer kicks: queued by the till's request (or by a cash receipt), done by the printer
worker. A kick is tried once: a drawer that springs open minutes after the sale, when the
printer comes back, would be worse than one that stayed shut, so a failed kick stays `failed`
(a printer finding in `status`) and is never retried."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from offline_store.columns import optional_time_from_db, time_from_db, time_to_db
from offline_store.journal import append_journal
from offline_store.rows import write_one


class KickState(StrEnum):
    QUEUED = "queued"
    OPENED = "opened"
    FAILED = "failed"


class KickReason(StrEnum):
    CASH_RECEIPT = "cash_receipt"
    MANUAL = "manual"


@dataclass(frozen=True)
class DrawerKick:
    id: int
    request_id: str | None
    document_id: int | None
    reason: KickReason
    caller: str
    state: KickState
    last_error: str | None
    created_at: datetime
    done_at: datetime | None


@dataclass(frozen=True)
class DrawerSummary:
    by_state: dict[str, int]
    last_failure: str | None
    last_failure_at: datetime | None


def enqueue_kick(
    conn: sqlite3.Connection,
    *,
    reason: KickReason,
    caller: str,
    now: datetime,
    document_id: int | None = None,
    request_id: str | None = None,
) -> DrawerKick:
    """In the caller's transaction (a cash receipt's outcome, or the till's open request)."""
    kick = write_one(
        conn,
        "INSERT INTO drawer_kicks (request_id, document_id, reason, caller, state, created_at) "
        "VALUES (?, ?, ?, ?, 'queued', ?) RETURNING *",
        (request_id, document_id, reason.value, caller, time_to_db(now)),
        _kick_from_row,
    )
    append_journal(
        conn,
        "drawer.queued",
        {"kick_id": kick.id, "reason": reason.value, "caller": caller, "request_id": request_id},
        document_id=document_id,
        at=now,
    )
    return kick


def next_kick(conn: sqlite3.Connection) -> DrawerKick | None:
    row = conn.execute(
        "SELECT * FROM drawer_kicks WHERE state = 'queued' ORDER BY id LIMIT 1"
    ).fetchone()
    return None if row is None else _kick_from_row(row)


def finish_kick(
    conn: sqlite3.Connection, kick_id: int, *, error: str | None, now: datetime
) -> DrawerKick:
    """`error=None`: the pulse was sent; else the kick failed (never retried)."""
    state = KickState.OPENED if error is None else KickState.FAILED
    kick = write_one(
        conn,
        "UPDATE drawer_kicks SET state = ?, attempts = attempts + 1, last_error = ?, done_at = ? "
        "WHERE id = ? AND state = 'queued' RETURNING *",
        (state.value, error, time_to_db(now), kick_id),
        _kick_from_row,
    )
    detail: dict[str, object] = {"kick_id": kick_id}
    if error is not None:
        detail["error"] = error
    append_journal(conn, f"drawer.{state.value}", detail, document_id=kick.document_id, at=now)
    return kick


def get_kick(conn: sqlite3.Connection, kick_id: int) -> DrawerKick | None:
    row = conn.execute("SELECT * FROM drawer_kicks WHERE id = ?", (kick_id,)).fetchone()
    return None if row is None else _kick_from_row(row)


def kick_count(conn: sqlite3.Connection, state: KickState) -> int:
    """One state's count through the queue index: cheap for `queued` and `failed`, which stay
    small, so `/metrics` can ask on every scrape (`drawer_summary` counts the whole history)."""
    row = conn.execute("SELECT count(*) FROM drawer_kicks WHERE state = ?", (state.value,))
    return int(row.fetchone()[0])


def drawer_summary(conn: sqlite3.Connection) -> DrawerSummary:
    counts = {
        row["state"]: row["n"]
        for row in conn.execute("SELECT state, count(*) AS n FROM drawer_kicks GROUP BY state")
    }
    failed = conn.execute(
        "SELECT last_error, done_at FROM drawer_kicks WHERE state = 'failed' "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return DrawerSummary(
        by_state=counts,
        last_failure=failed["last_error"] if failed else None,
        last_failure_at=optional_time_from_db(failed["done_at"]) if failed else None,
    )


def _kick_from_row(row: sqlite3.Row) -> DrawerKick:
    return DrawerKick(
        id=row["id"],
        request_id=row["request_id"],
        document_id=row["document_id"],
        reason=KickReason(row["reason"]),
        caller=row["caller"],
        state=KickState(row["state"]),
        last_error=row["last_error"],
        created_at=time_from_db(row["created_at"]),
        done_at=optional_time_from_db(row["done_at"]),
    )
