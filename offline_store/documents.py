"""Fiscal documents: the durable write-ahead record and its state machine.

Lifecycle: `reserved → pending → accepted` online, `pending → delayed(1|2) → accepted` offline,
`pending|delayed → rejected`, `reserved → void`. Every change checks its from-state
(`InvalidTransition`), stamps `updated_at` and appends a journal entry in the caller's
transaction; nothing here commits.

Numbering API: `insert_document(conn, series, build, now=...)` takes the next gap-free number of
`series`, calls `build(number)` to get the content that depends on it (UID, internal id, frozen
payload) and inserts the row, all in the caller's transaction. If `build` raises, nothing has
been written, so no number is lost. A row inserted with `payload=None` is a card reservation
(`reserved`); `freeze_payload` later fixes its payload and makes it `pending`.

Storage: the request and the payload are kept packed (`packing.py`, `packed = 1`), with the
newest dictionary learned from the register's own receipts (`dictionaries.py`, `pack_dict`);
readers get the original bytes back in `StoredDocument`. Rows written by schema 1 are packed by
`compact_slice`, a few hundred per call, from the daemon's maintenance job.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from offline_store.columns import (
    digest_from_db,
    digest_to_db,
    money_from_db,
    money_to_db,
    optional_time_from_db,
    optional_time_to_db,
    time_from_db,
    time_to_db,
)
from offline_store.database import StoreConnection, UnpackedMemo, require_transaction
from offline_store.dictionaries import current_packing, packing_of
from offline_store.errors import NotFound, PackedDataDamaged
from offline_store.journal import append_journal
from offline_store.numbering import allocate_number
from offline_store.packing import CURRENT, Packing, pack, unpack
from offline_store.rows import check_transition, write_one
from offline_store.signatures import signature_context


class DocumentKind(StrEnum):
    """Which provider endpoint the document goes to."""

    RECEIPT = "receipt"  # 11.1 / 11.4 through /Invoice/json
    POS_RECEIPT = "pos_receipt"  # 8.4 / 8.5 through /Receipt


class DocumentState(StrEnum):
    """Where a document is in its lifecycle."""

    RESERVED = "reserved"
    PENDING = "pending"
    DELAYED = "delayed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    VOID = "void"


_SENDABLE = frozenset({DocumentState.PENDING, DocumentState.DELAYED})
_RESERVED = frozenset({DocumentState.RESERVED})


@dataclass(frozen=True)
class NewDocument:
    """What the caller builds once the number is known; `payload=None` makes a reservation."""

    request_id: str
    request_hash: str
    kind: DocumentKind
    type_code: str
    issued_at: datetime
    uid: str
    internal_id: str
    request_json: str
    total_amount: Decimal
    payload: bytes | None = None
    reserved_until: datetime | None = None


@dataclass(frozen=True)
class StoredDocument:
    """A `documents` row with Python types."""

    id: int
    request_id: str
    request_hash: str
    kind: DocumentKind
    type_code: str
    series: str
    number: int
    issued_at: datetime
    uid: str
    internal_id: str
    request_json: str
    payload: bytes | None
    total_amount: Decimal
    state: DocumentState
    delayed_code: int
    due_at: datetime | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    mark: int | None
    mark_unknown: bool
    authentication_code: str | None
    qr_url: str | None
    offline_qr_url: str | None
    reserved_until: datetime | None
    created_at: datetime
    updated_at: datetime
    # How the row is stored (packing.py, dictionaries.py); the fields above are unpacked.
    codec: int = CURRENT
    pack_dict: int | None = None
    pack_signature: int | None = None


def insert_document(
    conn: sqlite3.Connection,
    series: str,
    build: Callable[[int], NewDocument],
    *,
    now: datetime,
) -> StoredDocument:
    """Number, build and insert a document; `reserved` without payload, else `pending`."""
    require_transaction(conn)
    number = allocate_number(conn, series)
    new = build(number)
    if new.payload is not None and new.reserved_until is not None:
        raise ValueError("only a reservation (payload=None) has reserved_until")
    state = DocumentState.RESERVED if new.payload is None else DocumentState.PENDING
    stamp = time_to_db(now)
    packing = current_packing(conn)
    packed_payload = None if new.payload is None else pack(new.payload, packing)
    packed_request = _pack_request(new.request_json, new.payload, packing)
    _remember_unpacked(
        conn,
        (packing.codec, packing.dictionary_id, b"", packed_payload, packed_request),
        (new.request_json, new.payload),
    )
    inserted = _returning(
        conn,
        "INSERT INTO documents (id, request_id, request_hash, request_digest, kind, type_code, "
        "series, number, issued_at, uid, internal_id, request_json, payload, total_amount, state, "
        "reserved_until, created_at, updated_at, packed, pack_dict, request_packed) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        (
            _next_document_id(conn),
            new.request_id,
            *digest_to_db(new.request_hash),
            DocumentKind(new.kind).value,
            new.type_code,
            series,
            number,
            time_to_db(new.issued_at),
            new.uid,
            new.internal_id,
            packed_payload,
            money_to_db(new.total_amount),
            state.value,
            optional_time_to_db(new.reserved_until),
            "" if stamp == time_to_db(new.issued_at) else stamp,
            stamp,
            packing.codec,
            packing.dictionary_id,
            packed_request,
        ),
    )
    # The row holds the request id, series, number, UID and amount; the journal keeps what the
    # row cannot prove by itself: the hash of the bytes frozen for the provider.
    detail: dict[str, Any] = {}
    if new.payload is not None:
        detail["payload_sha256"] = hashlib.sha256(new.payload).hexdigest()
    append_journal(conn, f"document.{state.value}", detail, document_id=inserted.id, at=now)
    return inserted


def _next_document_id(conn: sqlite3.Connection) -> int:
    """Past every id ever given, live or archived. SQLite's own choice (highest live id + 1)
    gives an archived receipt's id again once the newest rows have moved to the archive, and
    a till keeps receipt ids. Two index lookups, in one statement."""
    highest = conn.execute(
        "SELECT max(coalesce((SELECT max(id) FROM documents), 0), "
        "coalesce((SELECT max(last_id) FROM archive_batches), 0))"
    ).fetchone()[0]
    return int(highest) + 1


def freeze_payload(
    conn: sqlite3.Connection,
    document_id: int,
    payload: bytes,
    *,
    now: datetime,
    signature_id: int | None = None,
) -> StoredDocument:
    """reserved → pending: fix the exact bytes that will be sent, before any network call.
    `signature_id`: the card signature the payload carries, which it is packed against (the
    signature row must stay as long as the document: both leave together, to the archive)."""
    before = _begin_change(conn, document_id, _RESERVED, "freeze_payload")
    packing = _packing(conn, before)
    context = signature_context(conn, signature_id)
    packed_payload = pack(payload, packing, context=context)
    request_columns = _request_columns(before.request_json, payload, packing)
    _remember_unpacked(
        conn,
        (packing.codec, packing.dictionary_id, context, packed_payload, request_columns[1]),
        (before.request_json, payload),
    )
    after = _returning(
        conn,
        "UPDATE documents SET payload = ?, request_json = ?, request_packed = ?, "
        "pack_signature = ?, state = 'pending', reserved_until = NULL, updated_at = ? "
        "WHERE id = ? RETURNING *",
        (
            packed_payload,
            *request_columns,
            signature_id,
            time_to_db(now),
            document_id,
        ),
    )
    detail = {"payload_sha256": hashlib.sha256(payload).hexdigest()}
    return _finish_change(conn, before, after, "document.pending", detail, now)


def mark_accepted(
    conn: sqlite3.Connection,
    document_id: int,
    *,
    mark: int | None,
    authentication_code: str | None,
    qr_url: str | None,
    now: datetime,
) -> StoredDocument:
    """pending|delayed → accepted; `mark=None` (duplicate answer without MARK) sets mark_unknown."""
    before = _state_before(conn, document_id, _SENDABLE, "mark_accepted")
    after = _returning(
        conn,
        "UPDATE documents SET state = 'accepted', mark = ?, mark_unknown = ?, "
        "authentication_code = ?, qr_url = ?, next_attempt_at = NULL, last_error = NULL, "
        "updated_at = ? WHERE id = ? RETURNING *",
        (mark, int(mark is None), authentication_code, qr_url, time_to_db(now), document_id),
    )
    return _finish_change(conn, before, after, "document.accepted", {}, now)


def mark_delayed(
    conn: sqlite3.Connection,
    document_id: int,
    *,
    code: int,
    due_at: datetime,
    next_attempt_at: datetime | None,
    error: str,
    now: datetime,
    offline_qr_url: str | None = None,
) -> StoredDocument:
    """pending|delayed → delayed with IsDelayedCode 1 (provider) or 2 (AADE); counts an attempt.

    `offline_qr_url` is the offline (TransmissionFailure) QR printed on the receipt; the first
    one recorded stays, because that is the one on the paper."""
    if code not in (1, 2):
        raise ValueError(f"IsDelayedCode must be 1 or 2, got {code}")
    before = _begin_change(conn, document_id, _SENDABLE, "mark_delayed")
    after = _returning(
        conn,
        "UPDATE documents SET state = 'delayed', delayed_code = ?, due_at = ?, "
        "attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ?, "
        "offline_qr_url = COALESCE(offline_qr_url, ?) WHERE id = ? RETURNING *",
        (
            code,
            time_to_db(due_at),
            optional_time_to_db(next_attempt_at),
            error,
            time_to_db(now),
            offline_qr_url,
            document_id,
        ),
    )
    detail: dict[str, Any] = {
        "code": code,
        "due_at": time_to_db(due_at),
        "next_attempt_at": optional_time_to_db(next_attempt_at),
        "error": error,
    }
    if before.offline_qr_url is None and offline_qr_url is not None:
        detail["offline_qr_url"] = offline_qr_url
    return _finish_change(conn, before, after, "document.delayed", detail, now)


def mark_rejected(
    conn: sqlite3.Connection, document_id: int, *, error: str, now: datetime
) -> StoredDocument:
    """pending|delayed → rejected: the provider refused the data; a person must look at it."""
    before = _state_before(conn, document_id, _SENDABLE, "mark_rejected")
    after = _returning(
        conn,
        "UPDATE documents SET state = 'rejected', next_attempt_at = NULL, last_error = ?, "
        "updated_at = ? WHERE id = ? RETURNING *",
        (error, time_to_db(now), document_id),
    )
    detail = {"error": error}
    return _finish_change(conn, before, after, "document.rejected", detail, now)


def void_reservation(
    conn: sqlite3.Connection, document_id: int, *, reason: str, now: datetime
) -> StoredDocument:
    """reserved → void: the number stays recorded (no gap) but is never sent."""
    before = _state_before(conn, document_id, _RESERVED, "void_reservation")
    after = _returning(
        conn,
        "UPDATE documents SET state = 'void', reserved_until = NULL, last_error = ?, "
        "updated_at = ? WHERE id = ? RETURNING *",
        (reason, time_to_db(now), document_id),
    )
    detail = {"reason": reason}
    return _finish_change(conn, before, after, "document.void", detail, now)


def extend_reservation(
    conn: sqlite3.Connection, document_id: int, *, reserved_until: datetime, now: datetime
) -> StoredDocument:
    """Keep a card reservation alive longer (same request)."""
    before = _state_before(conn, document_id, _RESERVED, "extend_reservation")
    after = _returning(
        conn,
        "UPDATE documents SET reserved_until = ?, updated_at = ? WHERE id = ? RETURNING *",
        (time_to_db(reserved_until), time_to_db(now), document_id),
    )
    detail = {"reserved_until": time_to_db(reserved_until)}
    return _finish_change(conn, before, after, "document.reservation_extended", detail, now)


def take_over_reservation(
    conn: sqlite3.Connection,
    document_id: int,
    *,
    request_id: str,
    request_hash: str,
    request_json: str,
    total_amount: Decimal,
    reserved_until: datetime,
    now: datetime,
) -> StoredDocument:
    """Give an abandoned reservation (and its number and UID) to a new request."""
    before = _begin_change(conn, document_id, _RESERVED, "take_over_reservation")
    after = _returning(
        conn,
        "UPDATE documents SET request_id = ?, request_hash = ?, request_digest = ?, "
        "request_json = ?, request_packed = ?, total_amount = ?, reserved_until = ?, "
        "updated_at = ? WHERE id = ? RETURNING *",
        (
            request_id,
            *digest_to_db(request_hash),
            *_request_columns(request_json, None, _packing(conn, before)),
            money_to_db(total_amount),
            time_to_db(reserved_until),
            time_to_db(now),
            document_id,
        ),
    )
    detail = {"previous_request_id": before.request_id}
    return _finish_change(conn, before, after, "document.taken_over", detail, now)


def get_document(conn: sqlite3.Connection, document_id: int) -> StoredDocument | None:
    """One document by id."""
    row = conn.execute("SELECT * FROM documents WHERE id = ?", (document_id,)).fetchone()
    return None if row is None else _document_from_row(conn, row)


def get_by_request_id(conn: sqlite3.Connection, request_id: str) -> StoredDocument | None:
    """The document a POS request created, for idempotent replays."""
    row = conn.execute("SELECT * FROM documents WHERE request_id = ?", (request_id,)).fetchone()
    return None if row is None else _document_from_row(conn, row)


def get_by_mark(conn: sqlite3.Connection, mark: int) -> StoredDocument | None:
    """The document the provider gave this MARK (an 8.4 an 11.1 is connected to). Not indexed:
    it runs once per connected MARK, on the till's path only for such receipts."""
    row = conn.execute("SELECT * FROM documents WHERE mark = ?", (mark,)).fetchone()
    return None if row is None else _document_from_row(conn, row)


def issued_after(
    conn: sqlite3.Connection, *, after_id: int, type_code: str
) -> list[StoredDocument]:
    """Documents of `type_code` issued after document `after_id` that count (not reserved, void
    or rejected): the returns that may name it. A rowid range from `after_id`, so it reads the
    documents issued since, few for the recent receipt a return names."""
    rows = conn.execute(
        "SELECT * FROM documents WHERE id > ? AND type_code = ? "
        "AND state NOT IN ('reserved', 'void', 'rejected') ORDER BY id",
        (after_id, type_code),
    )
    return [_document_from_row(conn, row) for row in rows]


def list_documents(
    conn: sqlite3.Connection,
    *,
    state: DocumentState | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[StoredDocument]:
    """Newest first, optionally one state only."""
    if state is None:
        rows = conn.execute(
            "SELECT * FROM documents ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset)
        )
    else:
        rows = conn.execute(
            "SELECT * FROM documents WHERE state = ? ORDER BY id DESC LIMIT ? OFFSET ?",
            (DocumentState(state).value, limit, offset),
        )
    return [_document_from_row(conn, row) for row in rows]


def document_ids_due(conn: sqlite3.Connection, now: datetime, limit: int) -> list[int]:
    """Pending or delayed documents whose next attempt time has come, oldest first.

    Ids only: the sync reads each document when its turn comes. Reading a page of 200 whole
    documents (payloads included) held the event loop for ~10 ms, every call in flight waiting.
    """
    rows = conn.execute(
        "SELECT id FROM documents WHERE state IN ('pending', 'delayed') "
        "AND (next_attempt_at IS NULL OR julianday(next_attempt_at) <= julianday(?)) "
        "ORDER BY id LIMIT ?",
        (time_to_db(now), limit),
    )
    return [row[0] for row in rows]


def unsent_document_ids(conn: sqlite3.Connection) -> list[int]:
    """Every `pending` document, oldest first: re-sent after a restart, whatever their timers."""
    rows = conn.execute("SELECT id FROM documents WHERE state = 'pending' ORDER BY id")
    return [row[0] for row in rows]


def unsent_ids_of_types(conn: sqlite3.Connection, type_codes: Iterable[str]) -> list[int]:
    """Pending or delayed documents of these types, oldest first (a bounded set: the backlog)."""
    rows = conn.execute(
        "SELECT id FROM documents WHERE state IN ('pending', 'delayed') "
        "AND type_code IN (SELECT value FROM json_each(?)) ORDER BY id",
        (json.dumps(list(type_codes)),),
    )
    return [row[0] for row in rows]


def abandoned_reservations(
    conn: sqlite3.Connection, *, series: str, before: datetime
) -> list[StoredDocument]:
    """Reservations of `series` that expired before `before` (lowest number first).

    `+series` keeps the planner off the (series, number) index, which would walk every
    document of the series on every receipt; the (state, id) index finds the few reservations.
    """
    rows = conn.execute(
        "SELECT * FROM documents WHERE state = 'reserved' AND +series = ? "
        "AND (reserved_until IS NULL OR julianday(reserved_until) < julianday(?)) "
        "ORDER BY number",
        (series, time_to_db(before)),
    )
    return [_document_from_row(conn, row) for row in rows]


def compact_slice(conn: sqlite3.Connection, *, limit: int = 500) -> int:
    """Pack up to `limit` rows written by schema 1 (oldest first); returns how many.

    Inside the caller's transaction. The payload's bytes do not change, only their storage: the
    trigger on `payload` allows exactly this one rewrite (packed 0 → 1), and the journal's
    `payload_sha256` still matches the unpacked bytes."""
    require_transaction(conn)
    rows = conn.execute(
        "SELECT id, request_json, payload FROM documents WHERE packed = 0 ORDER BY id LIMIT ?",
        (limit,),
    ).fetchall()
    packing = current_packing(conn)
    for row in rows:
        payload = row["payload"]
        conn.execute(
            "UPDATE documents SET packed = ?, pack_dict = ?, payload = ?, request_json = '', "
            "request_packed = ? WHERE id = ? AND packed = 0",
            (
                packing.codec,
                packing.dictionary_id,
                None if payload is None else pack(payload, packing),
                _pack_request(row["request_json"], payload, packing),
                row["id"],
            ),
        )
    return len(rows)


def unpacked_count(conn: sqlite3.Connection) -> int:
    """Rows still waiting for `compact_slice` (a partial index keeps this cheap)."""
    count: int = conn.execute("SELECT count(*) FROM documents WHERE packed = 0").fetchone()[0]
    return count


def _pack_request(request_json: str, payload: bytes | None, packing: Packing) -> bytes:
    """The request is packed against its payload (it repeats the lines and amounts), so it is
    repacked whenever the payload is set (`freeze_payload`)."""
    return pack(request_json.encode("utf-8"), packing, context=payload or b"")


def _request_columns(
    request_json: str, payload: bytes | None, packing: Packing
) -> tuple[str, bytes | None]:
    """(`request_json`, `request_packed`) as stored under `packing`."""
    if packing.codec:
        return "", _pack_request(request_json, payload, packing)
    return request_json, None


def _packing(conn: sqlite3.Connection, doc: StoredDocument) -> Packing:
    """How `doc` is packed: a change keeps its row's packing (the trigger on `pack_dict`)."""
    return packing_of(conn, doc.codec, doc.pack_dict)


@dataclass(frozen=True)
class StateBefore:
    """A document's state before a change that needs nothing else of the old row."""

    id: int
    state: DocumentState


def _begin_change(
    conn: sqlite3.Connection,
    document_id: int,
    allowed: frozenset[DocumentState],
    action: str,
) -> StoredDocument:
    """The whole row before a change that reads more of it than its state."""
    _state_before(conn, document_id, allowed, action)
    current = get_document(conn, document_id)
    assert current is not None  # read a moment ago in this transaction
    return current


def _state_before(
    conn: sqlite3.Connection,
    document_id: int,
    allowed: frozenset[DocumentState],
    action: str,
) -> StateBefore:
    """The state only (one indexed column, nothing unpacked: a sale's accept runs this)."""
    require_transaction(conn)
    row = conn.execute("SELECT state FROM documents WHERE id = ?", (document_id,)).fetchone()
    if row is None:
        raise NotFound(f"document {document_id} does not exist")
    state = DocumentState(row[0])
    check_transition(action, f"document {document_id}", state, allowed)
    return StateBefore(document_id, state)


def _finish_change(
    conn: sqlite3.Connection,
    before: StoredDocument | StateBefore,
    after: StoredDocument,
    event: str,
    detail: dict[str, Any],
    now: datetime,
) -> StoredDocument:
    """Journal the change: the state it left, the state it entered unless the event names it
    (`document.<state>`), and `detail`, which holds only what the row does not (the row holds
    the new values; a card sale's nine entries were 1.4 KB, half of it copies of the row)."""
    full: dict[str, Any] = {"from": before.state.value}
    if event != f"document.{after.state.value}":
        full["to"] = after.state.value
    full.update(detail)
    append_journal(conn, event, full, document_id=before.id, at=now)
    return after


def _returning(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> StoredDocument:
    return write_one(conn, sql, params, lambda row: _document_from_row(conn, row))


def stored_request_and_payload(
    conn: sqlite3.Connection, row: sqlite3.Row | Mapping[str, Any]
) -> tuple[str, bytes | None]:
    """The request text and the payload of a `documents` row as written, whatever its packing
    (a row needs the columns `packed`, `pack_dict`, `pack_signature`, `payload`,
    `request_packed`, `request_json`, `id`).

    A sale reads its row back after the insert, the accept and the print job; the connection
    remembers the last documents it packed or unpacked (`StoreConnection.unpacked_documents`)
    by everything their unpacking reads: the packing, the signature row's bytes a card payload
    is packed against, and the packed bytes. So each is unpacked once, and a byte changed on
    disk is another key, never an answer from memory."""
    packing = packing_of(conn, row["packed"], row["pack_dict"])
    context = signature_context(conn, row["pack_signature"])
    key = (row["packed"], row["pack_dict"], context, row["payload"], row["request_packed"])
    memo = _unpacked_memo(conn)
    known = memo.get(key) if memo is not None and packing.codec else None
    if known is not None:
        return known
    payload = None if row["payload"] is None else unpack(row["payload"], packing, context=context)
    try:
        request = (
            unpack(row["request_packed"], packing, context=payload or b"").decode("utf-8")
            if packing.codec
            else row["request_json"]
        )
    except UnicodeDecodeError as exc:
        raise PackedDataDamaged(f"document {row['id']}: its request does not unpack") from exc
    _remember_unpacked(conn, key, (request, payload))
    return request, payload


# Enough for the documents a sale and a sync page touch at once; a few KB each.
_UNPACKED_KEPT = 16


def _unpacked_memo(conn: sqlite3.Connection) -> UnpackedMemo | None:
    """The store connection's memo of unpacked documents (None on a plain connection)."""
    return conn.unpacked_documents if isinstance(conn, StoreConnection) else None


def _remember_unpacked(
    conn: sqlite3.Connection, key: tuple[object, ...], unpacked: tuple[str, bytes | None]
) -> None:
    """Keep `unpacked` for `key` (codec, dictionary id, signature context, packed payload,
    packed request), dropping the oldest beyond `_UNPACKED_KEPT`. Only a packed row is kept: a
    raw row reads as it is stored."""
    memo = _unpacked_memo(conn)
    if memo is None or not key[0]:
        return
    memo.pop(key, None)
    memo[key] = unpacked
    if len(memo) > _UNPACKED_KEPT:
        del memo[next(iter(memo))]


def created_at(row: sqlite3.Row | Mapping[str, Any]) -> datetime:
    """When the row was written: `created_at`, or (schema 14) '' when that is `issued_at`, as it
    is for nearly every document (25 bytes a receipt)."""
    return time_from_db(row["created_at"] or row["issued_at"])


def _document_from_row(conn: sqlite3.Connection, stored: sqlite3.Row) -> StoredDocument:
    """A whole `documents` row (`SELECT *`) as a `StoredDocument`. The columns are read from a
    dict of the row: `sqlite3.Row` finds a column by name by comparing it with each name in
    turn (~0.6 µs a read here), and reading the 32 columns that way was most of this
    function's time on every sale (twice a sale); the dict costs ~2 µs."""
    row = dict(zip(stored.keys(), stored, strict=True))
    request, payload = stored_request_and_payload(conn, row)
    return StoredDocument(
        id=row["id"],
        request_id=row["request_id"],
        request_hash=digest_from_db(row["request_hash"], row["request_digest"]),
        kind=DocumentKind(row["kind"]),
        type_code=row["type_code"],
        series=row["series"],
        number=row["number"],
        issued_at=time_from_db(row["issued_at"]),
        uid=row["uid"],
        internal_id=row["internal_id"],
        request_json=request,
        payload=payload,
        total_amount=money_from_db(row["total_amount"]),
        state=DocumentState(row["state"]),
        delayed_code=row["delayed_code"],
        due_at=optional_time_from_db(row["due_at"]),
        attempts=row["attempts"],
        next_attempt_at=optional_time_from_db(row["next_attempt_at"]),
        last_error=row["last_error"],
        mark=row["mark"],
        mark_unknown=bool(row["mark_unknown"]),
        authentication_code=row["authentication_code"],
        qr_url=row["qr_url"],
        offline_qr_url=row["offline_qr_url"],
        reserved_until=optional_time_from_db(row["reserved_until"]),
        created_at=created_at(row),
        updated_at=time_from_db(row["updated_at"]),
        codec=row["packed"],
        pack_dict=row["pack_dict"],
        pack_signature=row["pack_signature"],
    )
