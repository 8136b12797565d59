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

The files' bytes (compression, append, seal hash, read back) are `offline_store.archive_files`;
a document as a line of them, and back, `offline_store.archive_records`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from offline_store.archive_files import (
    XZ_SUFFIX,
    ArchiveBatch,
    ArchiveDamaged,
    append_member,
    chained_records,
    file_sha256,
    read_batch,
)
from offline_store.archive_records import (
    RELATED_TABLES,
    archived_record,
    document_of_record,
)
from offline_store.columns import time_from_db, time_to_db
from offline_store.database import transaction
from offline_store.documents import DocumentState, StoredDocument
from offline_store.durable_names import make_durable_dir
from offline_store.journal import (
    GENESIS_HASH,
    JournalEntry,
    append_journal,
    archive_boundary,
    entry_link,
    journal_entries,
    journal_head,
    verify_journal,
)

ARCHIVE_VERSION = 1
SEALED_EVENT = "archive.sealed"
_SCAN_LIMIT = 20_000


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


@dataclass(frozen=True)
class _Batch:
    """What one slice moves, fixed before a byte is written: one month's documents and the
    journal segment after the last archived entry (`journal_after_seq`) up to
    `journal_last_seq`, whose chain ends at `journal_last_hash`."""

    month: str
    file: str
    offset: int  # the file's sealed length: where this batch's bytes begin
    documents: list[sqlite3.Row]
    journal_after_seq: int
    journal_rows: list[JournalEntry]
    journal_last_seq: int
    journal_last_hash: str

    @property
    def ids(self) -> list[int]:
        return [d["id"] for d in self.documents]

    def header(self) -> dict[str, Any]:
        return {
            "type": "batch",
            "version": ARCHIVE_VERSION,
            "month": self.month,
            "documents": len(self.documents),
            "first_id": min(self.ids),
            "last_id": max(self.ids),
            "journal_after_seq": self.journal_after_seq,
            "journal_last_seq": self.journal_last_seq,
        }


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
    batch = _plan_batch(conn, docs)
    path = archive_dir / batch.file
    records = [archived_record(conn, d) for d in docs]
    make_durable_dir(archive_dir)
    end = append_member(path, batch.offset, batch.header(), records, batch.journal_rows)
    digest = file_sha256(path, end)
    if after_write is not None:
        after_write()
    with transaction(conn):
        sealed = _seal(conn, batch, end, digest, now)
        _delete_moved(conn, batch)
    # Through sqlite3_exec (executescript), which steps it to the end: `execute` steps once and
    # frees a single page. The file shrinks by what the batch freed.
    conn.executescript("PRAGMA incremental_vacuum;")
    return sealed


def _plan_batch(conn: sqlite3.Connection, docs: list[sqlite3.Row]) -> _Batch:
    """The batch of `docs`: their month's file, and the journal segment that goes with them
    (up to their newest receipt, never past the freeze of a document still to be sent, ending
    at an entry that keeps its hash), its chain checked before anything is written."""
    month = docs[0]["issued_at"][:7]
    name, offset = _month_file(conn, month)
    boundary_seq, boundary_hash = archive_boundary(conn)
    last_issued = max(time_from_db(d["issued_at"]) for d in docs)
    last_seq = _last_seq_before(conn, last_issued, boundary_seq)
    unsent_freeze = _first_unsent_freeze(conn)
    if unsent_freeze is not None:
        last_seq = max(boundary_seq, min(last_seq, unsent_freeze - 1))
    journal_last = _sealed_at_or_before(conn, last_seq, boundary_seq)
    journal_rows = list(journal_entries(conn, after=boundary_seq, upto=journal_last))
    return _Batch(
        month=month,
        file=name,
        offset=offset,
        documents=docs,
        journal_after_seq=boundary_seq,
        journal_rows=journal_rows,
        journal_last_seq=journal_last,
        journal_last_hash=_check_segment(journal_rows, boundary_seq, boundary_hash),
    )


def _seal(
    conn: sqlite3.Connection, batch: _Batch, end: int, digest: str, now: datetime
) -> ArchiveBatch:
    """In the caller's transaction: the written batch recorded (its end offset and the SHA-256
    of the file up to it, the numbers it holds) and its `archive.sealed` journal entry."""
    first_id, last_id = min(batch.ids), max(batch.ids)
    batch_id = conn.execute(
        "INSERT INTO archive_batches (month, file, bytes, sha256, documents, first_id, "
        "last_id, journal_last_seq, journal_last_hash, sealed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            batch.month,
            batch.file,
            end,
            digest,
            len(batch.documents),
            first_id,
            last_id,
            batch.journal_last_seq,
            batch.journal_last_hash,
            time_to_db(now),
        ),
    ).fetchone()[0]
    conn.executemany(
        "INSERT INTO archived_numbers (batch_id, series, first_number, last_number) "
        "VALUES (?, ?, ?, ?)",
        [(batch_id, *run) for run in _number_runs(batch.documents)],
    )
    sealed = ArchiveBatch(
        id=batch_id,
        month=batch.month,
        file=batch.file,
        offset=batch.offset,
        bytes=end,
        sha256=digest,
        documents=len(batch.documents),
        first_id=first_id,
        last_id=last_id,
        journal_last_seq=batch.journal_last_seq,
        journal_last_hash=batch.journal_last_hash,
        sealed_at=now,
    )
    detail = {
        "batch": batch_id,
        "month": sealed.month,
        "file": sealed.file,
        "offset": sealed.offset,
        "bytes": sealed.bytes,
        "sha256": sealed.sha256,
        "documents": sealed.documents,
        "first_id": first_id,
        "last_id": last_id,
        "journal_last_seq": sealed.journal_last_seq,
        "journal_last_hash": sealed.journal_last_hash,
    }
    append_journal(conn, SEALED_EVENT, detail, document_id=None, at=now)
    return sealed


def _delete_moved(conn: sqlite3.Connection, batch: _Batch) -> None:
    """In the sealing transaction: the batch's rows and journal entries leave the live tables."""
    ids = batch.ids
    marks = ",".join("?" * len(ids))
    for table in RELATED_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE document_id IN ({marks})", ids)  # noqa: S608
    conn.execute(f"DELETE FROM documents WHERE id IN ({marks})", ids)  # noqa: S608
    conn.execute(
        "DELETE FROM journal WHERE seq > ? AND seq <= ?",
        (batch.journal_after_seq, batch.journal_last_seq),
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
        for record in read_batch(archive_dir, batch, check=True):
            if record["type"] == "document":
                yield document_of_record(record)


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
        for record in read_batch(archive_dir, batch, check=True):
            if record["type"] == "document" and record["id"] == document_id:
                return document_of_record(record)
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
            for record in chained_records(archive_dir, batch, seq, last_hash):
                if record["type"] == "document":
                    documents += 1
                elif record["type"] == "journal" and record["event"] == SEALED_EVENT:
                    seals[record["detail"]["batch"]] = record["detail"]
        except (OSError, ArchiveDamaged, ValueError) as exc:
            return _broken(batches, documents, seq, str(exc))
        seq, last_hash = batch.journal_last_seq, batch.journal_last_hash
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


def _month_file(conn: sqlite3.Connection, month: str) -> tuple[str, int]:
    """The month's file and its sealed length: the file its last batch went to (a month begun
    by an earlier version stays gzip), or a new xz file."""
    row = conn.execute(
        "SELECT file, bytes FROM archive_batches WHERE month = ? ORDER BY id DESC LIMIT 1",
        (month,),
    ).fetchone()
    return (f"{month}{XZ_SUFFIX}", 0) if row is None else (str(row[0]), int(row[1]))


def _broken(batches: list[ArchiveBatch], documents: int, seq: int, problem: str) -> HistoryCheck:
    return HistoryCheck(False, len(batches), documents, seq, problem)
