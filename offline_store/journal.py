"""The hash-chained, append-only journal of every state change.

Each entry's hash is SHA-256 over the previous entry's hash followed by the canonical JSON of
`{seq, at, document_id, event, detail}`, so editing, removing or reordering any entry breaks
every hash after it. Triggers refuse UPDATE and DELETE on the table.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from offline_store.columns import time_to_db
from offline_store.database import require_transaction

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class JournalCheck:
    """Result of `verify_journal`: `first_bad_seq` is the first entry that does not verify."""

    ok: bool
    entries: int
    first_bad_seq: int | None
    last_hash: str = GENESIS_HASH

    @property
    def checkpoint(self) -> tuple[int, str] | None:
        """Where the next `verify_journal(after=...)` may start; None after a failure."""
        return (self.entries, self.last_hash) if self.ok else None


def canonical_json(value: Any) -> str:
    """The one JSON spelling that is hashed: sorted keys, no spaces, UTF-8 text."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def entry_hash(
    prev_hash: str, *, seq: int, at: str, document_id: int | None, event: str, detail: Any
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
    """Append one entry in the caller's transaction and return its hash."""
    require_transaction(conn)
    last = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = (1, GENESIS_HASH) if last is None else (last["seq"] + 1, last["hash"])
    at_text = time_to_db(at)
    # Store the detail exactly as hashed, so verification re-reads the same values.
    detail_text = canonical_json(detail)
    stored_detail = json.loads(detail_text)
    new_hash = entry_hash(
        prev_hash, seq=seq, at=at_text, document_id=document_id, event=event, detail=stored_detail
    )
    conn.execute(
        "INSERT INTO journal (seq, at, document_id, event, detail, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, at_text, document_id, event, detail_text, prev_hash, new_hash),
    )
    return new_hash


def verify_journal(
    conn: sqlite3.Connection, *, after: tuple[int, str] | None = None
) -> JournalCheck:
    """Walk the chain: sequence, links, canonical detail text and every hash.

    `after` is a checkpoint `(seq, hash)` from an earlier successful check (its `checkpoint`):
    only newer entries are walked, so a long-running daemon does not re-hash years of journal
    on every `status`. The checkpoint's hash must still be the stored hash of that entry.
    """
    start_seq, expected_prev = after if after is not None else (0, GENESIS_HASH)
    if start_seq:
        row = conn.execute("SELECT hash FROM journal WHERE seq = ?", (start_seq,)).fetchone()
        if row is None or row["hash"] != expected_prev:
            return JournalCheck(ok=False, entries=start_seq, first_bad_seq=start_seq)
    entries = start_seq
    rows = conn.execute(
        "SELECT seq, at, document_id, event, detail, prev_hash, hash FROM journal "
        "WHERE seq > ? ORDER BY seq",
        (start_seq,),
    )
    for expected_seq, row in enumerate(rows, start=start_seq + 1):
        entries += 1
        if not _entry_ok(row, expected_seq, expected_prev):
            return JournalCheck(ok=False, entries=entries, first_bad_seq=row["seq"])
        expected_prev = row["hash"]
    return JournalCheck(ok=True, entries=entries, first_bad_seq=None, last_hash=expected_prev)


def _entry_ok(row: sqlite3.Row, expected_seq: int, expected_prev: str) -> bool:
    if row["seq"] != expected_seq or row["prev_hash"] != expected_prev:
        return False
    try:
        detail = json.loads(row["detail"])
    except ValueError:
        return False
    if canonical_json(detail) != row["detail"]:
        return False
    recomputed = entry_hash(
        row["prev_hash"],
        seq=row["seq"],
        at=row["at"],
        document_id=row["document_id"],
        event=row["event"],
        detail=detail,
    )
    return bool(recomputed == row["hash"])
