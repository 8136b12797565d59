"""End to end, the backlog sync cut off halfway: by the provider going down (the sync stops
early, the rest stays delayed) and by SIGTERM (the running sync is cancelled, possibly between
an answer and its write). Either way every receipt ends at the provider exactly once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, wait_for

pytestmark = pytest.mark.e2e

# Only the tests move the sync: no interval run, and the breaker closes on our sync calls.
e2e_stack_process, stack = e2e_stack(sync_interval_s=3600.0, probe_interval_s=3600.0)

BACKLOG = 24


def _backlog(stack: E2EStack, prefix: str) -> list[dict[str, Any]]:
    stack.set_faults("down")
    answers = []
    for n in range(BACKLOG):
        response = stack.post("/v1/receipts", cash_receipt(f"{prefix}-{n}"))
        assert response.status_code == 201, response.text
        assert response.json()["state"] == "delayed"
        answers.append(response.json())
    return answers


def _at_provider(stack: E2EStack, receipts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    uids = {r["uid"] for r in receipts}
    return [d for d in stack.provider_documents() if d["uid"] in uids]


def _all_accepted_once(stack: E2EStack, receipts: list[dict[str, Any]]) -> None:
    stack.sync_until_accepted([r["receipt_id"] for r in receipts])
    documents = _at_provider(stack, receipts)
    assert sorted(d["uid"] for d in documents) == sorted(r["uid"] for r in receipts)
    marks = {d["uid"]: d["mark"] for d in documents}
    for receipt in receipts:
        assert stack.receipt(receipt["receipt_id"]).mark == marks[receipt["uid"]]


def test_provider_lost_mid_sync_stops_it_and_nothing_is_sent_twice(stack: E2EStack) -> None:
    receipts = _backlog(stack, "sync-lost")
    stack.set_faults("slow", delay_ms=300)
    report: dict[str, Any] = {}
    syncing = threading.Thread(target=lambda: report.update(stack.post("/v1/sync", {}).json()))
    syncing.start()  # probes (the breaker is open), then sends the backlog
    wait_for(
        lambda: len(_at_provider(stack, receipts)) >= 4,
        timeout_s=30,
        what="a few receipts synced",
    )
    stack.set_faults("down")
    syncing.join(timeout=60)

    assert report["stopped_early"] is True
    assert stack.breaker() == "open"
    synced = len(_at_provider(stack, receipts))
    assert 4 <= synced < BACKLOG
    assert report["accepted"] == synced
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
