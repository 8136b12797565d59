"""Real SQLite failures are told apart: the register's storage (full, read-only, locked) versus
anything else (a bug, bad SQL), which must stay an internal error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from offline_store import StorageFault, storage_fault


def caught(action: object) -> BaseException:
    with pytest.raises(sqlite3.Error) as error:
        action()  # type: ignore[operator]
    return error.value


def test_a_database_that_cannot_grow_is_full(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db", isolation_level=None)
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count = 3")
    error = caught(lambda: conn.execute("INSERT INTO t VALUES (zeroblob(100000))"))
    assert storage_fault(error) is StorageFault.FULL


def test_a_read_only_database_is_read_only(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "db").execute("CREATE TABLE t (x)").connection.commit()
    conn = sqlite3.connect(f"file:{tmp_path / 'db'}?mode=ro", uri=True)
    error = caught(lambda: conn.execute("INSERT INTO t VALUES (1)"))
    assert storage_fault(error) is StorageFault.READ_ONLY


def test_a_lock_held_by_another_connection_is_busy(tmp_path: Path) -> None:
    holder = sqlite3.connect(tmp_path / "db", isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(tmp_path / "db", isolation_level=None, timeout=0)
    error = caught(lambda: other.execute("BEGIN IMMEDIATE"))
    assert storage_fault(error) is StorageFault.BUSY


def test_os_errors_of_the_disk_are_storage_faults() -> None:
    assert storage_fault(OSError(28, "No space left on device")) is StorageFault.FULL
    assert storage_fault(OSError(30, "Read-only file system")) is StorageFault.READ_ONLY


def test_a_bug_is_not_a_storage_fault(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db")
    assert storage_fault(caught(lambda: conn.execute("SELECT * FROM missing"))) is None
    assert storage_fault(ValueError("bad")) is None
    assert storage_fault(OSError(2, "No such file")) is None
