"""End to end, the breaker's delayed code follows the kind of outage.

Code 1 when the provider cannot be reached, code 2 when it answers 408 (AADE down).

The background probe and sync are parked (one-hour intervals), so the breaker only moves on the
requests the test makes: the order of events is fixed, not raced against a timer."""

from __future__ import annotations

import pytest

from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, wait_for

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack(probe_interval_s=3600.0, sync_interval_s=3600.0)


def _offline(stack: E2EStack, request_id: str) -> dict:
    response = stack.post("/v1/receipts", cash_receipt(request_id))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["state"] == "delayed", answer
    return answer


def test_provider_lost_after_aade_outage_gives_code_1(stack: E2EStack) -> None:
    stack.set_faults("aade_down")
    aade = _offline(stack, "breaker-aade-1")
    assert aade["delayed_code"] == 2
    assert stack.breaker() == "open"

    stack.set_faults("down")
    report = stack.post("/v1/sync", {}).json()  # the probe fails: the provider is out of reach
    assert report["stopped_early"] is True
    assert stack.breaker() == "open"
    lost = _offline(stack, "breaker-down-1")

    assert lost["delayed_code"] == 1
    assert lost["legend"] == "Απώλεια Διασύνδεσης Οντότητας - Παρόχου"

    stack.set_faults("ok")

    def delivered() -> list[dict] | None:
        stack.post("/v1/sync", {})
        answers = [stack.receipt(a["receipt_id"]) for a in (aade, lost)]
        return answers if all(a["state"] == "accepted" for a in answers) else None

    accepted = wait_for(delivered, timeout_s=20, what="both receipts accepted")
    for answer, code in zip(accepted, (2, 1), strict=True):
        provider = stack.provider_document(answer["uid"])
        assert provider is not None
        assert provider["is_delayed_code"] == code
        assert provider["submissions"] == 1


def test_first_receipt_after_recovery_goes_online(stack: E2EStack) -> None:
    stack.set_faults("down")
    _offline(stack, "breaker-recover-1")
    stack.set_faults("ok")
    stack.close_breaker()

    response = stack.post("/v1/receipts", cash_receipt("breaker-recover-2"))

    assert response.status_code == 201, response.text
    assert response.json()["state"] == "accepted"
