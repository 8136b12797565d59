"""Another process holds the database's write lock (a second sqlite3 connection, as a backup
tool or a technician's `sqlite3` shell would).

Before: each receipt blocked the event loop for the 5 s busy timeout (longer than the till's 4 s
total timeout), `/v1/health` with it, and then answered 500. The promises: the till is answered
well within its total timeout, with 503 `storage_busy` (retryable) and nothing issued; the daemon
keeps answering other requests; status names the lock and what to do; once the lock is gone the
same request_id issues exactly one receipt."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest

from agent.core.answers import DocumentAnswer, Health, ReceiptList
from agent.core.status_report import Level, StatusReport
from agent.tools.local_stack import LocalStack, cash_receipt, post_json
from tests.e2e.stack import parsed, quiet_settings, running_stack

pytestmark = pytest.mark.e2e

TILL_TOTAL_TIMEOUT_S = 4.0  # what a till waits for an answer (docs/integrator.md, "The socket")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with running_stack(tmp_path, quiet_settings()) as local:
        yield local


def test_a_held_write_lock_is_answered_in_time_and_changes_nothing(stack: LocalStack) -> None:
    with closing(sqlite3.connect(stack.database_path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock until the rollback below
        with stack.client(timeout_s=TILL_TOTAL_TIMEOUT_S) as till:
            refused = post_json(till, "/v1/receipts", cash_receipt("busy-1"))
            assert refused.status_code == 503, refused.text
            error = refused.json()["error"]
            assert error["code"] == "storage_busy" and error["retryable"] is True, error
            assert parsed(till.get("/v1/health"), Health, 200).status == "ok"
            report = parsed(till.get("/v1/status"), StatusReport, 200)
        assert report.exit_code is Level.CRITICAL, report
        [finding] = [f for f in report.findings if "writes are failing" in f]
        assert "busy" in finding and f"fuser -v {stack.database_path}" in finding
        other.execute("ROLLBACK")

    with stack.client() as till:
        issued = parsed(post_json(till, "/v1/receipts", cash_receipt("busy-1")), DocumentAnswer)
        again = post_json(till, "/v1/receipts", cash_receipt("busy-1"))
        assert parsed(again, DocumentAnswer, 200).receipt_id == issued.receipt_id
        listed = parsed(till.get("/v1/receipts"), ReceiptList, 200)
        report = parsed(till.get("/v1/status"), StatusReport, 200)
    assert len(listed.receipts) == 1, listed
    assert not any("writes are failing" in f for f in report.findings), report


def test_a_lock_released_within_the_retry_budget_issues_without_a_503(stack: LocalStack) -> None:
    """A commit of another connection (the printer's thread, a technician's backup) that
    outlasts the daemon's busy wait: the request is run again on the event loop and the till
    gets its receipt, not a 503. The lock is released once the daemon has seen it busy."""
    with (
        ThreadPoolExecutor(max_workers=1) as pool,
        closing(sqlite3.connect(stack.database_path, isolation_level=None)) as other,
    ):
        other.execute("BEGIN IMMEDIATE")
        with stack.client(timeout_s=TILL_TOTAL_TIMEOUT_S) as till:
            pending = pool.submit(post_json, till, "/v1/receipts", cash_receipt("busy-2"))
            with stack.client() as technician:
                while not any(
                    "writes are failing" in finding
                    for finding in parsed(technician.get("/v1/status"), StatusReport, 200).findings
                ):
                    assert not pending.done(), pending.result().text
            other.execute("ROLLBACK")
            issued = pending.result()
    assert issued.status_code == 201, issued.text
    with stack.client() as till:
        assert len(parsed(till.get("/v1/receipts"), ReceiptList, 200).receipts) == 1
