"""Reconciliation with the provider's list, end to end: the real daemon, the sandbox's list
(pages of two, so paging is exercised) and the technician's commands.

- A send whose answer is lost, then a re-send answered 409 with a MARK beyond xs:long: the
  receipt is accepted without a known MARK and `status` warns naming it; `pos-agent reconcile`
  takes the MARK from the provider's list and `status` is OK again.
- The provider loses an accepted receipt: reconciliation sends it again and it is listed.
- A total that differs at the provider is flagged for a person, in status and in /metrics;
  a closing carries its reconciliation."""

from __future__ import annotations

import pytest

from agent.cli import main
from agent.commands.doctor import check_database
from agent.config import load_config
from agent.core.day_report import DayReport, Reconciliation
from agent.core.status_report import Level, StatusReport
from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, parsed, sample_value

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack(
    sandbox_page_size=2, sync_interval_s=3600.0, probe_interval_s=3600.0
)


def status(stack: E2EStack) -> StatusReport:
    return parsed(stack.get("/v1/status"), StatusReport, 200)


def reconcile(stack: E2EStack) -> Reconciliation:
    return parsed(stack.post("/v1/reconcile", {}), Reconciliation, 200)


def test_an_unusable_mark_is_a_warning_until_reconcile_finds_it(
    stack: E2EStack, capsys: pytest.CaptureFixture[str]
) -> None:
    for request_id in ("r-before-1", "r-before-2"):
        assert stack.post("/v1/receipts", cash_receipt(request_id)).status_code == 201
    stack.set_faults("bad_mark_409")
    receipt_id = stack.issue(cash_receipt("r-lost-answer")).receipt_id
    assert stack.stored(receipt_id).state == "delayed"  # the 500: the answer was lost
    assert stack.post("/v1/sync", {}).status_code == 200  # re-sent: 409, MARK 10**20
    doc = stack.stored(receipt_id)
    assert (doc.state, doc.mark, doc.mark_unknown) == ("accepted", None, True)

    warned = status(stack)
    assert warned.exit_code is Level.WARN
    [finding] = [f for f in warned.findings if "without a known MARK" in f]
    assert f"({receipt_id})" in finding and "pos-agent reconcile" in finding

    stack.set_faults("ok")
    config = str(stack.stack.config_path)
    assert main(["reconcile", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "1 MARK(s) found" in out and "0 for a person" in out
    held = stack.provider_document(doc.uid)
    assert held is not None and stack.stored(receipt_id).mark == held["mark"]
    assert not stack.stored(receipt_id).mark_unknown
    with stack.database() as conn:
        events = [
            r[0]
            for r in conn.execute(
                "SELECT event FROM journal_named WHERE document_id = ? ORDER BY seq", (receipt_id,)
            )
        ]
    assert "document.mark_resolved" in events
    after = status(stack)
    assert after.exit_code is Level.OK, after.findings
    assert main(["status", "--config", config]) == 0
    screen = capsys.readouterr().out
    assert "Reconciled" in screen and "1 MARK(s) found" in screen
    assert "Closing     receipts since" in screen


def test_a_receipt_the_provider_lost_is_sent_again(stack: E2EStack) -> None:
    receipt_id = stack.issue(cash_receipt("r-to-be-lost")).receipt_id
    uid = stack.stored(receipt_id).uid
    lost = stack.stack.provider().post("/_sandbox/documents/lose", json={"uid": uid})
    assert lost.status_code == 200 and stack.provider_document(uid) is None

    result = reconcile(stack)
    assert result.resent == 1 and result.flagged == [] and result.error is None
    held = stack.provider_document(uid)
    assert held is not None and stack.stored(receipt_id).state == "accepted"
    assert stack.stored(receipt_id).mark == held["mark"]
    again = reconcile(stack)
    assert again.resent == 0 and again.matched >= 1
    with stack.database() as conn:
        events = [
            r[0]
            for r in conn.execute(
                "SELECT event FROM journal_named WHERE document_id = ? ORDER BY seq", (receipt_id,)
            )
        ]
    assert events[-2:] == ["document.resend", "document.accepted"]


def test_another_total_is_flagged_and_the_closing_carries_the_result(stack: E2EStack) -> None:
    assert stack.post("/v1/receipts", cash_receipt("r-changed")).status_code == 201
    stack.set_faults("list_total")
    closing = parsed(stack.post("/v1/closings", {"request_id": "z-reconciled"}), DayReport)
    result = closing.reconciliation
    assert result is not None and len(result.flagged) == 1
    assert "at the provider" in result.flagged[0]
    warned = status(stack)
    assert any("flagged for a person" in f for f in warned.findings), warned.findings
    scrape = stack.get("/metrics").text
    assert sample_value(scrape, "pos_agent_reconciliation_documents", result="flagged") == 1
    assert sample_value(scrape, "pos_agent_reconciliation_failed") == 0

    stack.set_faults("error500")
    failed = reconcile(stack)
    assert failed.error is not None and "could not be reached" in failed.error
    assert any("reconciliation" in f and "failed" in f for f in status(stack).findings)
    stack.set_faults("ok")
    assert stack.post("/v1/reconcile", {"date": "2026-02-30"}).status_code == 422


def test_a_return_held_behind_an_original_without_a_mark_is_named_and_goes_out_once_found(
    stack: E2EStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The original's answer is lost and its re-send's 409 gives no usable MARK: the return
    held behind it is a finding naming both (status, /metrics) until `pos-agent reconcile`
    finds the MARK; the next sync sends the return carrying it."""
    stack.set_faults("bad_mark_409")
    sale_id = stack.issue(cash_receipt("r-held-sale", quantity="2")).receipt_id
    credit_body = {
        **cash_receipt("r-held-credit"),
        "type": "11.4",
        "correlated_receipt_id": sale_id,
    }
    credit_id = stack.issue(credit_body).receipt_id
    assert stack.post("/v1/sync", {}).status_code == 200  # the sale: 409, no usable MARK
    assert stack.stored(sale_id).mark_unknown and stack.stored(credit_id).state == "delayed"

    warned = status(stack)
    [finding] = [f for f in warned.findings if f"return {credit_id} " in f]
    assert finding.startswith("WARN: ") and f"original receipt {sale_id} " in finding
    assert "pos-agent reconcile" in finding
    assert (
        sample_value(
            stack.get("/metrics").text, "pos_agent_stranded_return_documents", why="mark_unknown"
        )
        == 1
    )
    doctor = check_database(load_config(stack.stack.config_path))
    assert doctor.level is Level.WARN and f"return {credit_id} " in doctor.hint, doctor

    stack.set_faults("ok")
    assert main(["reconcile", "--config", str(stack.stack.config_path)]) == 0
    capsys.readouterr()
    mark = stack.stored(sale_id).mark
    assert mark is not None
    assert stack.post("/v1/sync", {}).status_code == 200
    returned = stack.stored(credit_id)
    assert returned.state == "accepted"
    sent = stack.provider_document(returned.uid)
    assert sent is not None and sent["correlated"] == [mark]
    assert not [f for f in status(stack).findings if f"return {credit_id} " in f]
