from datetime import timedelta

from offline_store import (
    backlog_summary,
    database_size_bytes,
    mark_accepted,
    mark_delayed,
    mark_rejected,
    transaction,
)
from offline_store.summaries import OldestDelayed
from tests.offline_store.factory import T0, issue, open_store


def test_backlog_summary_counts_codes_oldest_and_overdue(tmp_path):
    conn = open_store(tmp_path)
    empty = backlog_summary(conn, T0)
    assert empty.oldest_delayed is None
    assert empty.delayed_by_code == {1: 0, 2: 0}
    assert sum(empty.by_state.values()) == 0

    docs = [issue(conn, f"r{i}", now=T0) for i in range(5)]
    issue(conn, "card", payload=None)
    due_soon = T0 + timedelta(hours=1)
    due_late = T0 + timedelta(days=1)
    with transaction(conn):
        mark_delayed(
            conn, docs[0].id, code=2, due_at=due_soon, next_attempt_at=None, error="408", now=T0
        )
        mark_delayed(
            conn, docs[1].id, code=1, due_at=due_late, next_attempt_at=None, error="x", now=T0
        )
        mark_delayed(
            conn, docs[2].id, code=1, due_at=due_late, next_attempt_at=None, error="x", now=T0
        )
        mark_rejected(conn, docs[3].id, error="400", now=T0)
        mark_accepted(conn, docs[4].id, mark=None, authentication_code=None, qr_url=None, now=T0)

    summary = backlog_summary(conn, T0 + timedelta(hours=2))
    assert summary.by_state == {
        "reserved": 1,
        "pending": 0,
        "delayed": 3,
        "accepted": 1,
        "rejected": 1,
        "void": 0,
    }
    assert summary.delayed_by_code == {1: 2, 2: 1}
    assert summary.oldest_delayed == OldestDelayed(docs[0].id, T0, due_soon)
    assert (summary.overdue, summary.rejected, summary.reserved, summary.mark_unknown) == (
        1,
        1,
        1,
        1,
    )
    assert backlog_summary(conn, T0).overdue == 0


def test_database_size_includes_the_wal(tmp_path):
    path = tmp_path / "store.db"
    conn = open_store(tmp_path)
    issue(conn, "r1")
    wal = tmp_path / "store.db-wal"
    assert wal.exists()
    assert database_size_bytes(path) == path.stat().st_size + wal.stat().st_size
    assert database_size_bytes(tmp_path / "missing.db") == 0
