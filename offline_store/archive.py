"""Monthly archive files: accepted, printed receipts leave the live database, sealed.

What moves: documents that are `accepted` (with a MARK), issued before the cutoff, and whose
print jobs are all `printed` (or that had none: e-mail-only delivery), together with their print
jobs, card signatures and idempotency records; and the journal's oldest entries, in sequence,
up to the newest receipt of the batch, never past the freeze of a document still to be sent
(the check before each send reads its SHA-256 there).
Delayed, pending, rejected, reserved, void, unprinted or MARK-unknown documents never move.

A file per month (Athens time): `<archive_dir>/YYYY-MM.jsonl.xz`, JSON Lines in xz. Each
`archive_slice` appends one xz stream (a *batch*: a header line, the documents, the journal
segment) and never rewrites what is there; `xzcat` reads the whole file. xz rather than gzip:
deflate looks back 32 KiB, five receipts, while LZMA2 with a 1 MiB dictionary finds what a
month's receipts repeat (issuer, menu, the card signature in three places): 310 bytes a café
receipt against 600 (about 12 MB more memory while a batch is written). Months archived by an
earlier version are `.jsonl.gz` (gzip members); they stay readable and get their later batches
in the same file and format. Journal lines carry no hash: the chain is recomputed from the previous boundary and must end at the hash recorded for
the batch, which is also in the `archive.sealed` journal entry, so the chain across archive
boundaries is as strong as in the live table (`verify_history`).

Crash-safe order of a batch (each step durable before the next):
1. append the member to the month file and fsync it (and the directory, for a new file; and
   the directory's parent, for a new directory: a name is durable only once its directory is);
2. in ONE transaction: record the batch (`archive_batches`: end offset, SHA-256 of the whole
   file up to it, the journal boundary), append `archive.sealed` to the journal, delete the
   batch's rows and journal entries from the live tables; commit with fsync.
A crash before 2 commits leaves an unsealed tail on the file while every row is still live: the
next slice cuts the file back to its last sealed length and writes the batch again, so nothing
is lost and nothing is in the archive twice. A crash after the commit leaves the batch done.
Numbering is untouched (`series_counters` never moves back; `archived_numbers` tells the gap
check which numbers are in the archive).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from offline_store.columns import (
    digest_from_db,
    money_from_db,
    optional_time_from_db,
    time_from_db,
    time_to_db,
)
from offline_store.database import transaction
from offline_store.documents import (
    DocumentKind,
    DocumentState,
    StoredDocument,
    _document_from_row,
)
from offline_store.errors import StoreError
from offline_store.journal import (
    GENESIS_HASH,
    JournalEntry,
    append_journal,
    archive_boundary,
    canonical_json,
    entry_hash,
    entry_link,
    journal_entries,
    journal_head,
    verify_journal,
)
from offline_store.requests import answer_text
from offline_store.signatures import stored_texts

ARCHIVE_VERSION = 1
# The tables whose rows hang off a document (`document_id`) and move with it. Each is read and
# deleted by `document_id` for every archived document, so each has an index on it: without one
# a batch scanned the table once per document (a million-receipt history stalled for minutes).
RELATED_TABLES = ("print_jobs", "payment_signatures", "iris_payments", "api_requests")
XZ_SUFFIX = ".jsonl.xz"
GZIP_SUFFIX = ".jsonl.gz"
# LZMA2 at preset 6 with a 1 MiB dictionary: ~12 MB to write a batch, ~2 MB to read one.
_XZ_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 20}]
SEALED_EVENT = "archive.sealed"
_READ_CHUNK = 1 << 20
_SCAN_LIMIT = 20_000


class ArchiveDamaged(StoreError):
    """An archive file is shorter than sealed, or its rows do not match the journal."""


@dataclass(frozen=True)
class ArchiveBatch:
    """One sealed append to a month file: bytes `offset`..`bytes` of `file`."""

    id: int
    month: str
    file: str
    offset: int
    bytes: int
    sha256: str
    documents: int
    first_id: int | None
    last_id: int | None
    journal_last_seq: int
    journal_last_hash: str
    sealed_at: datetime


@dataclass(frozen=True)
class ArchiveMonth:
    """A month file as `pos-agent archive list` shows it."""

    month: str
    file: str
    batches: int
    documents: int
    bytes: int
    sha256: str
    last_sealed_at: datetime


@dataclass(frozen=True)
class HistoryCheck:
    """`verify_history`: the archive files and the live journal as one chain."""

    ok: bool
    batches: int
    archived_documents: int
    journal_entries: int
    problem: str | None = None


def archive_cutoff(now: datetime, live_days: int) -> datetime:
    """Documents issued before this stay no longer live: midnight starting the month that
    holds `now - live_days` (in `now`'s zone), so whole months move and with `live_days` ≥ 31
    the current and the previous month always stay live."""
    day = now - timedelta(days=live_days)
    return day.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def archive_slice(
    conn: sqlite3.Connection,
    archive_dir: Path,
    *,
    cutoff: datetime,
    now: datetime,
    max_documents: int = 2000,
    after_write: Callable[[], None] | None = None,
) -> ArchiveBatch | None:
    """Move one batch (≤ `max_documents` of one month) to the archive; None when nothing is due.

    `after_write` runs between the two steps of the module docstring (tests simulate a crash
    there)."""
    docs = _next_batch(conn, cutoff, max_documents)
    if not docs:
        return None
    month = docs[0]["issued_at"][:7]
    name, offset = _month_file(conn, month)
    path = archive_dir / name
    boundary_seq, boundary_hash = archive_boundary(conn)
    last_issued = max(time_from_db(d["issued_at"]) for d in docs)
    last_seq = _last_seq_before(conn, last_issued, boundary_seq)
    unsent_freeze = _first_unsent_freeze(conn)
    if unsent_freeze is not None:
        last_seq = max(boundary_seq, min(last_seq, unsent_freeze - 1))
    journal_last = _sealed_at_or_before(conn, last_seq, boundary_seq)
    journal_rows = list(journal_entries(conn, after=boundary_seq, upto=journal_last))
    journal_hash = _check_segment(journal_rows, boundary_seq, boundary_hash)
    ids = [d["id"] for d in docs]
    records = [_document_record(conn, d) for d in docs]
    header = {
        "type": "batch",
        "version": ARCHIVE_VERSION,
        "month": month,
        "documents": len(docs),
        "first_id": min(ids),
        "last_id": max(ids),
        "journal_after_seq": boundary_seq,
        "journal_last_seq": journal_last,
    }
    _make_durable_dir(archive_dir)
    end = _append_member(path, offset, header, records, journal_rows)
    digest = _file_sha256(path, end)
    if after_write is not None:
        after_write()
    with transaction(conn):
        batch_id = conn.execute(
            "INSERT INTO archive_batches (month, file, bytes, sha256, documents, first_id, "
            "last_id, journal_last_seq, journal_last_hash, sealed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                month,
                name,
                end,
                digest,
                len(docs),
                min(ids),
                max(ids),
                journal_last,
                journal_hash,
                time_to_db(now),
            ),
        ).fetchone()[0]
        conn.executemany(
            "INSERT INTO archived_numbers (batch_id, series, first_number, last_number) "
            "VALUES (?, ?, ?, ?)",
            [(batch_id, *run) for run in _number_runs(docs)],
        )
        append_journal(
            conn,
            SEALED_EVENT,
            {
                "batch": batch_id,
                "month": month,
                "file": name,
                "offset": offset,
                "bytes": end,
                "sha256": digest,
                "documents": len(docs),
                "first_id": min(ids),
                "last_id": max(ids),
                "journal_last_seq": journal_last,
                "journal_last_hash": journal_hash,
            },
            document_id=None,
            at=now,
        )
        marks = ",".join("?" * len(ids))
        for table in RELATED_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE document_id IN ({marks})", ids)  # noqa: S608
        conn.execute(f"DELETE FROM documents WHERE id IN ({marks})", ids)  # noqa: S608
        conn.execute("DELETE FROM journal WHERE seq > ? AND seq <= ?", (boundary_seq, journal_last))
    # Through sqlite3_exec (executescript), which steps it to the end: `execute` steps once and
    # frees a single page. The file shrinks by what the batch freed.
    conn.executescript("PRAGMA incremental_vacuum;")
    return ArchiveBatch(
        batch_id,
        month,
        name,
        offset,
        end,
        digest,
        len(docs),
        min(ids),
        max(ids),
        journal_last,
        journal_hash,
        now,
    )


def archive_batches(conn: sqlite3.Connection) -> list[ArchiveBatch]:
    """Every sealed batch, oldest first (one row per batch: a few hundred for years)."""
    batches: list[ArchiveBatch] = []
    offsets: dict[str, int] = {}
    for row in conn.execute("SELECT * FROM archive_batches ORDER BY id"):
        offset = offsets.get(row["file"], 0)
        offsets[row["file"]] = row["bytes"]
        batches.append(
            ArchiveBatch(
                id=row["id"],
                month=row["month"],
                file=row["file"],
                offset=offset,
                bytes=row["bytes"],
                sha256=row["sha256"],
                documents=row["documents"],
                first_id=row["first_id"],
                last_id=row["last_id"],
                journal_last_seq=row["journal_last_seq"],
                journal_last_hash=row["journal_last_hash"],
                sealed_at=time_from_db(row["sealed_at"]),
            )
        )
    return batches


def archive_months(conn: sqlite3.Connection) -> list[ArchiveMonth]:
    """One line per month file: documents, sealed size and the SHA-256 of its last seal."""
    months: dict[str, ArchiveMonth] = {}
    for batch in archive_batches(conn):
        before = months.get(batch.month)
        months[batch.month] = ArchiveMonth(
            month=batch.month,
            file=batch.file,
            batches=(before.batches if before else 0) + 1,
            documents=(before.documents if before else 0) + batch.documents,
            bytes=batch.bytes,
            sha256=batch.sha256,
            last_sealed_at=batch.sealed_at,
        )
    return sorted(months.values(), key=lambda m: m.month)


def archived_documents(
    conn: sqlite3.Connection, archive_dir: Path, month: str
) -> Iterator[StoredDocument]:
    """The documents archived for `month`, in batch order, after checking each batch's bytes
    against its seal (an altered file is refused, not exported)."""
    for batch in archive_batches(conn):
        if batch.month != month:
            continue
        for record in _read_batch(archive_dir, batch, check=True):
            if record["type"] == "document":
                yield _stored_document(record)


def find_archived(
    conn: sqlite3.Connection, archive_dir: Path, document_id: int
) -> StoredDocument | None:
    """An archived document by id (for a reprint); reads only the batches whose id range holds
    it."""
    rows = conn.execute(
        "SELECT id FROM archive_batches WHERE ? BETWEEN first_id AND last_id ORDER BY id",
        (document_id,),
    ).fetchall()
    wanted = {row[0] for row in rows}
    for batch in archive_batches(conn) if wanted else []:
        if batch.id not in wanted:
            continue
        for record in _read_batch(archive_dir, batch, check=True):
            if record["type"] == "document" and record["id"] == document_id:
                return _stored_document(record)
    return None


def verify_history(conn: sqlite3.Connection, archive_dir: Path) -> HistoryCheck:
    """The whole journal, archived and live, as one chain, and every archive file against the
    seals in it: each batch's bytes hash to the recorded SHA-256, its journal segment continues
    the chain and ends at the recorded hash, and every batch has its `archive.sealed` entry in
    the chain (and every such entry its batch)."""
    batches = archive_batches(conn)
    seq, last_hash = 0, GENESIS_HASH
    seals: dict[int, dict[str, Any]] = {}
    documents = 0
    for batch in batches:
        try:
            records = list(_read_batch(archive_dir, batch, check=True))
        except (OSError, ArchiveDamaged, ValueError) as exc:
            return HistoryCheck(False, len(batches), documents, seq, f"batch {batch.id}: {exc}")
        for record in records:
            if record["type"] == "document":
                documents += 1
            elif record["type"] == "journal":
                seq += 1
                if record["seq"] != seq:
                    return _broken(batches, documents, seq, f"journal entry {seq} missing")
                last_hash = entry_hash(
                    last_hash,
                    seq=seq,
                    at=record["at"],
                    document_id=record["document_id"],
                    event=record["event"],
                    detail=record["detail"],
                )
                if record["event"] == SEALED_EVENT:
                    seals[record["detail"]["batch"]] = record["detail"]
        if (seq, last_hash) != (batch.journal_last_seq, batch.journal_last_hash):
            return _broken(batches, documents, seq, f"batch {batch.id}: journal chain differs")
    live = verify_journal(conn)
    if not live.ok:
        return _broken(batches, documents, live.entries, f"journal entry {live.first_bad_seq}")
    for row in conn.execute(
        "SELECT detail FROM journal WHERE event = ? ORDER BY seq", (SEALED_EVENT,)
    ):
        detail = json.loads(row[0])
        seals[detail["batch"]] = detail
    for batch in batches:
        seal = seals.pop(batch.id, None)
        if seal is None or (seal["sha256"], seal["bytes"]) != (batch.sha256, batch.bytes):
            return _broken(batches, documents, live.entries, f"batch {batch.id}: seal differs")
    if seals:
        return _broken(batches, documents, live.entries, f"sealed batches missing: {seals}")
    return HistoryCheck(True, len(batches), documents, live.entries)


def document_record(doc: StoredDocument) -> dict[str, Any]:
    """An archived document as exported (the accountant's view of one receipt)."""
    return {
        "id": doc.id,
        "series": doc.series,
        "number": doc.number,
        "type_code": doc.type_code,
        "issued_at": time_to_db(doc.issued_at),
        "uid": doc.uid,
        "mark": doc.mark,
        "authentication_code": doc.authentication_code,
        "total_amount": format(doc.total_amount, "f"),
        "qr_url": doc.qr_url,
        "delayed_code": doc.delayed_code,
        "payload": json.loads(doc.payload or b"null"),
    }


# -- the batch -------------------------------------------------------------------------------


def _next_batch(conn: sqlite3.Connection, cutoff: datetime, limit: int) -> list[sqlite3.Row]:
    """The oldest archivable documents of one month, in id order.

    Ids follow issue time, so the walk stops at the first archivable document of a later
    month. Rows that cannot move (unsettled, or issued after the cutoff: e.g. receipts issued
    before an old history was imported) are stepped over, at most `_SCAN_LIMIT` per call, so
    a slice stays bounded even when nothing is due."""
    chosen: list[sqlite3.Row] = []
    month = None
    for row in conn.execute("SELECT * FROM documents ORDER BY id LIMIT ?", (_SCAN_LIMIT,)):
        if time_from_db(row["issued_at"]) >= cutoff or not _archivable(conn, row):
            continue
        if month is None:
            month = row["issued_at"][:7]
        elif row["issued_at"][:7] != month:
            break
        chosen.append(row)
        if len(chosen) == limit:
            break
    return chosen


def _archivable(conn: sqlite3.Connection, row: sqlite3.Row) -> bool:
    if row["state"] != DocumentState.ACCEPTED or row["mark_unknown"] or row["mark"] is None:
        return False
    unprinted = conn.execute(
        "SELECT 1 FROM print_jobs WHERE document_id = ? AND state != 'printed' LIMIT 1",
        (row["id"],),
    ).fetchone()
    return unprinted is None


def _last_seq_before(conn: sqlite3.Connection, at: datetime, after: int) -> int:
    """The last journal entry written at or before `at` (binary search over seq: entries are
    written in time order), never below `after`."""
    head = journal_head(conn)
    low, high = after, head.seq if head is not None else after
    while low < high:
        middle = (low + high + 1) // 2
        entry = next(journal_entries(conn, after=middle - 1, limit=1), None)
        if entry is not None and entry.time <= at:
            low = middle
        else:
            high = middle - 1
    return low


def _first_unsent_freeze(conn: sqlite3.Connection) -> int | None:
    """The oldest freeze entry of a document still to be sent (pending or delayed): the check
    before each send reads the payload's SHA-256 from it (`payload_intact`), so it and every
    later entry stay live. Through the state index and the freeze entries' partial index."""
    row = conn.execute(
        "SELECT min(j.seq) FROM documents d JOIN journal j ON j.document_id = d.id "
        "AND (j.code = 2 OR j.event = 'document.pending') "
        "WHERE d.state IN ('pending', 'delayed')"
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _sealed_at_or_before(conn: sqlite3.Connection, seq: int, after: int) -> int:
    """The last entry at or before `seq` (after `after`) that keeps its hash, else `after`: a
    segment archived ends where a hash proves every entry in it."""
    row = conn.execute(
        "SELECT seq FROM journal WHERE seq <= ? AND seq > ? "
        "AND (digest IS NOT NULL OR hash != '') ORDER BY seq DESC LIMIT 1",
        (seq, after),
    ).fetchone()
    return int(row[0]) if row is not None else after


def _check_segment(entries: list[JournalEntry], seq: int, prev: str) -> str:
    """Recompute the chain over the entries about to be archived: a damaged chain is never
    sealed into the archive."""
    for entry in entries:
        seq += 1
        link = entry_link(entry, seq, prev)
        if link is None:
            raise ArchiveDamaged(f"journal entry {entry.seq} does not verify; nothing archived")
        prev = link
    if entries and not entries[-1].sealed:
        raise ArchiveDamaged(f"journal entry {entries[-1].seq} keeps no hash; nothing archived")
    return prev


def _related_record(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    """A row of a table that hangs off a document, as text: a remembered answer packed by
    schema 4 or 5 is archived as the text it was (the archive stays readable without this
    code)."""
    record = dict(row)
    if record.pop("response_packed", None) is not None:
        record["response"] = answer_text(conn, row)
    if "body_digest" in record:
        record["body_hash"] = digest_from_db(record["body_hash"], record.pop("body_digest"))
    if "signature_raw" in record:
        with_uid = conn.execute(
            "SELECT ? AS input, ? AS input_uid, ? AS signature, ? AS signature_raw, uid AS "
            "document_uid FROM documents WHERE id = ?",
            (
                record["input"],
                record.pop("input_uid"),
                record["signature"],
                record.pop("signature_raw"),
                record["document_id"],
            ),
        ).fetchone()
        record["input"], record["signature"] = stored_texts(with_uid)
    if record.get("printed_at") == "":
        record["printed_at"] = record["created_at"]
    return record


def _document_record(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    doc = _document_from_row(conn, row)
    related = {
        table: [
            _related_record(conn, r)
            for r in conn.execute(
                f"SELECT * FROM {table} WHERE document_id = ? ORDER BY rowid",  # noqa: S608
                (doc.id,),
            )
        ]
        for table in RELATED_TABLES
    }
    return {
        "type": "document",
        "id": doc.id,
        "request_id": doc.request_id,
        "kind": doc.kind.value,
        "type_code": doc.type_code,
        "series": doc.series,
        "number": doc.number,
        "issued_at": row["issued_at"],
        "uid": doc.uid,
        "internal_id": doc.internal_id,
        "request_json": doc.request_json,
        "payload": (doc.payload or b"").decode("utf-8"),
        "total_amount": row["total_amount"],
        "delayed_code": doc.delayed_code,
        "due_at": row["due_at"],
        "attempts": doc.attempts,
        "mark": doc.mark,
        "authentication_code": doc.authentication_code,
        "qr_url": doc.qr_url,
        "offline_qr_url": doc.offline_qr_url,
        "created_at": row["created_at"] or row["issued_at"],
        "updated_at": row["updated_at"],
        **related,
    }


def _stored_document(record: dict[str, Any]) -> StoredDocument:
    request_json = record["request_json"]
    return StoredDocument(
        id=record["id"],
        request_id=record["request_id"],
        request_hash=hashlib.sha256(request_json.encode("utf-8")).hexdigest(),
        kind=DocumentKind(record["kind"]),
        type_code=record["type_code"],
        series=record["series"],
        number=record["number"],
        issued_at=time_from_db(record["issued_at"]),
        uid=record["uid"],
        internal_id=record["internal_id"],
        request_json=request_json,
        payload=record["payload"].encode("utf-8"),
        total_amount=money_from_db(record["total_amount"]),
        state=DocumentState.ACCEPTED,
        delayed_code=record["delayed_code"],
        due_at=optional_time_from_db(record["due_at"]),
        attempts=record["attempts"],
        next_attempt_at=None,
        last_error=None,
        mark=record["mark"],
        mark_unknown=False,
        authentication_code=record["authentication_code"],
        qr_url=record["qr_url"],
        offline_qr_url=record["offline_qr_url"],
        reserved_until=None,
        created_at=time_from_db(record["created_at"]),
        updated_at=time_from_db(record["updated_at"]),
    )


def _number_runs(docs: list[sqlite3.Row]) -> list[tuple[str, int, int]]:
    """Consecutive numbers per series as (series, first, last) runs."""
    runs: list[tuple[str, int, int]] = []
    for series in sorted({d["series"] for d in docs}):
        numbers = sorted(d["number"] for d in docs if d["series"] == series)
        first = last = numbers[0]
        for number in numbers[1:]:
            if number != last + 1:
                runs.append((series, first, last))
                first = number
            last = number
        runs.append((series, first, last))
    return runs


# -- the file --------------------------------------------------------------------------------


def _month_file(conn: sqlite3.Connection, month: str) -> tuple[str, int]:
    """The month's file and its sealed length: the file its last batch went to (a month begun
    by an earlier version stays gzip), or a new xz file."""
    row = conn.execute(
        "SELECT file, bytes FROM archive_batches WHERE month = ? ORDER BY id DESC LIMIT 1",
        (month,),
    ).fetchone()
    return (f"{month}{XZ_SUFFIX}", 0) if row is None else (str(row[0]), int(row[1]))


def _batch_writer(path: Path, handle: BinaryIO) -> io.BufferedIOBase:
    """One compressed batch appended to `handle`, in the format the file's name says."""
    if path.name.endswith(GZIP_SUFFIX):
        return gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=9, mtime=0)
    return lzma.LZMAFile(handle, "wb", format=lzma.FORMAT_XZ, filters=_XZ_FILTERS)


def _append_member(
    path: Path,
    sealed: int,
    header: dict[str, Any],
    records: list[dict[str, Any]],
    journal_rows: list[JournalEntry],
) -> int:
    """Cut an unsealed tail (a crashed earlier attempt), append one batch (an xz stream, or a
    gzip member in a month begun as gzip), fsync; returns the new length."""
    new_file = not path.exists()
    with path.open("ab") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size < sealed:
            raise ArchiveDamaged(f"{path} is {size} bytes, shorter than its sealed {sealed}")
        if size > sealed:
            handle.truncate(sealed)
            handle.seek(sealed)
        with _batch_writer(path, handle) as member:
            _write_line(member, header)
            for record in records:
                _write_line(member, record)
            for entry in journal_rows:
                _write_line(
                    member,
                    {
                        "type": "journal",
                        "seq": entry.seq,
                        "at": entry.at,
                        "document_id": entry.document_id,
                        "event": entry.event,
                        "detail": json.loads(entry.detail),
                    },
                )
        handle.flush()
        os.fsync(handle.fileno())
        end = handle.tell()
    if new_file:
        _fsync_dir(path.parent)
    return end


def _write_line(member: io.BufferedIOBase, record: dict[str, Any]) -> None:
    member.write(canonical_json(record).encode("utf-8") + b"\n")


def _make_durable_dir(path: Path) -> None:
    """The directory, created if missing with each new name synced in its parent: without it a
    power cut after the seal's commit took back the new directory and every sealed file in it."""
    missing = [directory for directory in (path, *path.parents) if not directory.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        _fsync_dir(created.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_sha256(path: Path, length: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        left = length
        while left:
            chunk = handle.read(min(_READ_CHUNK, left))
            if not chunk:
                raise ArchiveDamaged(f"{path} ends before its sealed length {length}")
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def _read_batch(archive_dir: Path, batch: ArchiveBatch, *, check: bool) -> Iterator[dict[str, Any]]:
    path = archive_dir / batch.file
    if check and _file_sha256(path, batch.bytes) != batch.sha256:
        raise ArchiveDamaged(f"{path}: the first {batch.bytes} bytes differ from their seal")
    with path.open("rb") as handle:
        handle.seek(batch.offset)
        member = handle.read(batch.bytes - batch.offset)
    try:
        data = (
            gzip.decompress(member)
            if batch.file.endswith(GZIP_SUFFIX)
            else lzma.decompress(member, format=lzma.FORMAT_XZ)
        )
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise ArchiveDamaged(f"{path}: batch {batch.id} does not decompress: {exc}") from exc
    for line in data.splitlines():
        yield json.loads(line)


def _broken(batches: list[ArchiveBatch], documents: int, seq: int, problem: str) -> HistoryCheck:
    return HistoryCheck(False, len(batches), documents, seq, problem)
