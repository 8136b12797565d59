"""Cost independent of history: schema 1 → 2 on a real old file, query plans without scans of
the big tables, the journal checked in persisted slices, no quick_check on a clean start."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import offline_store as store
from offline_store.database import open_database
from offline_store.dictionaries import current_packing
from offline_store.payload_integrity import recorded_digest
from tests.offline_store.factory import T0, issue, open_store

DATA = Path(__file__).parent / "data"
# Written by the schema-1 code of main at 67e904e (8 accepted of which 7 printed and 1 queued,
# 1 delayed, 1 rejected, 1 pending, 1 open reservation), with its documents read back as JSON.
SCHEMA_1 = DATA / "schema1.sqlite3"
SCHEMA_1_DOCUMENTS = json.loads((DATA / "schema1.json").read_text(encoding="utf-8"))


def _old_file(tmp_path: Path) -> Path:
    path = tmp_path / "old.sqlite3"
    shutil.copyfile(SCHEMA_1, path)
    return path


def _documents(conn: sqlite3.Connection) -> list[dict[str, object]]:
    return [
        {
            "id": d.id,
            "state": d.state.value,
            "number": d.number,
            "request_json": d.request_json,
            "payload": None if d.payload is None else d.payload.decode(),
        }
        for d in sorted(store.list_documents(conn, limit=100), key=lambda d: d.id)
    ]


def test_a_schema_1_file_is_migrated_and_packed_without_changing_a_byte(tmp_path):
    conn = open_database(_old_file(tmp_path), now=T0)
    assert store.schema_version(conn) == len(store.MIGRATIONS)
    assert _documents(conn) == SCHEMA_1_DOCUMENTS
    # Counters start from the rows that were there.
    counted = dict(conn.execute("SELECT state, count(*) FROM documents GROUP BY state").fetchall())
    by_state = store.backlog_summary(conn, T0).by_state
    assert {k: v for k, v in by_state.items() if v} == counted
    assert store.print_queue_summary(conn) == {
        "queued": 1,
        "printing": 0,
        "printed": 7,
        "failed": 0,
    }
    assert store.numbering_gaps(conn) == {}
    # Printed layouts are dropped, the queued one kept.
    layouts = conn.execute("SELECT state, layout IS NULL FROM print_jobs ORDER BY id").fetchall()
    assert {(state, bool(dropped)) for state, dropped in layouts} == {
        ("printed", True),
        ("queued", False),
    }

    assert store.unpacked_count(conn) == 12
    with store.transaction(conn):
        assert store.compact_slice(conn, limit=5) == 5
    with store.transaction(conn):
        assert store.compact_slice(conn, limit=100) == 7
    assert store.unpacked_count(conn) == 0
    assert _documents(conn) == SCHEMA_1_DOCUMENTS
    # Every payload still hashes to what its journal entry recorded.
    for doc in store.list_documents(conn, limit=100):
        digest = recorded_digest(conn, doc.id)
        if doc.payload is not None and digest is not None:
            assert hashlib.sha256(doc.payload).hexdigest() == digest
    # Old entries (prev_hash stored) and new ones (not stored) verify as one chain.
    issue(conn, "after-upgrade", now=T0 + timedelta(days=30))
    assert store.verify_journal(conn).ok
    packed = conn.execute("SELECT count(*) FROM documents WHERE packed = 0").fetchone()[0]
    assert packed == 0


def test_a_packed_payload_stays_frozen(tmp_path):
    conn = open_store(tmp_path)
    doc = issue(conn, "r1")
    with pytest.raises(sqlite3.IntegrityError, match="frozen payload"), store.transaction(conn):
        conn.execute("UPDATE documents SET payload = x'00' WHERE id = ?", (doc.id,))
    with pytest.raises(sqlite3.IntegrityError, match="stays packed"), store.transaction(conn):
        conn.execute("UPDATE documents SET packed = 0 WHERE id = ?", (doc.id,))


# Every read on the till's and the technician's path, with its parameters.
READS = {
    "backlog by state": lambda conn: store.backlog_summary(conn, T0),
    "print queue": store.print_queue_summary,
    "numbering gaps": store.numbering_gaps,
    "archived count": store.archived_count,
    "journal last seq": store.journal_last_seq,
    "last numbers": store.last_numbers,
    "journal check result": store.last_journal_check,
    "integrity result": store.last_integrity_check,
    "due for sync": lambda conn: store.document_ids_due(conn, T0, 50),
    "unsent": store.unsent_document_ids,
    "accepted without a MARK": store.mark_unknown_ids,
    "a day's documents (X report)": lambda conn: store.documents_between(
        conn, store.day_range(conn, T0.date(), "documents") or store.IdRange(0, 0), T0.date()
    ),
    "since the last closing (Z report)": lambda conn: (
        store.last_closing(conn),
        store.newest_ids(conn),
        store.kicks_between(conn, store.IdRange(0, 1)),
    ),
    "closing slips to print": lambda conn: store.next_closing_print(conn, T0),
    "next print job": lambda conn: store.next_print_job(conn, T0),
    "print jobs of a receipt": lambda conn: store.print_jobs_for(conn, 1),
    "one document": lambda conn: store.get_document(conn, 1),
    "by request id": lambda conn: store.get_by_request_id(conn, "r1"),
    "newest delayed": lambda conn: store.list_documents(conn, state=store.DocumentState.DELAYED),
    "abandoned reservations": lambda conn: store.abandoned_reservations(
        conn, series="A", before=T0
    ),
    "archive boundary": lambda conn: store.verify_journal(conn, limit=0),
    "packing of a new receipt": current_packing,
    "payload against its journaled hash": lambda conn: store.payload_intact(conn, 1, b"{}"),
}
BIG_TABLES = ("documents", "journal", "print_jobs", "api_requests", "payment_signatures")
# Partial indexes hold only the few rows not yet done; scanning one is not scanning history.
PARTIAL_INDEXES = (
    "print_jobs_queued",
    "print_jobs_printing",
    "documents_mark_unknown",
    "closings_print_queue",
)


@pytest.mark.parametrize("name", sorted(READS))
def test_no_read_on_the_hot_path_scans_a_big_table(tmp_path, name):
    conn = open_store(tmp_path)
    issue(conn, "r1")
    plans: list[str] = []

    def explain(sql: str) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            plans.extend(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", bound[0]))

    bound: list[object] = [()]
    original = conn.execute

    class Explaining:
        def __init__(self, inner: sqlite3.Connection) -> None:
            self.inner = inner

        def execute(self, sql: str, params: object = ()) -> sqlite3.Cursor:
            bound[0] = params
            explain(sql)
            return original(sql, params)  # type: ignore[arg-type]

        def __getattr__(self, attr: str) -> object:
            return getattr(self.inner, attr)

    READS[name](Explaining(conn))
    assert plans, f"{name}: no query seen"
    scans = [
        plan
        for plan in plans
        if any(plan.startswith(f"SCAN {table}") for table in BIG_TABLES)
        and not any(f"USING INDEX {index}" in plan for index in PARTIAL_INDEXES)
        and "COVERING INDEX documents_mark_unknown" not in plan
    ]
    assert not scans, f"{name} scans history: {scans}"


def test_the_journal_is_checked_in_slices_from_a_stored_checkpoint(tmp_path):
    path = tmp_path / "store.db"
    conn = open_database(path, now=T0)
    for index in range(7):
        issue(conn, f"r{index}")
    entries = store.verify_journal(conn).entries
    assert store.last_journal_check(conn) is None

    first = store.journal_slice(conn, limit=4, now=T0)
    assert first.ok and not first.complete and first.entries == 4
    conn.close()
    # The checkpoint survives a restart: the next slice goes on from entry 4.
    conn = open_database(path, now=T0)
    with store.transaction(conn):
        conn.execute("DROP TRIGGER journal_no_update")
        conn.execute("UPDATE journal SET event = 'forged' WHERE seq = 2")  # already checked
    second = store.journal_slice(conn, limit=1000, now=T0 + timedelta(minutes=1))
    assert second.ok and second.complete and second.entries == entries
    status = store.last_journal_check(conn)
    assert status is not None and status.ok and status.verified_seq == entries
    # A full walk (doctor, pos-agent archive verify) does see the forged entry.
    assert store.verify_journal(conn).first_bad_seq == 2

    issue(conn, "r-next")
    with store.transaction(conn):
        conn.execute("UPDATE journal SET event = 'forged' WHERE seq = ?", (entries + 1,))
    bad = store.journal_slice(conn, limit=1000, now=T0 + timedelta(minutes=2))
    assert not bad.ok
    # A broken chain stays reported; walking on never clears it.
    again = store.journal_slice(conn, limit=1000, now=T0 + timedelta(minutes=3))
    status = store.last_journal_check(conn)
    assert not again.ok and status is not None and not status.ok


def test_quick_check_runs_only_after_a_session_that_did_not_end_cleanly(tmp_path):
    path = tmp_path / "store.db"
    times = [T0 + timedelta(hours=hour) for hour in range(4)]

    def checked_at() -> datetime | None:
        conn = open_database(path, read_only=True)
        try:
            last = store.last_integrity_check(conn)
            return None if last is None else last[0]
        finally:
            conn.close()

    store.close_database(open_database(path, now=times[0]))  # new file: checked
    assert checked_at() == times[0]
    store.close_database(open_database(path, now=times[1]))  # clean end before: skipped
    assert checked_at() == times[0]
    crashed = open_database(path, now=times[2])  # still skipped, but this session never ends
    crashed.close()
    assert checked_at() == times[0]
    store.close_database(open_database(path, now=times[3]))  # after the unclean end: checked
    assert checked_at() == times[3]
