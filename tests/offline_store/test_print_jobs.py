from datetime import timedelta

import pytest

from offline_store import (
    InvalidTransition,
    NotFound,
    PrintState,
    enqueue_print,
    fail_print,
    mark_printed,
    mark_printing,
    next_print_job,
    print_jobs_for,
    print_layout,
    print_queue_summary,
    requeue_interrupted,
    retry_print,
    transaction,
    verify_journal,
)
from tests.offline_store.factory import T0, issue, open_store

LAYOUT = '{"lines":[{"text":"ΑΠΟΔΕΙΞΗ ΛΙΑΝΙΚΗΣ"}]}'


@pytest.fixture
def conn(tmp_path):
    connection = open_store(tmp_path)
    yield connection
    connection.close()


def test_job_prints_after_a_retry(conn):
    doc = issue(conn, "r1")
    with transaction(conn):
        job_id = enqueue_print(conn, doc.id, LAYOUT, copy=False, now=T0)
    job = next_print_job(conn, T0)
    assert job is not None
    assert (job.id, job.document_id, job.copy, job.state, job.attempts) == (
        job_id,
        doc.id,
        False,
        PrintState.QUEUED,
        0,
    )
    assert print_layout(conn, job_id) == LAYOUT
    retry_at = T0 + timedelta(seconds=30)
    with transaction(conn):
        mark_printing(conn, job_id, now=T0)
        job = retry_print(conn, job_id, reason="paper out", next_attempt_at=retry_at, now=T0)
    assert (job.state, job.attempts, job.last_error, job.next_attempt_at) == (
        PrintState.QUEUED,
        1,
        "paper out",
        retry_at,
    )
    assert next_print_job(conn, retry_at - timedelta(seconds=1)) is None
    assert next_print_job(conn, retry_at) == job
    done_at = retry_at + timedelta(seconds=2)
    with transaction(conn):
        mark_printing(conn, job_id, now=retry_at)
        job = mark_printed(conn, job_id, now=done_at)
    assert (job.state, job.printed_at, job.last_error) == (PrintState.PRINTED, done_at, None)
    assert next_print_job(conn, done_at) is None
    # A printed job leaves no layout behind: a reprint is rebuilt from the document.
    assert print_layout(conn, job_id) is None
    assert conn.execute("SELECT count(*) FROM print_layouts").fetchone()[0] == 0
    events = [
        r[0] for r in conn.execute("SELECT event FROM journal_named WHERE event LIKE 'print.%'")
    ]
    assert events == [
        "print.queued",
        "print.printing",
        "print.retry",
        "print.printing",
        "print.printed",
    ]
    assert verify_journal(conn).ok


def test_oldest_job_first_and_copies_kept_per_document(conn):
    first = issue(conn, "r1")
    second = issue(conn, "r2")
    with transaction(conn):
        a = enqueue_print(conn, first.id, LAYOUT, copy=False, now=T0)
        b = enqueue_print(conn, second.id, LAYOUT, copy=False, now=T0)
        c = enqueue_print(conn, first.id, LAYOUT, copy=True, now=T0)
    assert next_print_job(conn, T0).id == a
    assert [(j.id, j.copy) for j in print_jobs_for(conn, first.id)] == [(a, False), (c, True)]
    with transaction(conn):
        mark_printing(conn, a, now=T0)
    assert next_print_job(conn, T0).id == b


def test_crash_leaves_printing_jobs_that_are_requeued(conn):
    doc = issue(conn, "r1")
    with transaction(conn):
        job_id = enqueue_print(conn, doc.id, LAYOUT, copy=False, now=T0)
        mark_printing(conn, job_id, now=T0)
    assert next_print_job(conn, T0) is None
    with transaction(conn):
        assert requeue_interrupted(conn, now=T0) == 1
        assert requeue_interrupted(conn, now=T0) == 0
    job = next_print_job(conn, T0)
    assert (job.id, job.state, job.copy, job.last_error) == (
        job_id,
        PrintState.QUEUED,
        True,
        "interrupted by a restart: printed again as a copy",
    )


def test_failed_job_and_summary(conn):
    doc = issue(conn, "r1")
    with transaction(conn):
        failed = enqueue_print(conn, doc.id, LAYOUT, copy=False, now=T0)
        enqueue_print(conn, doc.id, LAYOUT, copy=True, now=T0)
        job = fail_print(conn, failed, reason="no printer configured", now=T0)
    assert (job.state, job.last_error, job.attempts) == (
        PrintState.FAILED,
        "no printer configured",
        1,
    )
    assert print_layout(conn, failed) is None
    assert print_layout(conn, failed + 1) == LAYOUT
    assert print_queue_summary(conn) == {"queued": 1, "printing": 0, "printed": 0, "failed": 1}


def test_invalid_print_transitions(conn):
    doc = issue(conn, "r1")
    with transaction(conn):
        job_id = enqueue_print(conn, doc.id, LAYOUT, copy=False, now=T0)
    for action in (
        lambda: mark_printed(conn, job_id, now=T0),
        lambda: retry_print(conn, job_id, reason="x", next_attempt_at=None, now=T0),
    ):
        with pytest.raises(InvalidTransition, match="is queued"), transaction(conn):
            action()
    with transaction(conn):
        fail_print(conn, job_id, reason="x", now=T0)
    with pytest.raises(InvalidTransition, match="is failed"), transaction(conn):
        mark_printing(conn, job_id, now=T0)
    with pytest.raises(NotFound), transaction(conn):
        mark_printing(conn, 999, now=T0)


def test_job_needs_an_existing_document(conn):
    with pytest.raises(NotFound, match="does not exist"), transaction(conn):
        enqueue_print(conn, 42, LAYOUT, copy=False, now=T0)


def test_a_job_printed_in_the_second_it_was_queued_keeps_no_second_time(conn):
    doc = issue(conn, "r1")
    printed = []
    for later in (timedelta(0), timedelta(seconds=1)):
        with transaction(conn):
            job_id = enqueue_print(conn, doc.id, LAYOUT, copy=bool(later), now=T0)
            mark_printing(conn, job_id, now=T0 + later)
            printed.append(mark_printed(conn, job_id, now=T0 + later))
    stored = conn.execute("SELECT printed_at FROM print_jobs ORDER BY id").fetchall()
    assert [row[0] for row in stored] == ["", (T0 + timedelta(seconds=1)).isoformat()]
    assert [job.printed_at for job in printed] == [T0, T0 + timedelta(seconds=1)]
    assert [job.printed_at for job in print_jobs_for(conn, doc.id)] == [
        T0,
        T0 + timedelta(seconds=1),
    ]
