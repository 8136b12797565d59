"""Packing dictionaries learned from the register's own receipts (schema 4).

The built-in dictionary (`packing.py`) holds the vocabulary of every provider payload, but not
what makes every payload of *this* register alike: its issuer block (name, ΑΦΜ, tax office,
address), its series, its menu and prices. A sample of the register's newest payloads, appended
to the built-in dictionary, lets deflate refer to all of that: a café receipt's payload went
from ~430 to ~150 bytes, the largest part of a receipt's live cost.

The daemon learns one (`learn_dictionary`), never on the till's path: the first as soon as the
store holds `MIN_DOCUMENTS` payloads (seconds after them: agent/core/maintenance.py
`FirstDictionary`), a full one as soon as the payloads fill `SAMPLE_BYTES` if the first was
shorter, then a new one every `RELEARN_AFTER` as the menu and prices drift. A dictionary
replaced early is always replaced by a full one, which only its age replaces: a register keeps
at most two dictionaries per `RELEARN_AFTER` (in practice two in its first month, then one a
month, 16 KB each), and one more each time its clock is stepped back by more than a day. A dictionary row never changes and is never deleted (triggers), since the
documents packed with it need its bytes to unpack; its SHA-256 is journaled
(`pack.dictionary`). A damaged dictionary shows as payloads that no longer match the journal
(`payload_integrity.py`), never as a wrong receipt sent. New documents are packed with the
newest dictionary and record it in `documents.pack_dict` (NULL: the built-in one alone).
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from offline_store.columns import time_from_db, time_to_db
from offline_store.database import require_transaction
from offline_store.errors import PackedDataDamaged
from offline_store.journal import append_journal
from offline_store.packing import BUILT_IN, RAW, UNPACKED, Packing, unpack
from offline_store.signatures import signature_context

# Deflate's window is 32 KiB, shared by the built-in dictionary (2.3 KB), this sample and the
# context (the request is packed against its payload): half of it for the sample, payloads
# first and a few requests last (a request is packed right after its payload's context, so
# the requests' own keys and defaults are the nearest). Measured on a café history of 30,000
# receipts: payloads 434 → 141 bytes (cash) and 260 (card, the signature is new each time),
# requests 106 → 45.
SAMPLE_BYTES = 16_384
REQUEST_SAMPLE_BYTES = 4_096
MIN_DOCUMENTS = 4
RELEARN_AFTER = timedelta(days=30)
# A dictionary dated further ahead than this was learned under a clock since stepped back (a
# register that started with its clock wrong, a history written before it): it does not hold
# the next one off until the clock catches up with it.
FUTURE_SLACK = timedelta(days=1)
_CANDIDATES = 64
LEARNED_EVENT = "pack.dictionary"
# How a stored request names its customer (`"customer":null` when there is none).
_NAMED_CUSTOMER = b'"customer":{'


@dataclass(frozen=True)
class LearnedDictionary:
    """A dictionary just learned: its id, size, digest and how many payloads it samples."""

    id: int
    bytes: int
    sha256: str
    documents: int


def current_packing(conn: sqlite3.Connection) -> Packing:
    """How a new document is packed: the newest learned dictionary, or the built-in one."""
    newest = conn.execute("SELECT max(id) FROM pack_dictionaries").fetchone()[0]
    return BUILT_IN if newest is None else packing_of(conn, BUILT_IN.codec, newest)


def packing_of(
    conn: sqlite3.Connection, codec: int, dictionary_id: int | None, *, cached: bool = True
) -> Packing:
    """How a stored row was packed (`documents.packed`, `documents.pack_dict`). A store
    connection keeps the dictionaries it read: 16 KB each, read for every document otherwise.
    `cached=False` reads the bytes on disk (the integrity check: damage must show at once)."""
    if codec == RAW:
        return UNPACKED
    if dictionary_id is None:
        return Packing(codec)
    cache: dict[int, bytes] | None = getattr(conn, "learned_dictionaries", None) if cached else None
    learned = cache.get(dictionary_id) if cache is not None else None
    if learned is None:
        row = conn.execute(
            "SELECT sample FROM pack_dictionaries WHERE id = ?", (dictionary_id,)
        ).fetchone()
        if row is None:
            raise PackedDataDamaged(f"packing dictionary {dictionary_id} is missing")
        learned = bytes(row[0])
        if cache is not None:
            cache[dictionary_id] = learned
    return Packing(codec, dictionary_id, learned)


def learning_mark(conn: sqlite3.Connection) -> int | None:
    """What a watcher of the first dictionaries looks at, in two index reads: None once the
    newest dictionary fills `SAMPLE_BYTES` (then only its age makes the next one due, the
    maintenance run's business), else the newest document's id (0: none yet), which moves only
    when a receipt is stored, so the watcher learns again only after new payloads."""
    newest = conn.execute(
        "SELECT length(sample) FROM pack_dictionaries ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if newest is not None and newest[0] >= SAMPLE_BYTES:
        return None
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM documents").fetchone()[0])


def learn_dictionary(conn: sqlite3.Connection, *, now: datetime) -> LearnedDictionary | None:
    """Learn a dictionary from the newest payloads, in the caller's transaction, when there are
    `MIN_DOCUMENTS` payloads to learn from and none is younger than `RELEARN_AFTER` (nor
    dated more than `FUTURE_SLACK` ahead), or the newest is shorter than `SAMPLE_BYTES`
    (learned from a register's first few receipts) and the payloads now fill the sample.

    Bounded: reads at most `_CANDIDATES` rows through the primary key, whatever the history."""
    require_transaction(conn)
    newest = conn.execute(
        "SELECT created_at, length(sample) AS bytes FROM pack_dictionaries ORDER BY id DESC LIMIT 1"
    ).fetchone()
    age = None if newest is None else now - time_from_db(newest["created_at"])
    young = age is not None and -FUTURE_SLACK < age < RELEARN_AFTER
    if young and newest is not None and newest["bytes"] >= SAMPLE_BYTES:
        return None
    sample = _sample(conn)
    if sample is None:
        return None
    data, documents = sample
    if young and len(data) < SAMPLE_BYTES:
        return None  # a short first dictionary gives way only to a full one
    digest = hashlib.sha256(data).hexdigest()
    dictionary_id: int = conn.execute(
        "INSERT INTO pack_dictionaries (sample, sha256, documents, created_at) "
        "VALUES (?, ?, ?, ?) RETURNING id",
        (data, digest, documents, time_to_db(now)),
    ).fetchone()[0]
    append_journal(
        conn,
        LEARNED_EVENT,
        {"dictionary": dictionary_id, "bytes": len(data), "sha256": digest, "documents": documents},
        document_id=None,
        at=now,
    )
    return LearnedDictionary(dictionary_id, len(data), digest, documents)


def _sample(conn: sqlite3.Connection) -> tuple[bytes, int] | None:
    """The newest distinct payloads, then requests, each newest last (deflate reaches the end
    of a dictionary with the shortest distances), `SAMPLE_BYTES` in all; None while there are
    fewer than `MIN_DOCUMENTS` receipts and they do not fill the sample (a register's first
    receipts: a sample of one receipt would fit its lines too closely)."""
    rows = conn.execute(
        "SELECT id, payload, packed, pack_dict, pack_signature, request_packed, request_json "
        "FROM documents "
        "WHERE id > (SELECT coalesce(max(id), 0) FROM documents) - ? AND payload IS NOT NULL "
        "ORDER BY id DESC",
        (_CANDIDATES,),
    ).fetchall()
    payloads: list[bytes] = []
    requests: list[bytes] = []
    size = 0
    for row in rows:
        packing = packing_of(conn, row["packed"], row["pack_dict"])
        try:
            payload = unpack(
                row["payload"], packing, context=signature_context(conn, row["pack_signature"])
            )
            request = (
                unpack(row["request_packed"], packing, context=payload)
                if packing.codec
                else row["request_json"].encode("utf-8")
            )
        except PackedDataDamaged:
            continue  # the integrity check reports it; a damaged row teaches nothing
        # A dictionary outlives the retention (it is never deleted): a customer's name, ΑΦΜ,
        # e-mail or phone must not be kept in one after the receipt went to the archive.
        if _NAMED_CUSTOMER in request or payload in payloads:
            continue
        payloads.append(payload)
        requests.append(request)
        size += len(payload)
        if size >= SAMPLE_BYTES:
            break
    if len(payloads) < MIN_DOCUMENTS and size < SAMPLE_BYTES:
        return None
    tail = b"".join(reversed(requests))[-REQUEST_SAMPLE_BYTES:]
    head = b"".join(reversed(payloads))[-(SAMPLE_BYTES - len(tail)) :]
    return head + tail, len(payloads)
