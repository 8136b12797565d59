"""The high-water mark beside the database: written atomically, compared at start, and only a
database *behind* it counts as rolled back."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import offline_store as store
from tests.offline_store.factory import issue, open_store


def test_a_database_at_or_ahead_of_its_mark_is_not_rolled_back(tmp_path: Path) -> None:
    conn = open_store(tmp_path)
    issue(conn, "r-1")
    store.write_mark(tmp_path, store.current_mark(conn))
    assert not store.compare_with_mark(conn, store.read_mark(tmp_path))  # type: ignore[arg-type]
    issue(conn, "r-2")  # the mark may lag (a crash before it was written): not a rollback
    assert not store.compare_with_mark(conn, store.read_mark(tmp_path))  # type: ignore[arg-type]


def test_a_copy_taken_earlier_is_behind_in_numbers_and_journal(tmp_path: Path) -> None:
    conn = open_store(tmp_path)
    issue(conn, "r-1")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(tmp_path / "store.db", tmp_path / "old.db")  # the backup a technician restores
    issue(conn, "r-2")
    issue(conn, "r-3", series="B")
    store.write_mark(tmp_path, store.current_mark(conn))
    conn.close()

    old = store.open_database(tmp_path / "old.db")
    rollback = store.compare_with_mark(old, store.read_mark(tmp_path))  # type: ignore[arg-type]
    assert rollback.series == {"A": (1, 2), "B": (0, 1)}
    assert rollback.journal is not None and "journal ends at entry" in rollback.journal


def test_a_journal_with_another_history_is_found(tmp_path: Path) -> None:
    """Same length, different entries: a database from another register or a forged one."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    first = open_store(one)
    issue(first, "r-1")
    store.write_mark(one, store.current_mark(first))
    other = open_store(two)
    # Another receipt: its frozen payload (the journal's hash of it) is not the first one's.
    issue(other, "r-other", payload=b'{"other":true}')
    rollback = store.compare_with_mark(other, store.read_mark(one))  # type: ignore[arg-type]
    assert rollback.series == {}
    assert rollback.journal is not None and "differs" in rollback.journal


def test_the_mark_is_replaced_whole_and_a_damaged_one_is_not_ignored(tmp_path: Path) -> None:
    assert store.read_mark(tmp_path) is None
    mark = store.HighWaterMark(last_numbers={"A": 7}, journal_seq=20, journal_hash="ab" * 32)
    store.write_mark(tmp_path, mark)
    assert store.read_mark(tmp_path) == mark
    assert not list(tmp_path.glob("*.new"))
    (tmp_path / store.HIGH_WATER_FILE).write_text('{"last_numbers": {"A": ')
    with pytest.raises(store.HighWaterFileDamaged):
        store.read_mark(tmp_path)


def test_the_mark_is_written_on_a_full_disk(tmp_path: Path) -> None:
    """Its blocks are allocated when the file is made: later marks overwrite them. (Renaming a
    new file over it needed fresh blocks: on a full disk the mark lagged the database, and a
    WAL lost then went unnoticed in the crash harness.)"""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    try:
        marks = store.MarkFile(disk)
        stat = os.statvfs(disk)
        with contextlib.suppress(OSError), (disk / "filler").open("wb") as filler:
            filler.write(b"\0" * (stat.f_bavail * stat.f_frsize + 4096))
        assert os.statvfs(disk).f_bavail == 0
        for number in range(1, 4):
            marks.write(store.HighWaterMark(last_numbers={"A": number}, journal_seq=number))
        marks.close()
        assert store.read_mark(disk) == store.HighWaterMark(last_numbers={"A": 3}, journal_seq=3)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_torn_slot_leaves_the_previous_mark(tmp_path: Path) -> None:
    first = store.HighWaterMark(last_numbers={"A": 1}, journal_seq=1, journal_hash="a" * 64)
    second = store.HighWaterMark(last_numbers={"A": 2}, journal_seq=2, journal_hash="b" * 64)
    marks = store.MarkFile(tmp_path)
    marks.write(first)
    marks.write(second)
    marks.close()
    path = tmp_path / store.HIGH_WATER_FILE
    data = bytearray(path.read_bytes())
    slot = (2 % 2) * store.SLOT_BYTES  # where the second mark went
    data[slot + 100 : slot + 120] = b"\0" * 20  # a write cut off by a power loss
    path.write_bytes(bytes(data))
    assert store.read_mark(tmp_path) == first
