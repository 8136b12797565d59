"""End to end, crashes: SIGKILL of the daemon after the payload is committed (before the provider
saw it, and after the provider accepted it but before the answer was stored), restart, re-send on
start, exactly one document at the provider and the agent holding its MARK; SIGTERM exits 0."""

from __future__ import annotations

import re
import threading
from typing import Any

import httpx
import pytest

import offline_store as store
from agent.core.answers import DocumentAnswer, PrintDelivery
from agent.json_codec import dumps
from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, wait_for

pytestmark = pytest.mark.e2e

# Long timeouts: the kill must land while the daemon still waits for the provider.
e2e_stack_process, stack = e2e_stack(
    connect_timeout_s=2.0, read_timeout_s=15.0, total_timeout_s=20.0
)


class Till(threading.Thread):
    """The POS sending one receipt; its connection dies with the daemon."""

    def __init__(self, stack: E2EStack, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.body = body
        self.response: httpx.Response | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with self.stack.client(timeout_s=60) as client:
                self.response = client.post(
                    "/v1/receipts",
                    content=dumps(self.body),
                    headers={"content-type": "application/json"},
                )
        except httpx.HTTPError as exc:
            self.error = exc


def _committed(stack: E2EStack, request_id: str) -> store.StoredDocument:
    return wait_for(
        lambda: stack.stored_by_request(request_id),
        timeout_s=10,
        what=f"the write-ahead row of {request_id}",
    )


def _restart_and_wait_accepted(stack: E2EStack, receipt_id: int) -> DocumentAnswer:
    """Restart; the daemon re-sends pending rows on start by itself (no POST /v1/sync here)."""
    stack.stack.start_daemon()

    def accepted() -> DocumentAnswer | None:
        answer = stack.receipt(receipt_id)
        return answer if answer.state == "accepted" else None

    return wait_for(accepted, timeout_s=20, what=f"receipt {receipt_id} accepted after restart")


def _printed(stack: E2EStack, receipt_id: int) -> None:
    """The receipt the crash cut off is printed once, when its outcome is finally recorded."""

    def done() -> PrintDelivery | None:
        state = stack.receipt(receipt_id).delivery.print
        return state if state.state == "printed" else None

    state = wait_for(done, timeout_s=20, what=f"receipt {receipt_id} printed after the restart")
    assert state.requested is True and "copies" not in state.model_fields_set


def _journal_ok(stack: E2EStack) -> bool:
    with stack.database() as conn:
        return store.verify_journal(conn).ok


def test_kill_after_commit_before_the_provider_saw_it(stack: E2EStack) -> None:
    count, numbers = stack.document_count(), stack.last_numbers()
    stack.set_faults("blackhole")
    till = Till(stack, cash_receipt("crash-before-1"))
    till.start()

    row = _committed(stack, "crash-before-1")
    stack.stack.kill_daemon()
    till.join(timeout=10)

    assert till.response is None and till.error is not None
    assert row.state == store.DocumentState.PENDING
    assert row.payload is not None
    assert stack.stored(row.id).state == store.DocumentState.PENDING
    assert stack.provider_document(row.uid) is None

    stack.set_faults("ok")
    answer = _restart_and_wait_accepted(stack, row.id)

    assert (answer.number, answer.uid) == (row.number, row.uid)
    provider = stack.provider_document(row.uid)
    assert provider is not None
    assert provider["submissions"] == 1
    assert provider["mark"] == answer.mark
    stored = stack.stored(row.id)
    assert stored.mark == answer.mark
    assert stored.payload == row.payload  # never rebuilt
    _printed(stack, row.id)
    assert stack.document_count() == count + 1
    assert stack.last_numbers()["ΑΛΠ"] == numbers.get("ΑΛΠ", 0) + 1
    assert _journal_ok(stack)


def test_kill_after_the_provider_accepted_before_the_answer_was_stored(
    stack: E2EStack,
) -> None:
    count, numbers = stack.document_count(), stack.last_numbers()
    # `slow` delays the answer after the document is stored (agent/sandbox/app.py): the
    # provider has it, the agent has not heard back.
    stack.set_faults("slow", delay_ms=30_000)
    till = Till(stack, cash_receipt("crash-after-1"))
    till.start()

    row = _committed(stack, "crash-after-1")
    provider_before = wait_for(
        lambda: stack.provider_document(row.uid),
        timeout_s=10,
        what="the sandbox to store the document",
    )
    stack.stack.kill_daemon()
    till.join(timeout=10)

    assert till.response is None
    assert stack.stored(row.id).state == store.DocumentState.PENDING
    assert stack.stored(row.id).mark is None
    assert provider_before["submissions"] == 1

    stack.set_faults("ok")
    answer = _restart_and_wait_accepted(stack, row.id)

    assert answer.mark == provider_before["mark"]
    assert (answer.receipt_id, answer.number, answer.uid) == (row.id, row.number, row.uid)
    assert answer.mark_unknown is False
    _printed(stack, row.id)
    provider = stack.provider_document(row.uid)
    assert provider is not None
    assert provider["mark"] == provider_before["mark"]
    assert provider["submissions"] == 2  # the original and the re-send answered with 409
    assert stack.document_count() == count + 1
    assert stack.last_numbers()["ΑΛΠ"] == numbers.get("ΑΛΠ", 0) + 1
    assert [d for d in stack.provider_documents() if d["number"] == str(row.number + 1)] == []
    assert _journal_ok(stack)

    # The receipt after the crash takes the next number: nothing was issued twice.
    assert stack.issue(cash_receipt("crash-after-2")).number == row.number + 1


def test_sigterm_exits_zero_within_ten_seconds(stack: E2EStack) -> None:
    assert stack.post("/v1/receipts", cash_receipt("crash-term-1")).status_code == 201

    code = stack.stack.stop_daemon(timeout_s=10)  # raises TimeoutExpired after 10 s

    assert code == 0
    assert not stack.stack.socket_path.exists()
    stack.assert_api_key_not_logged()


def test_sigterm_while_a_probe_hangs_stops_the_probe_cleanly(stack: E2EStack) -> None:
    """The breaker is open and the provider swallows requests: a probe is waiting for its
    timeout when SIGTERM comes. It is cancelled before the database closes: exit 0, no
    traceback, no ERROR, and no "skipped" warning from the scheduler's ticks meanwhile."""
    stack.set_faults("down")
    offline = stack.issue(cash_receipt("crash-term-probe-1"))
    assert offline.state == "delayed", offline
    # Counted before the switch: a probe held right after it counts (read after, a probe held in
    # between would be missed and the next one waits the whole 20 s total timeout).
    held = stack.stack.sandbox_health()["held_requests"]
    stack.set_faults("blackhole")
    wait_for(
        lambda: stack.stack.sandbox_health()["held_requests"] > held,
        timeout_s=10,
        what="a probe held by the blackhole",
    )

    logged = stack.stop_cleanly()
    stopped = re.search(r"stopped mid-run: (.*)", logged)
    assert stopped is not None and "probe" in stopped.group(1).split(", "), logged
    assert "maximum number of running instances" not in stack.logs()["daemon.log"]
    stack.stack.start_daemon()
    stack.set_faults("ok")
    stack.close_breaker()
    stack.sync_until_accepted([offline.receipt_id])
