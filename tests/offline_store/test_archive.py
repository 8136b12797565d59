"""The monthly archive: what moves, what never moves, the seal, and a crash between the steps."""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import sqlite3
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from offline_store import (
    DocumentState,
    altered_payloads,
    archive_batches,
    archive_cutoff,
    archive_files,
    archive_months,
    archive_records,
    archive_slice,
    archived_count,
    archived_documents,
    backlog_summary,
    compare_with_mark,
    current_mark,
    enqueue_print,
    fail_print,
    find_archived,
    get_document,
    insert_document,
    last_numbers,
    learn_dictionary,
    mark_accepted,
    mark_delayed,
    mark_printed,
    mark_printing,
    mark_rejected,
    numbering_gaps,
    payload_intact,
    print_queue_summary,
    remember_request,
    transaction,
    verify_history,
    verify_journal,
    void_reservation,
)
from offline_store import archive as archive_module
from offline_store.archived_freeze import ArchivedFreezes
from offline_store.payload_integrity import recorded_digest
from tests.offline_store.factory import ATHENS_WINTER, builder, open_store

JAN = datetime(2026, 1, 10, 12, 0, tzinfo=ATHENS_WINTER)
FEB = datetime(2026, 2, 10, 12, 0, tzinfo=ATHENS_WINTER)
# On 20 April with 62 live days the cutoff is 1 February: January goes, February stays.
NOW = datetime(2026, 4, 20, 12, 0, tzinfo=ATHENS_WINTER)
CUTOFF = archive_cutoff(NOW, 62)


def _doc(conn: sqlite3.Connection, name: str, at: datetime, *, reserve: bool = False) -> int:
    with transaction(conn):
        doc = insert_document(
            conn,
            "A",
            builder(
                name,
                issued_at=at,
                # Incompressible padding: each payload fills its own pages, which archiving frees.
                payload=None
                if reserve
                else json.dumps({"name": name, "pad": os.urandom(3000).hex()}).encode(),
                reserved_until=at + timedelta(minutes=15) if reserve else None,
            ),
            now=at,
        )
    return doc.id


def _accept(conn: sqlite3.Connection, doc_id: int, at: datetime, *, mark: bool = True) -> None:
    with transaction(conn):
        mark_accepted(
            conn,
            doc_id,
            mark=400_000_000_000_000 + doc_id if mark else None,
            authentication_code="AUTH",
            qr_url="https://q",
            now=at,
        )


def _print(conn: sqlite3.Connection, doc_id: int, at: datetime, *, until: str) -> None:
    with transaction(conn):
        job = enqueue_print(conn, doc_id, '{"layout":1}', copy=False, now=at)
        if until in ("printed", "failed"):
            mark_printing(conn, job, now=at)
        if until == "printed":
            mark_printed(conn, job, now=at)
        if until == "failed":
            fail_print(conn, job, reason="paper out", now=at)


def _history(conn: sqlite3.Connection) -> dict[str, int]:
    """January: every state a document can be in; February: printed receipts (stay live). The
    first id is a receipt of April: a lower id issued later must not stop the archiving."""
    ids: dict[str, int] = {"april": _doc(conn, "april", NOW)}
    _accept(conn, ids["april"], NOW)
    for index in range(5):
        at = JAN + timedelta(hours=index)
        ids[f"printed{index}"] = _doc(conn, f"printed{index}", at)
        _accept(conn, ids[f"printed{index}"], at)
        _print(conn, ids[f"printed{index}"], at, until="printed")
    at = JAN + timedelta(days=1)
    ids["email_only"] = _doc(conn, "email_only", at)
    _accept(conn, ids["email_only"], at)
    ids["delayed"] = _doc(conn, "delayed", at)
    with transaction(conn):
        mark_delayed(
            conn, ids["delayed"], code=1, due_at=at, next_attempt_at=at, error="down", now=at
        )
    ids["pending"] = _doc(conn, "pending", at)
    ids["rejected"] = _doc(conn, "rejected", at)
    with transaction(conn):
        mark_rejected(conn, ids["rejected"], error="bad", now=at)
    ids["queued"] = _doc(conn, "queued", at)
    _accept(conn, ids["queued"], at)
    _print(conn, ids["queued"], at, until="queued")
    ids["failed"] = _doc(conn, "failed", at)
    _accept(conn, ids["failed"], at)
    _print(conn, ids["failed"], at, until="failed")
    ids["mark_unknown"] = _doc(conn, "mark_unknown", at)
    _accept(conn, ids["mark_unknown"], at, mark=False)
    ids["void"] = _doc(conn, "void", at, reserve=True)
    with transaction(conn):
        void_reservation(conn, ids["void"], reason="expired", now=at)
    ids["late"] = _doc(conn, "late", JAN + timedelta(days=2))
    _accept(conn, ids["late"], JAN + timedelta(days=2))
    _print(conn, ids["late"], JAN + timedelta(days=2), until="printed")
    for index in range(3):
        at = FEB + timedelta(hours=index)
        ids[f"feb{index}"] = _doc(conn, f"feb{index}", at)
        _accept(conn, ids[f"feb{index}"], at)
        _print(conn, ids[f"feb{index}"], at, until="printed")
    return ids


def _archive_all(conn: sqlite3.Connection, archive_dir: Path, **options: object) -> int:
    batches = 0
    while archive_slice(conn, archive_dir, cutoff=CUTOFF, now=NOW, **options) is not None:  # type: ignore[arg-type]
        batches += 1
    return batches


MOVES = {"printed0", "printed1", "printed2", "printed3", "printed4", "email_only", "late"}
STAYS = {"april", "delayed", "pending", "rejected", "queued", "failed", "mark_unknown", "void"}


def test_a_month_moves_whole_and_only_accepted_printed_receipts(tmp_path):
    conn = open_store(tmp_path)
    ids = _history(conn)
    numbers_before = last_numbers(conn)
    archive_dir = tmp_path / "archive"

    assert _archive_all(conn, archive_dir, max_documents=3) == 3  # 7 documents in 3 batches

    for name, doc_id in ids.items():
        live = get_document(conn, doc_id)
        if name in MOVES:
            assert live is None, name
            archived = find_archived(conn, archive_dir, doc_id)
            assert archived is not None and archived.state == DocumentState.ACCEPTED
            assert json.loads(archived.payload or b"")["name"] == name
        else:
            assert live is not None, name
            assert find_archived(conn, archive_dir, doc_id) is None
    assert [m.month for m in archive_months(conn)] == ["2026-01"]
    assert {d.request_id for d in archived_documents(conn, archive_dir, "2026-01")} == MOVES
    assert archived_count(conn) == len(MOVES)
    # A new database gives the freed pages back to the filesystem after each batch.
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    # Numbering: the counters never move back, no gap is reported, the next number is next.
    assert last_numbers(conn) == numbers_before
    assert numbering_gaps(conn) == {}
    after = _doc(conn, "next", NOW)
    assert get_document(conn, after).number == numbers_before["A"] + 1  # type: ignore[union-attr]
    # The counters the triggers keep still equal a count over what is live.
    summary = backlog_summary(conn, NOW)
    counted = dict(conn.execute("SELECT state, count(*) FROM documents GROUP BY state").fetchall())
    assert {k: v for k, v in summary.by_state.items() if v} == counted
    assert print_queue_summary(conn)["printed"] == 3 + 0  # February's three stay live
    # One chain across the archive boundary: files, seals and the live journal.
    history = verify_history(conn, archive_dir)
    assert history.ok, history.problem
    assert history.batches == 3 and history.archived_documents == len(MOVES)
    assert verify_journal(conn).ok
    # Nothing more is due; a second run archives nothing twice.
    assert _archive_all(conn, archive_dir) == 0


def test_an_archived_number_cannot_be_issued_again(tmp_path):
    conn = open_store(tmp_path)
    ids = _history(conn)
    _archive_all(conn, tmp_path / "archive")
    archived_number = 1
    assert get_document(conn, ids["printed0"]) is None
    with pytest.raises(sqlite3.IntegrityError, match="not the next number"), transaction(conn):
        conn.execute(
            "INSERT INTO documents (request_id, request_hash, kind, type_code, series, number, "
            "issued_at, uid, internal_id, request_json, payload, total_amount, state, "
            "created_at, updated_at) VALUES ('x', 'h', 'receipt', '11.1', 'A', ?, ?, 'U', 'I', "
            "'{}', x'00', '1', 'pending', ?, ?)",
            (archived_number, JAN.isoformat(), JAN.isoformat(), JAN.isoformat()),
        )


def test_live_documents_other_than_sealed_accepted_ones_are_never_deleted(tmp_path):
    conn = open_store(tmp_path)
    ids = _history(conn)
    for name in ("printed0", "delayed"):
        with pytest.raises(sqlite3.IntegrityError, match="never deleted"), transaction(conn):
            conn.execute("DELETE FROM documents WHERE id = ?", (ids[name],))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), transaction(conn):
        conn.execute("DELETE FROM journal WHERE seq = 1")


def test_a_crash_between_the_file_and_the_seal_loses_and_duplicates_nothing(tmp_path):
    conn = open_store(tmp_path)
    ids = _history(conn)
    archive_dir = tmp_path / "archive"

    def crash() -> None:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        archive_slice(conn, archive_dir, cutoff=CUTOFF, now=NOW, after_write=crash)
    # The member is on disk, but unsealed: every row is still live, no batch recorded.
    assert (archive_dir / "2026-01.jsonl.xz").stat().st_size > 0
    assert archive_months(conn) == []
    assert all(get_document(conn, doc_id) is not None for doc_id in ids.values())
    assert verify_history(conn, archive_dir).ok

    assert _archive_all(conn, archive_dir) == 1
    # What `xzcat` shows: the crashed attempt's stream was cut off, one batch is there.
    with lzma.open(archive_dir / "2026-01.jsonl.xz", "rt", encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle]
    archived_ids = [line["id"] for line in lines if line["type"] == "document"]
    assert sorted(archived_ids) == sorted(ids[name] for name in MOVES)  # each once
    assert [line["type"] for line in lines].count("batch") == 1
    assert verify_history(conn, archive_dir).ok


def test_an_altered_archive_or_seal_is_found(tmp_path):
    conn = open_store(tmp_path)
    _history(conn)
    archive_dir = tmp_path / "archive"
    _archive_all(conn, archive_dir)
    path = archive_dir / "2026-01.jsonl.xz"
    original = path.read_bytes()

    path.write_bytes(original[:-9] + bytes([original[-9] ^ 1]) + original[-8:])
    broken = verify_history(conn, archive_dir)
    assert not broken.ok and "differ from their seal" in (broken.problem or "")

    # A file rewritten with matching figures in archive_batches still fails: the journal's
    # seal entry (hash-chained) holds the original SHA-256.
    forged = lzma.compress(b'{"type":"batch"}\n')
    path.write_bytes(forged)
    conn.execute(
        "UPDATE archive_batches SET bytes = ?, sha256 = ?",
        (len(forged), hashlib.sha256(forged).hexdigest()),
    )
    assert not verify_history(conn, archive_dir).ok


def test_a_mark_whose_journal_entry_was_archived_is_no_rollback(tmp_path):
    """A shop closed for months: the high-water mark's journal entry moves to the archive with
    its month, which is not the database going back in time (before, every series was refused
    after the next start)."""
    conn = open_store(tmp_path)
    for index in range(3):
        at = JAN + timedelta(hours=index)
        doc_id = _doc(conn, f"closed{index}", at)
        _accept(conn, doc_id, at)
        _print(conn, doc_id, at, until="printed")
    mark = current_mark(conn)
    assert _archive_all(conn, tmp_path / "archive") >= 1
    assert (
        conn.execute("SELECT 1 FROM journal WHERE seq = ?", (mark.journal_seq,)).fetchone() is None
    )
    assert not compare_with_mark(conn, mark)


def test_packed_rows_are_archived_as_the_text_they_were(tmp_path):
    """A receipt packed with a learned dictionary and its remembered answer (schema 4) are
    written to the archive file as plain text: the archive reads without this code."""
    conn = open_store(tmp_path)
    ids = [_doc(conn, f"d{index}", JAN + timedelta(minutes=index)) for index in range(6)]
    with transaction(conn):
        assert learn_dictionary(conn, now=JAN + timedelta(minutes=6)) is not None
    at = JAN + timedelta(minutes=7)
    doc_id = _doc(conn, "learned", at)
    answer = {"signature_id": 7, "amount": Decimal("2.50"), "signature": "MEUCIQ" + "A" * 90}
    with transaction(conn):
        remember_request(
            conn,
            request_id="sign-1",
            endpoint="payments/sign",
            body_hash="h",
            created=True,
            response=answer,
            document_id=doc_id,
            now=at,
        )
    assert conn.execute("SELECT response FROM api_requests").fetchone()[0] == ""
    payload = get_document(conn, doc_id).payload  # type: ignore[union-attr]
    for moved in [*ids, doc_id]:
        _accept(conn, moved, at)
        _print(conn, moved, at, until="printed")
    archive_dir = tmp_path / "archive"
    assert _archive_all(conn, archive_dir) == 1
    assert get_document(conn, doc_id) is None
    archived = find_archived(conn, archive_dir, doc_id)
    assert archived is not None and archived.payload == payload
    (path,) = archive_dir.glob("*.jsonl.xz")
    records = [json.loads(line) for line in lzma.decompress(path.read_bytes()).splitlines()]
    (record,) = [r for r in records if r["type"] == "document" and r["id"] == doc_id]
    assert record["payload"] == payload.decode()  # type: ignore[union-attr]
    (remembered,) = record["api_requests"]
    assert "response_packed" not in remembered
    assert json.loads(remembered["response"], parse_float=Decimal) == answer
    assert verify_history(conn, archive_dir).ok


def test_a_month_begun_in_gzip_stays_gzip_and_reads_with_the_new_ones(tmp_path, monkeypatch):
    """A register upgraded in the middle of a month: the month's file written by the earlier
    version (gzip members) gets its next batches in gzip, a new month starts in xz, and both
    verify as one history and read back."""
    conn = open_store(tmp_path)
    ids = _history(conn)
    archive_dir = tmp_path / "archive"
    with monkeypatch.context() as earlier_version:  # new months were .jsonl.gz
        earlier_version.setattr(archive_module, "XZ_SUFFIX", archive_files.GZIP_SUFFIX)
        assert archive_slice(conn, archive_dir, cutoff=CUTOFF, now=NOW, max_documents=3)
    assert _archive_all(conn, archive_dir) == 1  # the rest of January, after the upgrade
    gz_path = archive_dir / "2026-01.jsonl.gz"
    assert sorted(p.name for p in archive_dir.iterdir()) == [gz_path.name]
    with gzip.open(gz_path, "rt", encoding="utf-8") as handle:  # what `zcat` shows
        types = [json.loads(line)["type"] for line in handle]
    assert types.count("batch") == 2 and types.count("document") == len(MOVES)
    for name in MOVES:
        assert find_archived(conn, archive_dir, ids[name]) is not None, name
    # February, archived later, is a new month: xz.
    later = datetime(2026, 5, 20, 12, 0, tzinfo=ATHENS_WINTER)
    assert archive_slice(conn, archive_dir, cutoff=archive_cutoff(later, 62), now=later)
    assert sorted(p.name for p in archive_dir.iterdir()) == [gz_path.name, "2026-02.jsonl.xz"]
    history = verify_history(conn, archive_dir)
    assert history.ok, history.problem
    assert history.archived_documents == len(MOVES) + 3


@pytest.mark.parametrize("table", archive_records.RELATED_TABLES)
def test_rows_that_move_with_a_document_are_found_by_an_index(tmp_path, table):
    """The archive reads and deletes these rows by document for every receipt of a batch: a
    scan there costs the whole table per receipt."""
    conn = open_store(tmp_path)
    for sql in (
        f"SELECT * FROM {table} WHERE document_id = ? ORDER BY rowid",  # noqa: S608
        f"DELETE FROM {table} WHERE document_id IN (?, ?)",  # noqa: S608
    ):
        plan = " ".join(
            row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", (1, 2)[: sql.count("?")])
        )
        assert "INDEX" in plan and f"SCAN {table}" not in plan, (sql, plan)


def test_a_receipt_id_is_never_given_again_after_every_receipt_moved_to_the_archive(tmp_path):
    """A till keeps `receipt_id` (reprints, card payments on a MARKed receipt). SQLite hands a
    new row the highest live id + 1, so once the newest receipts were archived (a register
    idle for months: the whole table goes), a new receipt got the id of an archived one and
    GET /v1/receipts/{id} answered another sale (found by `pos-agent powercut`)."""
    conn = open_store(tmp_path)
    ids = [_doc(conn, f"jan{index}", JAN + timedelta(hours=index)) for index in range(3)]
    for doc_id in ids:
        _accept(conn, doc_id, JAN)
    _archive_all(conn, tmp_path / "archive")
    assert conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 0

    new_id = _doc(conn, "april", NOW)

    assert new_id == max(ids) + 1
    assert find_archived(conn, tmp_path / "archive", ids[-1]).request_id == "jan2"


def test_a_document_still_to_send_keeps_its_freeze_in_the_live_journal(tmp_path):
    """A receipt still unsent (delayed or pending) is checked against the SHA-256 journaled at
    its freeze before every send. Before, the archive moved every entry written up to its
    newest receipt, this freeze among them: the check found no record, the receipt was never
    sent and status blamed the disk. Found by `pos-agent powercut` (an archive run right after
    an offline period)."""
    conn = open_store(tmp_path)
    ids = _history(conn)
    assert _archive_all(conn, tmp_path / "archive") >= 1
    for name in ("delayed", "pending"):
        doc = get_document(conn, ids[name])
        assert doc is not None and payload_intact(conn, doc.id, doc.payload), name
    assert altered_payloads(conn) == []
    assert verify_history(conn, tmp_path / "archive").ok


def _archive_without_the_stop(
    conn: sqlite3.Connection, archive_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> int:
    """Archive as registers did before the journal segment stopped at the freeze of a document
    still to be sent: the real writer, with that stop taken out."""
    with monkeypatch.context() as patch:
        patch.setattr(archive_module, "_first_unsent_freeze", lambda conn: None)
        return _archive_all(conn, archive_dir)


def test_a_freeze_an_earlier_archive_moved_is_read_back_from_the_sealed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A register the earlier archive hit: the delayed and pending receipts' freeze entries are
    in the archive file, none live. Their payloads check against the archived digests (so they
    are sent, and status shows nothing altered); another payload still does not."""
    conn = open_store(tmp_path)
    ids = _history(conn)
    archive_dir = tmp_path / "archive"
    assert _archive_without_the_stop(conn, archive_dir, monkeypatch) >= 1
    unsent = [ids["delayed"], ids["pending"]]
    assert sorted(altered_payloads(conn)) == unsent  # without the archive: the false CRITICAL
    for doc_id in unsent:
        doc = get_document(conn, doc_id)
        assert doc is not None and doc.payload is not None
        assert recorded_digest(conn, doc_id) is None, "the freeze entry is still live"
        assert payload_intact(conn, doc_id, doc.payload, archive_dir=archive_dir)
        assert not payload_intact(conn, doc_id, doc.payload + b" ", archive_dir=archive_dir)
    assert altered_payloads(conn, archive_dir=archive_dir) == []
    assert altered_payloads(conn, states=None, archive_dir=archive_dir) == []
    assert not payload_intact(conn, max(ids.values()) + 1, b"{}", archive_dir=archive_dir)
    assert verify_history(conn, archive_dir).ok


def test_a_digest_found_nowhere_reads_only_batches_of_later_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document newer than everything archived cannot have its freeze in the archive: the
    lookup reads no batch (on a million receipts of history, reading all 504 took 128 s on the
    event loop). One older than an archived document still finds its digest there."""
    conn = open_store(tmp_path)
    ids = _history(conn)
    archive_dir = tmp_path / "archive"
    assert _archive_without_the_stop(conn, archive_dir, monkeypatch) >= 1
    newest = ArchivedFreezes(conn, archive_dir)
    assert newest.digest(max(ids.values()) + 1) is None
    assert newest.batches_read == 0
    delayed = get_document(conn, ids["delayed"])
    assert delayed is not None and delayed.payload is not None
    moved = ArchivedFreezes(conn, archive_dir)
    assert moved.digest(delayed.id) == hashlib.sha256(delayed.payload).hexdigest()
    assert moved.batches_read >= 1


def test_an_archived_freeze_is_refused_from_a_file_that_breaks_its_seal_or_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archived digest counts only from a batch whose bytes match their seal and whose
    journal segment recomputes to the hash sealed for it: a flipped byte, or a digest rewritten
    and the batch row resealed to match, leaves the receipt refused."""
    conn = open_store(tmp_path)
    ids = _history(conn)
    archive_dir = tmp_path / "archive"
    assert _archive_without_the_stop(conn, archive_dir, monkeypatch) == 1
    [batch] = archive_batches(conn)
    path = archive_dir / batch.file
    original = path.read_bytes()
    delayed = get_document(conn, ids["delayed"])
    assert delayed is not None and delayed.payload is not None
    forged_digest = hashlib.sha256(b"forged").hexdigest()
    text = lzma.decompress(original).decode()
    real_digest = hashlib.sha256(delayed.payload).hexdigest()
    assert text.count(real_digest) == 1
    forged = lzma.compress(text.replace(real_digest, forged_digest).encode(), format=lzma.FORMAT_XZ)

    path.write_bytes(original[:100] + bytes([original[100] ^ 0x10]) + original[101:])
    assert not payload_intact(conn, delayed.id, delayed.payload, archive_dir=archive_dir)
    assert sorted(altered_payloads(conn, archive_dir=archive_dir)) == [
        ids["delayed"],
        ids["pending"],
    ]

    path.write_bytes(forged)
    with transaction(conn):
        conn.execute(
            "UPDATE archive_batches SET bytes = ?, sha256 = ? WHERE id = ?",
            (len(forged), hashlib.sha256(forged).hexdigest(), batch.id),
        )
    assert not payload_intact(conn, delayed.id, b"forged", archive_dir=archive_dir)
    assert not payload_intact(conn, delayed.id, delayed.payload, archive_dir=archive_dir)
