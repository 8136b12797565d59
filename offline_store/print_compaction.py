"""The print jobs an upgraded register carries, rewritten densely a slice at a time.

Before schema 7 a job's layout (~1.3 KB) was written in the job's row and set to NULL once
printed: the row shrank in place, and SQLite does not merge pages whose rows shrank, so every
printed job kept ~1.3 KB of file, 94 % of it unused space inside its page. Deleting a slice of
those rows and inserting them again (same ids, same values) lets SQLite free the emptied pages
and write the rows densely; `PRAGMA incremental_vacuum` then gives the freed pages back to the
filesystem. Only the rows schema 7 found are rewritten (ids up to `print_jobs.compact_until`,
recorded by the migration), in id order from a cursor kept in `meta`, so a restart continues
where the last slice ended. A queued or failed job of that time moves its layout to
`print_layouts` on the way. Nothing a reader sees changes: same ids, columns and states, and
the count triggers see one delete and one insert in the same state.

Crash safety: each slice is one transaction (rows and cursor together); the vacuum after it
only returns free pages, so a kill between the two leaves them for the next slice's vacuum.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from offline_store.database import transaction

_UNTIL = "print_jobs.compact_until"
_CURSOR = "print_jobs.compacted_to"
_FREED = "print_jobs.compact_freed_bytes"
_COLUMNS = (
    "id, document_id, copy, layout, state, attempts, next_attempt_at, last_error, created_at, "
    "printed_at"
)


@dataclass(frozen=True)
class PrintCompaction:
    """One slice: rows rewritten, file bytes it gave back, the total so far, and whether every
    row of the old layout is done (then slices do nothing)."""

    rows: int
    freed_bytes: int
    total_freed_bytes: int
    done: bool


def compact_print_jobs(conn: sqlite3.Connection, *, limit: int = 5000) -> PrintCompaction:
    """Rewrite the next `limit` print jobs written before schema 7 and return the freed pages to the
    filesystem. Opens its own transaction (one short write lock, like any other slice)."""
    meta = _meta(conn)
    until, cursor, total = meta.get(_UNTIL, 0), meta.get(_CURSOR, 0), meta.get(_FREED, 0)
    if cursor >= until:
        return PrintCompaction(0, 0, total, True)
    pages_before = _pages(conn)
    with transaction(conn):
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM print_jobs "  # noqa: S608
            "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (cursor, until, limit),
        ).fetchall()
        last = rows[-1][0] if len(rows) == limit else until
        if rows:
            _rewrite(conn, rows, cursor, last)
        _set(conn, _CURSOR, last)
    conn.executescript("PRAGMA incremental_vacuum;")
    freed = max(0, pages_before - _pages(conn)) * _page_size(conn)
    with transaction(conn):
        _set(conn, _FREED, total + freed)
    return PrintCompaction(len(rows), freed, total + freed, last >= until)


def _rewrite(conn: sqlite3.Connection, rows: list[sqlite3.Row], after: int, last: int) -> None:
    """Delete the rows (ids after..last) and insert them again, a layout still held by an
    unfinished job moved to `print_layouts`."""
    conn.execute("DELETE FROM print_jobs WHERE id > ? AND id <= ?", (after, last))
    moved = [(row[0], row[3]) for row in rows if row[3]]
    conn.executemany(
        f"INSERT INTO print_jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        [(*row[:3], "" if row[3] else row[3], *row[4:]) for row in rows],
    )
    conn.executemany("INSERT INTO print_layouts (job_id, layout) VALUES (?, ?)", moved)


def _meta(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT key, value FROM meta WHERE key IN (?, ?, ?)", (_UNTIL, _CURSOR, _FREED)
    )
    return {key: int(value) for key, value in rows}


def _set(conn: sqlite3.Connection, key: str, value: int) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, str(value)),
    )


def _pages(conn: sqlite3.Connection) -> int:
    pages: int = conn.execute("PRAGMA page_count").fetchone()[0]
    return pages


def _page_size(conn: sqlite3.Connection) -> int:
    size: int = conn.execute("PRAGMA page_size").fetchone()[0]
    return size
