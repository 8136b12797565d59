"""Is a frozen payload still the one that was frozen?

The triggers refuse an UPDATE of a frozen payload, but they cannot stop the bytes changing under
SQLite: a flipped bit on an SD card, a file edited by hand. SQLite keeps no checksum of its
pages, so such a payload reads back as if nothing happened and would be sent (and accepted) with
the journal no longer matching it. The journal recorded the payload's SHA-256 when it was frozen
(`document.pending`); before every send, and in `status`/`doctor`, the payload is hashed again
and compared with that record. A document whose freeze entry an earlier archive run moved away
is checked against the entry in the sealed archive (`archived_freeze`), read only on a miss.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from offline_store.archived_freeze import ArchivedFreezes
from offline_store.dictionaries import packing_of
from offline_store.errors import PackedDataDamaged
from offline_store.journal_detail import unpack_detail
from offline_store.packing import Packing, unpack
from offline_store.signatures import signature_context

# The freeze's entry is found through a partial index (`journal_frozen`, schema 7; since schema
# 12 it also holds the entries that store `document.pending` as its code, 2) holding one
# entry per frozen document: without it the query walked the journal back from its head to the
# document's freeze, entries of every receipt since, for every send (a backlog synced oldest
# first read most of the journal for each of its first documents).
_RECORDED_DIGEST = (
    "SELECT seq, detail, detail_packed FROM journal "
    "WHERE document_id = ? AND (code = 2 OR event = 'document.pending') ORDER BY seq DESC"
)
UNSENT_STATES = ("pending", "delayed")


def payload_intact(
    conn: sqlite3.Connection,
    document_id: int,
    payload: bytes | None,
    *,
    archive_dir: Path | None = None,
    archived: ArchivedFreezes | None = None,
) -> bool:
    """True when the payload hashes to the digest journaled at its freeze (a reservation,
    without a payload, has nothing to check). With no freeze entry live, the one in the sealed
    archive under `archive_dir` (or read through `archived`, shared by a walk) is the record."""
    if payload is None:
        return True
    digest = recorded_digest(conn, document_id)
    if digest is None and archived is None and archive_dir is not None:
        archived = ArchivedFreezes(conn, archive_dir)
    if digest is None and archived is not None and not _live_freeze(conn, document_id):
        digest = archived.digest(document_id)
    return digest == hashlib.sha256(payload).hexdigest()


def _live_freeze(conn: sqlite3.Connection, document_id: int) -> bool:
    """A freeze entry is still live (its detail unreadable or without a digest): that entry is
    the record, and an archived one does not stand in for it."""
    return conn.execute(_RECORDED_DIGEST, (document_id,)).fetchone() is not None


def recorded_digest(conn: sqlite3.Connection, document_id: int) -> str | None:
    """The payload's SHA-256 its last freeze entry recorded (None: none recorded, or the
    entry's detail no longer reads)."""
    for row in conn.execute(_RECORDED_DIGEST, (document_id,)):
        packed = row["detail_packed"]
        try:
            text = row["detail"] if packed is None else unpack_detail(bytes(packed))
            digest = json.loads(text).get("payload_sha256")
        except (PackedDataDamaged, ValueError, AttributeError):
            return None
        if digest is not None:
            return str(digest)
    return None


def altered_payloads(
    conn: sqlite3.Connection,
    *,
    states: Iterable[str] | None = UNSENT_STATES,
    archive_dir: Path | None = None,
) -> list[int]:
    """Ids of documents whose payload no longer matches its journal record (or no longer
    unpacks). `states=None` walks every document (the doctor); the default, the unsent ones the
    sync would send (status, on every call: a bounded set read through the state index).
    `archive_dir`: where a freeze entry moved to the archive is looked up (each batch read at
    most once per walk, and only for a document without a live freeze entry)."""
    archived = None if archive_dir is None else ArchivedFreezes(conn, archive_dir)
    if states is None:
        rows = conn.execute(
            "SELECT id, payload, packed, pack_dict, pack_signature FROM documents "
            "WHERE payload IS NOT NULL"
        )
    else:
        rows = conn.execute(
            "SELECT id, payload, packed, pack_dict, pack_signature FROM documents "
            "WHERE state IN (SELECT value FROM json_each(?)) AND payload IS NOT NULL",
            (json.dumps(list(states)),),
        )
    altered = []
    # Each dictionary read from disk once per walk (not from the connection's copy: damage on
    # disk must show now, not after the next restart).
    packings: dict[tuple[int, int | None], Packing] = {}
    for row in rows:
        key = (row["packed"], row["pack_dict"])
        try:
            if key not in packings:
                packings[key] = packing_of(conn, *key, cached=False)
            context = signature_context(conn, row["pack_signature"])
            payload = unpack(row["payload"], packings[key], context=context)
        except PackedDataDamaged:
            altered.append(row["id"])
            continue
        if not payload_intact(conn, row["id"], payload, archived=archived):
            altered.append(row["id"])
    return altered
