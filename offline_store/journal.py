"""The hash-chained, append-only journal of every state change.

Each entry's hash is SHA-256 over the previous entry's hash (hex) followed by the canonical JSON
of `{seq, at, document_id, event, detail}`, so editing, removing or reordering any entry breaks
every hash after it. Triggers refuse UPDATE and DELETE on the table (DELETE is allowed only for
entries a sealed archive batch holds, see `archive.py`).

Four storage forms, all read as one `JournalEntry` (the hash formula never changes):
- schema 1: `at` ISO text, `prev_hash` and `hash` 64 hex characters;
- schema 2: `prev_hash` empty (it is the previous row's `hash`, which the hash covers anyway);
- schema 4: `hash` and `at` empty, the hash as 32 bytes in `digest` and the time as
  microseconds since the epoch in `at_us`, which is also what is hashed as `at` (an integer in
  the JSON, so it can never be mistaken for an entry of the text form). Five entries a receipt:
  this took the journal from 1.1 KB to ~0.8 KB per receipt;
- schema 12: the event as a code (`code`, its name in `journal_event_names`; the name is what
  is hashed, `journal_named` reads it back) and a hash kept only by the last entry a
  transaction wrote: an entry without one (`sealed` False) has the hash computed from the entry
  before it, and the next kept hash covers it. Appending to the transaction that wrote the
  newest entry drops that entry's digest (the one UPDATE the triggers allow), so the newest entry
  always keeps its hash and a check can stop only where a hash is kept. A changed entry inside
  a transaction is found at the transaction's last entry and reported as the transaction's
  first (`first_bad_seq`): which of its entries changed cannot be told. Since schema 14 a coded
  entry's detail is packed (`detail_packed`, journal_detail.py) and `detail` stays '', and a
  time in whole seconds is kept as seconds (`at_s`; hashed in microseconds as before).

The live chain starts where the archive ends (`archive_boundary`: the last archived entry's seq
and hash), or at the genesis. `journal_slice` verifies it in bounded slices from a checkpoint
kept in `meta`, so the daemon never re-hashes years of journal and `status` only reads the
last result (`last_journal_check`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from offline_store.columns import optional_time_from_db, time_to_db
from offline_store.database import (
    JournalWritten,
    StoreConnection,
    require_transaction,
    transaction,
)
from offline_store.errors import PackedDataDamaged
from offline_store.journal_detail import pack_detail, unpack_detail

GENESIS_HASH = "0" * 64
_META_CHECKPOINT = "journal_checkpoint"
_META_RESULT = "journal_result"
_META_CHECKED_AT = "journal_checked_at"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SECOND_US = 1_000_000
_ENTRY_COLUMNS = (
    "seq, at, at_us, at_s, document_id, event, detail, detail_packed, prev_hash, hash, digest"
)


@dataclass(frozen=True)
class JournalEntry:
    """One entry as it is hashed, whatever its storage form (module docstring).

    `at` is ISO text (entries before schema 4) or microseconds since the epoch; `detail` is the
    stored canonical JSON text; `prev_hash` is empty unless the row stored its link."""

    seq: int
    at: str | int
    document_id: int | None
    event: str
    detail: str
    prev_hash: str
    hash: str

    @property
    def sealed(self) -> bool:
        """The entry keeps its hash (False: one inside a transaction, its hash is recomputed)."""
        return bool(self.hash)

    @property
    def time(self) -> datetime:
        """When the entry was written (aware; UTC for the integer form)."""
        if isinstance(self.at, int):
            return _EPOCH + self.at * _MICROSECOND
        return datetime.fromisoformat(self.at)


def _stored_hash(row: sqlite3.Row) -> str:
    """An entry's hash as hex, from either storage form (`hash` text or `digest` bytes); ''
    for an entry whose transaction's later entry keeps the hash."""
    digest = row["digest"]
    return str(row["hash"]) if digest is None else bytes(digest).hex()


def entry_from_row(row: sqlite3.Row) -> JournalEntry:
    """A row selected with the journal's entry columns, in any storage form."""
    return JournalEntry(
        seq=row["seq"],
        at=_at(row),
        document_id=row["document_id"],
        event=row["event"],
        detail=_detail(row),
        prev_hash=row["prev_hash"],
        hash=_stored_hash(row),
    )


def _at(row: sqlite3.Row) -> str | int:
    """The time as hashed: microseconds since the epoch (kept as seconds when whole, schema 14),
    or the ISO text of entries before schema 4."""
    if row["at_us"] is not None:
        return int(row["at_us"])
    if row["at_s"] is not None:
        return int(row["at_s"]) * _SECOND_US
    return str(row["at"])


def _detail(row: sqlite3.Row) -> str:
    """The detail text (unpacked since schema 14). '' when it no longer unpacks or a packed
    entry also has a text: not JSON, so the entry does not verify."""
    packed = row["detail_packed"]
    if packed is None:
        return str(row["detail"])
    if row["detail"]:
        return ""
    try:
        return unpack_detail(bytes(packed))
    except PackedDataDamaged:
        return ""


def journal_entries(
    conn: sqlite3.Connection, *, after: int, upto: int | None = None, limit: int | None = None
) -> Iterator[JournalEntry]:
    """The live entries after seq `after` (up to `upto`, at most `limit`), in order."""
    rows = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM journal_named WHERE seq > ? AND seq <= ? "  # noqa: S608
        "ORDER BY seq LIMIT ?",
        (after, upto if upto is not None else 2**63 - 1, limit if limit is not None else -1),
    )
    return (entry_from_row(row) for row in rows)


def journal_entry(conn: sqlite3.Connection, seq: int) -> JournalEntry | None:
    """One live entry with its hash (recomputed when its transaction's last entry keeps it);
    None when it is not in the live file."""
    row = _entry_row(conn, seq)
    return None if row is None else _with_hash(conn, entry_from_row(row))


def _entry_row(conn: sqlite3.Connection, seq: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM journal_named WHERE seq = ?",  # noqa: S608
        (seq,),
    ).fetchone()
    return row


def journal_head(conn: sqlite3.Connection) -> JournalEntry | None:
    """The newest live entry (two primary-key seeks), None when the live journal is empty."""
    row = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM journal_named "  # noqa: S608
        "WHERE seq = (SELECT max(seq) FROM journal)"
    ).fetchone()
    return None if row is None else _with_hash(conn, entry_from_row(row))


def journal_link(conn: sqlite3.Connection) -> tuple[int, str] | None:
    """(seq, hash) of the newest live entry, None when the live journal is empty: the link
    only, not the whole entry (this runs for every state change on the till, and for the
    high-water mark after every freeze)."""
    head = conn.execute(
        "SELECT seq, hash, digest FROM journal WHERE seq = (SELECT max(seq) FROM journal)"
    ).fetchone()
    if head is None:
        return None
    link = _stored_hash(head)
    if not link:  # never on a sound file: the newest entry keeps its hash
        newest = journal_entry(conn, head["seq"])
        link = newest.hash if newest is not None else ""
    return int(head["seq"]), link


def _with_hash(conn: sqlite3.Connection, entry: JournalEntry) -> JournalEntry:
    """`entry` with its hash: stored, or computed from the last entry before it that keeps one
    (or the archive boundary), through the entries between (a transaction's few)."""
    if entry.sealed:
        return entry
    boundary_seq, prev = archive_boundary(conn)
    run: list[JournalEntry] = []
    for row in conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM journal_named "  # noqa: S608
        "WHERE seq < ? AND seq > ? ORDER BY seq DESC",
        (entry.seq, boundary_seq),
    ):
        earlier = entry_from_row(row)
        if earlier.sealed:
            prev = earlier.hash
            break
        run.append(earlier)
    for earlier in reversed(run):
        prev = _recomputed(earlier, prev)
    return JournalEntry(
        entry.seq,
        entry.at,
        entry.document_id,
        entry.event,
        entry.detail,
        entry.prev_hash,
        _recomputed(entry, prev),
    )


def _recomputed(entry: JournalEntry, prev: str) -> str:
    """The entry's hash after `prev` ('' when its detail is not JSON: it matches nothing)."""
    try:
        detail = json.loads(entry.detail)
    except ValueError:
        return ""
    return entry_hash(
        prev,
        seq=entry.seq,
        at=entry.at,
        document_id=entry.document_id,
        event=entry.event,
        detail=detail,
    )


def time_to_us(at: datetime) -> int:
    """Microseconds since the epoch of an aware time (the journal's integer `at`)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: pass a timezone-aware time")
    return (at - _EPOCH) // _MICROSECOND


@dataclass(frozen=True)
class JournalCheck:
    """Result of `verify_journal`: `first_bad_seq` is the first entry that does not verify.

    `entries` is the last sequence number verified (entries archived before the live chain
    count too); `complete` is False when a `limit` stopped the walk before the last entry."""

    ok: bool
    entries: int
    first_bad_seq: int | None
    last_hash: str = GENESIS_HASH
    complete: bool = True

    @property
    def checkpoint(self) -> tuple[int, str] | None:
        """Where the next `verify_journal(after=...)` may start; None after a failure."""
        return (self.entries, self.last_hash) if self.ok else None


# `json.dumps` given any option builds an encoder per call; a sale hashes four entries.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
)


def canonical_json(value: Any) -> str:
    """The one JSON spelling that is hashed: sorted keys, no spaces, UTF-8 text."""
    return _CANONICAL.encode(value)


def entry_hash(
    prev_hash: str, *, seq: int, at: str | int, document_id: int | None, event: str, detail: Any
) -> str:
    """SHA-256 hex of `prev_hash` + canonical JSON of the entry."""
    body = canonical_json(
        {"seq": seq, "at": at, "document_id": document_id, "event": event, "detail": detail}
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def append_journal(
    conn: sqlite3.Connection,
    event: str,
    detail: dict[str, Any],
    *,
    document_id: int | None,
    at: datetime,
) -> str:
    """Append one entry in the caller's transaction and return its hash.

    The entry keeps its hash; the entry before it gives its hash up when this connection wrote
    it in this same transaction (module docstring). Which transaction wrote the newest entry is
    known only to a `StoreConnection` inside `transaction()`: anywhere else every entry keeps
    its hash."""
    require_transaction(conn)
    written = _written_here(conn)
    head = journal_link(conn) if written is None else (written.seq, written.hash)
    last_seq, prev_hash = archive_boundary(conn) if head is None else head
    seq = last_seq + 1
    at_us = time_to_us(at)
    # Store the detail exactly as hashed, so verification re-reads the same values.
    detail_text = canonical_json(detail)
    stored_detail = json.loads(detail_text)
    new_hash = entry_hash(
        prev_hash, seq=seq, at=at_us, document_id=document_id, event=event, detail=stored_detail
    )
    code = _event_code(conn, event)
    packed = pack_detail(detail_text) if code is not None else None
    conn.execute(
        "INSERT INTO journal (seq, at, at_us, at_s, document_id, event, code, detail, "
        "detail_packed, prev_hash, hash, digest) VALUES (?, '', ?, ?, ?, ?, ?, ?, ?, '', '', ?)",
        (
            seq,
            *((None, at_us // _SECOND_US) if at_us % _SECOND_US == 0 else (at_us, None)),
            document_id,
            "" if code is not None else event,
            code,
            "" if packed else detail_text,
            packed,
            bytes.fromhex(new_hash),
        ),
    )
    if isinstance(conn, StoreConnection):  # the newest entry from here on, whatever follows
        conn.journal_written = JournalWritten(conn.transaction_serial, seq, new_hash)
    if written is not None:
        conn.execute("UPDATE journal SET digest = NULL WHERE seq = ?", (last_seq,))
    return new_hash


def _written_here(conn: sqlite3.Connection) -> JournalWritten | None:
    """The entry this connection appended last, when it did so in the transaction it is in: that
    entry is still the newest (the transaction holds the write lock, and nothing else on the
    connection appends to the journal), so a sale's second entry of a transaction links to it
    without reading the head back. None anywhere else: the head is read from the file."""
    if not isinstance(conn, StoreConnection):
        return None
    written = conn.journal_written
    return (
        written if written is not None and written.transaction == conn.transaction_serial else None
    )


def _event_code(conn: sqlite3.Connection, event: str) -> int | None:
    """The event's code, None for a name without one (stored by name). A store connection keeps
    what it read: the names' codes never change (triggers refuse it), and a name a later
    version adds is at worst stored by its name, which reads the same."""
    codes = conn.event_codes if isinstance(conn, StoreConnection) else None
    if codes is not None and event in codes:
        return codes[event]
    row = conn.execute("SELECT code FROM journal_event_names WHERE name = ?", (event,)).fetchone()
    code = None if row is None else int(row[0])
    if codes is not None:
        codes[event] = code
    return code


def close_journal_unit(conn: sqlite3.Connection) -> None:
    """The next entry starts a new unit of one kept hash, as after a commit, inside the same
    transaction: the history writer (agent/tools/history.py) writes thousands of the daemon's
    transactions in one, and its entries must keep the hashes the daemon's would."""
    if isinstance(conn, StoreConnection):
        conn.transaction_serial += 1


def journal_last_seq(conn: sqlite3.Connection) -> int:
    """The newest entry's sequence number (a primary-key seek), archived entries included."""
    head = journal_head(conn)
    return head.seq if head is not None else archive_boundary(conn)[0]


def archive_boundary(conn: sqlite3.Connection) -> tuple[int, str]:
    """(seq, hash) of the last entry moved to the archive, or (0, genesis): the live chain's
    start. Read from the newest sealed batch (one index seek)."""
    row = conn.execute(
        "SELECT journal_last_seq, journal_last_hash FROM archive_batches "
        "ORDER BY journal_last_seq DESC LIMIT 1"
    ).fetchone()
    return (0, GENESIS_HASH) if row is None else (row[0], row[1])


def verify_journal(
    conn: sqlite3.Connection,
    *,
    after: tuple[int, str] | None = None,
    limit: int | None = None,
) -> JournalCheck:
    """Walk the live chain: sequence, links, canonical detail text and every hash.

    Without `after` the walk starts at the archive boundary (the archived part is verified
    against its sealed files by `archive.verify_history`). `after` is a checkpoint `(seq,
    hash)` from an earlier successful check (its `checkpoint`): only newer entries are walked.
    The checkpoint's hash must still be the stored hash of that entry, unless the entry has
    since moved to the archive, in which case the walk starts at the boundary. `limit` bounds
    the entries walked (a background slice); the result is then `complete=False`.
    """
    boundary = archive_boundary(conn)
    start_seq, expected_prev = boundary
    if after is not None and after[0] > boundary[0]:
        start_seq, expected_prev = after
        start = journal_entry(conn, start_seq)
        if start is None or start.hash != expected_prev:
            return JournalCheck(ok=False, entries=start_seq, first_bad_seq=start_seq)
    entries = start_seq
    # Entries since the last kept hash: their hashes are proven only by the next kept one.
    unproven: int | None = None
    for walked, entry in enumerate(journal_entries(conn, after=start_seq)):
        if limit is not None and walked >= limit and unproven is None:
            return JournalCheck(True, entries, None, last_hash=expected_prev, complete=False)
        entries += 1
        link = entry_link(entry, entries, expected_prev)
        if link is None:
            bad = entry.seq if unproven is None or not entry.sealed else unproven
            return JournalCheck(ok=False, entries=entries, first_bad_seq=bad)
        if unproven is None and not entry.sealed:
            unproven = entry.seq
        elif entry.sealed:
            unproven = None
        expected_prev = link
    if unproven is not None:  # the newest entries lost the one that kept their hash
        return JournalCheck(ok=False, entries=entries, first_bad_seq=unproven)
    return JournalCheck(ok=True, entries=entries, first_bad_seq=None, last_hash=expected_prev)


@dataclass(frozen=True)
class JournalStatus:
    """The last background check as `status` shows it: up to which entry the chain verified."""

    ok: bool
    verified_seq: int
    first_bad_seq: int | None
    checked_at: datetime | None


def journal_slice(conn: sqlite3.Connection, *, limit: int, now: datetime) -> JournalCheck:
    """Verify up to `limit` entries after the stored checkpoint and store the new one.

    A failure is stored and stays: a broken chain is never mended by walking on, it needs a
    person (`pos-agent doctor` re-walks the whole history). One short write for the result."""
    checkpoint, status = _stored_checkpoint(conn)
    if status is not None and not status.ok:
        return JournalCheck(False, status.verified_seq, status.first_bad_seq)
    check = verify_journal(conn, after=checkpoint, limit=limit)
    result = "ok" if check.ok else f"bad:{check.first_bad_seq}"
    values = {
        _META_RESULT: result,
        _META_CHECKED_AT: time_to_db(now),
        _META_CHECKPOINT: f"{check.entries}:{check.last_hash}"
        if check.ok
        else f"{check.entries - 1}:",
    }
    with transaction(conn, fsync=False):
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )
    return check


def last_journal_check(conn: sqlite3.Connection) -> JournalStatus | None:
    """What the last `journal_slice` found (None before the first one)."""
    return _stored_checkpoint(conn)[1]


def _stored_checkpoint(
    conn: sqlite3.Connection,
) -> tuple[tuple[int, str] | None, JournalStatus | None]:
    meta = dict(
        conn.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?, ?)",
            (_META_CHECKPOINT, _META_RESULT, _META_CHECKED_AT),
        ).fetchall()
    )
    if _META_RESULT not in meta:
        return None, None
    result = meta[_META_RESULT]
    seq_text, _, hash_text = meta.get(_META_CHECKPOINT, "").partition(":")
    checkpoint = (int(seq_text), hash_text) if seq_text and hash_text else None
    bad = None if result == "ok" else int(result.partition(":")[2] or 0)
    status = JournalStatus(
        ok=result == "ok",
        verified_seq=int(seq_text or 0),
        first_bad_seq=bad,
        checked_at=optional_time_from_db(meta.get(_META_CHECKED_AT)),
    )
    return checkpoint, status


def entry_link(entry: JournalEntry, expected_seq: int, expected_prev: str) -> str | None:
    """The entry's hash when it links to `expected_prev` at `expected_seq` and its kept hash (if
    it keeps one) is right; None when it does not verify."""
    if entry.seq != expected_seq or entry.prev_hash not in ("", expected_prev):
        return None
    try:
        detail = json.loads(entry.detail)
    except ValueError:
        return None
    if canonical_json(detail) != entry.detail:
        return None
    recomputed = entry_hash(
        expected_prev,
        seq=entry.seq,
        at=entry.at,
        document_id=entry.document_id,
        event=entry.event,
        detail=detail,
    )
    return recomputed if not entry.sealed or recomputed == entry.hash else None
