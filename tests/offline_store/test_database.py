import sqlite3
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import offline_store as store
from offline_store import (
    DatabaseDamaged,
    StoreError,
    TransactionError,
    apply_migrations,
    last_integrity_check,
    open_database,
    schema_version,
    transaction,
)
from offline_store.migrations import MIGRATIONS
from tests.offline_store.factory import T0, builder, issue, open_store

TABLES = {
    "api_requests",
    "documents",
    "journal",
    "meta",
    "payment_signatures",
    "print_jobs",
    "series_counters",
}


def _tables(conn: sqlite3.Connection) -> dict[str, bool]:
    rows = conn.execute("SELECT name, strict FROM pragma_table_list WHERE schema = 'main'")
    return {row["name"]: bool(row["strict"]) for row in rows if row["name"] in TABLES}


def test_new_database_is_migrated_strict_and_durable(tmp_path):
    conn = open_store(tmp_path)
    assert schema_version(conn) == len(MIGRATIONS)
    assert _tables(conn) == dict.fromkeys(TABLES, True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert conn.isolation_level is None


def test_reopen_keeps_data_and_applies_nothing(tmp_path):
    conn = open_store(tmp_path)
    issue(conn, "r1")
    conn.close()
    conn = open_store(tmp_path)
    assert apply_migrations(conn) == []
    assert schema_version(conn) == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 1


def test_strict_tables_refuse_wrong_types(tmp_path):
    conn = open_store(tmp_path)
    with pytest.raises(sqlite3.IntegrityError), transaction(conn):
        conn.execute("INSERT INTO series_counters (series, last_number) VALUES ('A', 'many')")


def test_database_from_a_newer_agent_is_refused(tmp_path):
    conn = open_store(tmp_path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        open_database(tmp_path / "store.db")


def test_integrity_check_time_and_result_are_recorded(tmp_path):
    conn = open_store(tmp_path)
    assert last_integrity_check(conn) == (T0, "ok")
    conn.close()
    later = T0 + timedelta(hours=1)
    conn = open_database(tmp_path / "store.db", now=later)
    assert last_integrity_check(conn) == (later, "ok")


def test_garbage_file_is_refused_with_technician_instructions(tmp_path):
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not an sqlite database, just garbage" * 200)
    with pytest.raises(DatabaseDamaged) as caught:
        open_database(path)
    message = str(caught.value)
    assert str(path) in message
    assert "Do NOT delete" in message
    assert "store.db-wal" in message
    assert "Stop the service" in message
    assert "backup" in message
    assert "support" in message


def test_read_only_open_of_garbage_reports_damage(tmp_path):
    path = tmp_path / "store.db"
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(DatabaseDamaged, match="Do NOT delete"):
        open_database(path, read_only=True)


def test_corrupted_page_fails_quick_check(tmp_path):
    path = tmp_path / "store.db"
    conn = open_database(path, now=T0)
    for index in range(200):
        issue(conn, f"r{index}")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 6 * page_size
    for page in range(2, 6):  # b-tree pages behind the schema page
        start = page * page_size
        data[start : start + page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(data))
    with pytest.raises(DatabaseDamaged, match="Do NOT delete"):
        open_database(path)
    assert path.exists()


def test_read_only_open_reads_but_cannot_write(tmp_path):
    writer = open_store(tmp_path)
    issue(writer, "r1")
    reader = open_database(tmp_path / "store.db", read_only=True)
    assert reader.execute("SELECT request_id FROM documents").fetchone()[0] == "r1"
    with pytest.raises(sqlite3.OperationalError, match="readonly"), transaction(reader):
        reader.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")


def test_read_only_open_of_missing_file_creates_nothing(tmp_path):
    with pytest.raises(sqlite3.OperationalError):
        open_database(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()


def test_transaction_commits_and_rolls_back(tmp_path):
    conn = open_store(tmp_path)
    with transaction(conn):
        conn.execute("INSERT INTO meta (key, value) VALUES ('kept', '1')")
    with pytest.raises(RuntimeError), transaction(conn):
        conn.execute("INSERT INTO meta (key, value) VALUES ('lost', '1')")
        raise RuntimeError("boom")
    keys = {row[0] for row in conn.execute("SELECT key FROM meta")}
    assert "kept" in keys
    assert "lost" not in keys
    assert not conn.in_transaction


def test_transaction_without_fsync_applies_to_that_commit_only(tmp_path):
    conn = open_store(tmp_path)
    full, normal = 2, 1
    with transaction(conn, fsync=False):
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == normal
        conn.execute("INSERT INTO meta (key, value) VALUES ('quick', '1')")
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == full
    with pytest.raises(RuntimeError), transaction(conn, fsync=False):
        raise RuntimeError("boom")
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == full
    reopened = open_store(tmp_path)
    assert reopened.execute("SELECT value FROM meta WHERE key = 'quick'").fetchone()[0] == "1"


def test_transaction_is_not_reentrant(tmp_path):
    conn = open_store(tmp_path)
    with transaction(conn), pytest.raises(TransactionError), transaction(conn):
        pass


def _signature(conn: sqlite3.Connection, document_id: int, request_id: str) -> int:
    return store.add_signature(
        conn,
        document_id=document_id,
        request_id=request_id,
        terminal_id="T-1",
        amount=Decimal("12.40"),
        tip=Decimal("0.00"),
        input="UID;;12.40",
        signature="sig",
        duration_type="H_24",
        expires_at=None,
        now=T0,
    ).id


# Every public write, called on rows it could change, but outside transaction().
WRITES: dict[str, Callable[[sqlite3.Connection, dict[str, int]], object]] = {
    "append_journal": lambda c, ids: store.append_journal(c, "x", {}, document_id=None, at=T0),
    "allocate_number": lambda c, ids: store.allocate_number(c, "A"),
    "insert_document": lambda c, ids: store.insert_document(c, "A", builder("new"), now=T0),
    "freeze_payload": lambda c, ids: store.freeze_payload(c, ids["reserved"], b"p", now=T0),
    "void_reservation": lambda c, ids: store.void_reservation(
        c, ids["reserved"], reason="r", now=T0
    ),
    "extend_reservation": lambda c, ids: store.extend_reservation(
        c, ids["reserved"], reserved_until=T0, now=T0
    ),
    "take_over_reservation": lambda c, ids: store.take_over_reservation(
        c,
        ids["reserved"],
        request_id="other",
        request_hash="h",
        request_json="{}",
        total_amount=Decimal("1.00"),
        reserved_until=T0,
        now=T0,
    ),
    "mark_accepted": lambda c, ids: store.mark_accepted(
        c, ids["pending"], mark=1, authentication_code=None, qr_url=None, now=T0
    ),
    "mark_delayed": lambda c, ids: store.mark_delayed(
        c, ids["pending"], code=1, due_at=T0, next_attempt_at=None, error="e", now=T0
    ),
    "mark_rejected": lambda c, ids: store.mark_rejected(c, ids["pending"], error="e", now=T0),
    "enqueue_print": lambda c, ids: store.enqueue_print(c, ids["pending"], "{}", copy=True, now=T0),
    "mark_printing": lambda c, ids: store.mark_printing(c, ids["queued"], now=T0),
    "fail_print": lambda c, ids: store.fail_print(c, ids["queued"], reason="r", now=T0),
    "mark_printed": lambda c, ids: store.mark_printed(c, ids["printing"], now=T0),
    "retry_print": lambda c, ids: store.retry_print(
        c, ids["printing"], reason="r", next_attempt_at=None, now=T0
    ),
    "requeue_interrupted": lambda c, ids: store.requeue_interrupted(c, now=T0),
    "add_signature": lambda c, ids: _signature(c, ids["reserved"], "s-new"),
    "mark_signature_used": lambda c, ids: store.mark_signature_used(c, ids["signature"], now=T0),
    "supersede_signatures": lambda c, ids: store.supersede_signatures(c, ids["reserved"], now=T0),
    "remember_request": lambda c, ids: store.remember_request(
        c,
        request_id="p1",
        endpoint="/x",
        body_hash="h",
        created=False,
        response={},
        document_id=None,
        now=T0,
    ),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_writes_outside_a_transaction_are_refused_and_write_nothing(tmp_path, write):
    conn = open_store(tmp_path)
    ids = {"pending": issue(conn, "r1").id, "reserved": issue(conn, "r2", payload=None).id}
    with transaction(conn):
        ids["queued"] = store.enqueue_print(conn, ids["pending"], "{}", copy=False, now=T0)
        ids["printing"] = store.enqueue_print(conn, ids["pending"], "{}", copy=False, now=T0)
        store.mark_printing(conn, ids["printing"], now=T0)
        ids["signature"] = _signature(conn, ids["reserved"], "s1")
    changes = conn.total_changes
    with pytest.raises(TransactionError):
        WRITES[write](conn, ids)
    assert conn.total_changes == changes
    assert not conn.in_transaction


def test_refused_wal_switch_is_reported_as_such_not_as_damage(tmp_path):
    # An in-memory database cannot use WAL: the open must fail with that reason, not crash
    # while deciding whether our own error means a damaged file.
    with pytest.raises(sqlite3.OperationalError, match="to WAL"):
        open_database(Path(":memory:"))
