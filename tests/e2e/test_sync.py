"""End to end, the backlog sync cut off halfway: by the provider going down (the sync stops
early, the rest stays delayed) and by SIGTERM (the running sync is cancelled, possibly between
an answer and its write). Either way every receipt ends at the provider exactly once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from agent.core.answers import DocumentAnswer
from agent.core.sync_report import SyncReport
from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, parsed, wait_for

pytestmark = pytest.mark.e2e

# Only the tests move the sync: no interval run, and the breaker closes on our sync calls.
e2e_stack_process, stack = e2e_stack(sync_interval_s=3600.0, probe_interval_s=3600.0)

BACKLOG = 24


def _backlog(stack: E2EStack, prefix: str) -> list[DocumentAnswer]:
    stack.set_faults("down")
    answers = [stack.issue(cash_receipt(f"{prefix}-{n}")) for n in range(BACKLOG)]
    assert {answer.state for answer in answers} == {"delayed"}
    return answers


def _at_provider(stack: E2EStack, receipts: list[DocumentAnswer]) -> list[dict[str, Any]]:
    uids = {r.uid for r in receipts}
    return [d for d in stack.provider_documents() if d["uid"] in uids]


def _all_accepted_once(stack: E2EStack, receipts: list[DocumentAnswer]) -> None:
    stack.sync_until_accepted([r.receipt_id for r in receipts])
    documents = _at_provider(stack, receipts)
    assert sorted(d["uid"] for d in documents) == sorted(r.uid for r in receipts)
    marks = {d["uid"]: d["mark"] for d in documents}
    for receipt in receipts:
        assert stack.receipt(receipt.receipt_id).mark == marks[receipt.uid]


def test_provider_lost_mid_sync_stops_it_and_nothing_is_sent_twice(stack: E2EStack) -> None:
    receipts = _backlog(stack, "sync-lost")
    stack.set_faults("slow", delay_ms=300)
    reports: list[SyncReport] = []
    syncing = threading.Thread(
        target=lambda: reports.append(parsed(stack.post("/v1/sync", {}), SyncReport, 200))
    )
    syncing.start()  # probes (the breaker is open), then sends the backlog
    wait_for(
        lambda: len(_at_provider(stack, receipts)) >= 4,
        timeout_s=30,
        what="a few receipts synced",
    )
    stack.set_faults("down")
    syncing.join(timeout=60)

    (report,) = reports
    assert report.stopped_early is True
    assert stack.breaker() == "open"
    synced = len(_at_provider(stack, receipts))
    assert 4 <= synced < BACKLOG
    assert report.accepted == synced
    stack.set_faults("ok")
    stack.close_breaker()
    _all_accepted_once(stack, receipts)
    assert all(d["submissions"] == 1 for d in _at_provider(stack, receipts))


def test_sigterm_mid_sync_cancels_it_and_the_restart_finishes_the_backlog(
    stack: E2EStack,
) -> None:
    receipts = _backlog(stack, "sync-term")
    assert stack.stack.stop_daemon(timeout_s=10) == 0
    stack.set_faults("slow", delay_ms=300)
    stack.stack.start_daemon()  # the start-up sync takes the backlog at once
    wait_for(
        lambda: len(_at_provider(stack, receipts)) >= 4,
        timeout_s=30,
        what="the start-up sync under way",
    )

    assert "stopped mid-run: startup sync" in stack.stop_cleanly()
    assert len(_at_provider(stack, receipts)) < BACKLOG
    stack.set_faults("ok")
    stack.stack.start_daemon()
    _all_accepted_once(stack, receipts)
