"""An upgraded register's print jobs: written before schema 7 (layout in the row, set to NULL once
printed, the pages left nearly empty), then migrated to schema 7 and rewritten in slices. The
rows read the same before and after, the unfinished jobs keep their layouts, and the file
gives back the pages the old layouts emptied."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from offline_store import (
    compact_print_jobs,
    enqueue_print,
    mark_printed,
    mark_printing,
    print_layout,
    print_queue_summary,
    transaction,
)
from offline_store.database import close_database, open_database
from tests.offline_store.factory import T0, issue, store_with_old_print_jobs

OLD_JOBS = 3000
# The size of a rendered café receipt's printable JSON.
OLD_LAYOUT = '{"lines":"' + "Ελληνικός καφές 2 x 2.50 " * 50 + '"}'


def _rows(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT id, document_id, copy, state, attempts, next_attempt_at, last_error, "
        "created_at, printed_at FROM print_jobs ORDER BY id"
    ).fetchall()


def _table_bytes(conn: sqlite3.Connection, name: str) -> tuple[int, int]:
    size, unused = conn.execute(
        "SELECT sum(pgsize), sum(unused) FROM dbstat WHERE name = ?", (name,)
    ).fetchone()
    return size, unused


@pytest.fixture
def upgraded(tmp_path: Path):
    path = tmp_path / "store.db"
    store_with_old_print_jobs(path, OLD_JOBS, OLD_LAYOUT)
    conn = open_database(path, now=T0)  # schema 7 now
    yield conn
    close_database(conn)


def test_slices_rewrite_old_jobs_densely_and_free_their_pages(upgraded: sqlite3.Connection):
    conn = upgraded
    before_rows, before_counts = _rows(conn), print_queue_summary(conn)
    size, unused = _table_bytes(conn, "print_jobs")
    assert unused > 0.8 * size  # the nearly empty pages the issue measured
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    # A job queued after the upgrade is not the slices' business.
    doc = issue(conn, "after-upgrade")
    with transaction(conn):
        new_job = enqueue_print(conn, doc.id, "{}", copy=False, now=T0)

    slices = []
    while not (done := compact_print_jobs(conn, limit=1000)).done or done.rows:
        slices.append(done)
        assert len(slices) <= 4
    assert [s.rows for s in slices] == [1000, 1000, 1000]

    assert _rows(conn)[:-1] == before_rows
    assert print_queue_summary(conn) == {**before_counts, "queued": 2}
    assert print_layout(conn, OLD_JOBS) == OLD_LAYOUT  # the queued job, its layout moved
    assert print_layout(conn, OLD_JOBS - 1) == OLD_LAYOUT  # the failed one keeps it too
    assert print_layout(conn, new_job) == "{}"
    size, unused = _table_bytes(conn, "print_jobs")
    assert size / OLD_JOBS < 150 and unused < 0.25 * size
    freed = slices[-1].total_freed_bytes
    assert freed == sum(s.freed_bytes for s in slices) > 3 * 1024 * 1024
    assert conn.execute("PRAGMA page_count").fetchone()[0] * 4096 <= pages * 4096 - freed
    assert compact_print_jobs(conn) == type(done)(0, 0, freed, True)
    # The old queued job prints as any other, and its layout goes.
    with transaction(conn):
        mark_printing(conn, OLD_JOBS, now=T0)
        mark_printed(conn, OLD_JOBS, now=T0)
    assert print_layout(conn, OLD_JOBS) is None


def test_a_new_register_has_nothing_to_compact(tmp_path: Path):
    conn = open_database(tmp_path / "new.db", now=T0)
    try:
        assert compact_print_jobs(conn) == type(compact_print_jobs(conn))(0, 0, 0, True)
    finally:
        close_database(conn)
