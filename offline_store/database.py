"""Opening the receipt database safely, and the one way to write to it: `transaction()`.

The connection runs in autocommit mode (`isolation_level=None`) so that no hidden BEGIN or
COMMIT is ever issued: every write happens inside an explicit `BEGIN IMMEDIATE`, which takes
the write lock up front and therefore never fails half-way with SQLITE_BUSY on lock upgrade.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from offline_store.columns import time_from_db, time_to_db
from offline_store.errors import DatabaseDamaged, SchemaTooNew, TransactionError
from offline_store.migrations import MIGRATIONS, apply_migrations, schema_version

BUSY_TIMEOUT_MS = 5000
# The daemon writes on its event loop: a lock held by another process must cost a till request
# a fraction of its total timeout (4 s), not the 5 s the command-line tools may wait. A write
# still busy after this is refused (StorageBusy); the API awaits a pause and runs the request
# again for a while (agent/api/routing.py) before the till sees 503 storage_busy.
DAEMON_BUSY_TIMEOUT_MS = 250

_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_META_CHECK_AT = "integrity_check_at"
_META_CHECK_RESULT = "integrity_check_result"
_META_SESSION = "session"


# (codec, dictionary id, signature context, packed payload, packed request) → (request, payload)
UnpackedMemo = dict[tuple[object, ...], tuple[str, bytes | None]]


@dataclass(frozen=True)
class JournalWritten:
    """The journal entry a connection appended last, and in which of its transactions."""

    transaction: int
    seq: int
    hash: str


class StoreConnection(sqlite3.Connection):
    """A store connection, with what it may keep between calls: the learned packing
    dictionaries it has read (`dictionaries.py`; they never change, so a copy is never stale),
    the last documents it packed or unpacked (`documents.py`: keyed by the packed bytes and
    how they were packed, so a changed byte on disk is never answered from it), and which
    transaction it is in and the journal entry it wrote last in that transaction (`journal.py`
    keeps one hash per transaction: it must know whether the newest entry is this
    transaction's; forgotten when the transaction ends)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.learned_dictionaries: dict[int, bytes] = {}
        self.unpacked_documents: UnpackedMemo = {}
        self.event_codes: dict[str, int | None] = {}  # the journal's event names (journal.py)
        self.transaction_serial = 0
        self.journal_written: JournalWritten | None = None


def open_database(
    path: Path,
    *,
    read_only: bool = False,
    now: datetime | None = None,
    check: bool | None = None,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
) -> sqlite3.Connection:
    """Open the store; read-write opens are migrated and, when needed, integrity-checked.

    `PRAGMA quick_check` reads every page, so it costs seconds on years of history: it runs
    only when `check` is True, or (`check=None`, the default) when the last session that
    opened the file did not end with `close_database` (a crash, kill -9, a power cut) or the
    file has never been checked. Such an open starts a new session. `check=False` joins the
    running session (the print spool's second connection). `pos-agent doctor` always checks.

    `now` is the time recorded for the integrity check (defaults to the system clock).
    `busy_timeout_ms` applies once the open is done (the open itself waits the full
    `BUSY_TIMEOUT_MS` for the check and the migrations). A
    read-only open (the status CLI while the daemon is down) uses `mode=ro` and changes nothing.
    Raises `DatabaseDamaged` with instructions for the technician when the file is damaged.
    """
    if read_only:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            factory=StoreConnection,
        )
    else:
        conn = sqlite3.connect(
            path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, factory=StoreConnection
        )
    conn.row_factory = sqlite3.Row
    try:
        _configure(conn, read_only=read_only)
        if not read_only:
            run_check = check if check is not None else not _closed_cleanly(conn)
            result = _quick_check(conn) if run_check else None
            if result is not None and result != "ok":
                raise DatabaseDamaged(damage_message(path, result))
            apply_migrations(conn)
            if result is not None:
                _record_integrity_check(conn, result, now or datetime.now(UTC).astimezone())
            if check is None:
                _set_meta(conn, {_META_SESSION: "open"})
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        if _is_damage(exc):
            raise DatabaseDamaged(damage_message(path, str(exc))) from exc
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def close_database(conn: sqlite3.Connection) -> None:
    """End the session cleanly: the next open skips the full integrity check."""
    try:
        _set_meta(conn, {_META_SESSION: "closed"})
    finally:
        conn.close()


def damage_message(path: Path, detail: str) -> str:
    """What the technician must do; the file is never to be deleted (it holds unsent receipts)."""
    return (
        f"The receipt database {path} is damaged ({detail}). "
        "Do NOT delete it: it may hold receipts not yet sent to the provider. "
        "Stop the service (systemctl stop pos-agent), copy the file together with its "
        f"{path.name}-wal and {path.name}-shm files (if present) to a safe place, "
        "then restore the database from the latest backup or contact support with that copy."
    )


@contextmanager
def transaction(conn: sqlite3.Connection, *, fsync: bool = True) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` … `COMMIT`, or `ROLLBACK` on any exception. Not re-entrant.

    `fsync=False` commits to the WAL without waiting for the disk (`synchronous=NORMAL` for
    this one commit): a kill -9 still loses nothing, only a power cut can undo it. Only for
    changes that can be rebuilt from elsewhere; the next full commit makes it durable too."""
    if conn.in_transaction:
        raise TransactionError("a transaction is already open on this connection")
    if not fsync:
        conn.execute("PRAGMA synchronous = NORMAL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        if isinstance(conn, StoreConnection):
            conn.transaction_serial += 1
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        if isinstance(conn, StoreConnection):
            conn.journal_written = None  # the next transaction reads the journal's head anew
        if not fsync:
            conn.execute("PRAGMA synchronous = FULL")


def make_durable(conn: sqlite3.Connection) -> None:
    """Everything committed so far is on the disk when this returns, including commits made
    with `transaction(fsync=False)`, which waited for no disk: one fsync of the WAL file (the
    kernel writes back the file whichever descriptor asks). For an answer read back from the
    store, so what a till is told never rests on such a commit."""
    row = conn.execute("PRAGMA database_list").fetchone()
    if row is None or not row[2]:
        return
    try:
        fd = os.open(f"{row[2]}-wal", os.O_RDONLY)
    except FileNotFoundError:
        return  # no WAL: a checkpoint synced everything into the main file
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def require_transaction(conn: sqlite3.Connection) -> None:
    """Guard for write functions: they join the caller's transaction and never commit."""
    if not conn.in_transaction:
        raise TransactionError("store writes must run inside transaction(conn)")


def last_integrity_check(conn: sqlite3.Connection) -> tuple[datetime, str] | None:
    """When the last open-time integrity check ran and what it said, for `status`."""
    rows = dict(
        conn.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?)", (_META_CHECK_AT, _META_CHECK_RESULT)
        ).fetchall()
    )
    if _META_CHECK_AT not in rows or _META_CHECK_RESULT not in rows:
        return None
    return time_from_db(rows[_META_CHECK_AT]), rows[_META_CHECK_RESULT]


def _configure(conn: sqlite3.Connection, *, read_only: bool) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if read_only:
        # Reads the header now, so a damaged file is reported at open; a file from a newer
        # agent (after a downgrade) is refused rather than read with the wrong meaning.
        found, known = schema_version(conn), MIGRATIONS[-1].version
        if found > known:
            raise SchemaTooNew(found, known)
        return
    if schema_version(conn) == 0:
        # Only possible before the first table: freed pages (archived months) can then be
        # given back to the filesystem a batch at a time with `PRAGMA incremental_vacuum`.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise sqlite3.OperationalError(f"could not switch {mode!r} journal to WAL")
    conn.execute("PRAGMA synchronous = FULL")


def _quick_check(conn: sqlite3.Connection) -> str:
    rows = conn.execute("PRAGMA quick_check").fetchall()
    return "; ".join(str(row[0]) for row in rows)


def _closed_cleanly(conn: sqlite3.Connection) -> bool:
    """The last session ended with `close_database` and a check result is on record."""
    if schema_version(conn) == 0:
        return False
    rows = dict(
        conn.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?)", (_META_SESSION, _META_CHECK_RESULT)
        ).fetchall()
    )
    return rows.get(_META_SESSION) == "closed" and _META_CHECK_RESULT in rows


def _record_integrity_check(conn: sqlite3.Connection, result: str, at: datetime) -> None:
    _set_meta(conn, {_META_CHECK_AT: time_to_db(at), _META_CHECK_RESULT: result})


def _set_meta(conn: sqlite3.Connection, values: dict[str, str]) -> None:
    with transaction(conn):
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    # Only errors raised by SQLite carry a code; our own (the refused WAL switch) are not damage.
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
