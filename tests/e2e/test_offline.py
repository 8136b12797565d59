"""End to end, offline: each provider fault gives offline receipts with the right delayed code,
legend and offline QR without waiting for the provider's late answer; after recovery the sync
delivers every one exactly once with the delayed code the sandbox records.

Nothing here uses a stopwatch: that the agent gave up on its own timeout shows in the answer (a
`delayed` receipt for a provider that never answers, or answers after the timeout)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from agent.clock import ATHENS
from agent.core.answers import DocumentAnswer, ReceiptList
from agent.fiscal.offline_qr import OfflineQrFields, offline_signature, qr_amount
from agent.secrets import ApiKey
from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, parsed, sample_value, wait_for

pytestmark = pytest.mark.e2e

# Timeouts generous enough that a loaded CI machine does not turn a slow 408 into a timeout
# (which would rightly be code 1), short enough to keep the blackhole case quick.
CONNECT_TIMEOUT_S, READ_TIMEOUT_S, TOTAL_TIMEOUT_S = 2.0, 4.0, 5.0

e2e_stack_process, stack = e2e_stack(
    connect_timeout_s=CONNECT_TIMEOUT_S,
    read_timeout_s=READ_TIMEOUT_S,
    total_timeout_s=TOTAL_TIMEOUT_S,
)

LEGEND_PROVIDER = "Απώλεια Διασύνδεσης Οντότητας - Παρόχου"
LEGEND_AADE = "Απώλεια Διασύνδεσης Παρόχου – ΑΑΔΕ"
# mode: delayed code, legend, how the first (attempted) send's error begins
MODES = {
    "down": (1, LEGEND_PROVIDER, "unreachable: "),
    "blackhole": (1, LEGEND_PROVIDER, "unreachable: "),
    "aade_down": (2, LEGEND_AADE, "AADE unavailable: "),
    "error500": (1, LEGEND_PROVIDER, "unreachable: HTTP 500"),
}


def _receipts_counted(stack: E2EStack, outcome: str) -> float:
    """`pos_agent_receipts_total` of 11.1 receipts for one outcome of the first transmission
    (0 if never seen)."""
    value = sample_value(
        stack.get("/metrics").text, "pos_agent_receipts_total", type="11.1", outcome=outcome
    )
    return value or 0.0


def _check_offline_qr(stack: E2EStack, answer: DocumentAnswer) -> None:
    url = urlsplit(answer.offline_qr_url)
    assert url.path.endswith("/TransmissionFailure")
    query = {key: values[0] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
    key = stack.api_key()
    assert key not in answer.offline_qr_url
    fields = OfflineQrFields(
        issuer_tin=query["issuerTin"],
        customer_tin=query["customerTin"],
        customer_name=query["customerName"],
        invoice_type=query["invoiceType"],
        series=query["series"],
        number=query["number"],
        date_issued=query["dateIssued"],
        total_amount=query["totalAmount"],
        total_net_amount=query["totalNetAmount"],
        total_vat_amount=query["totalVatAmount"],
        internal_id=query["internalId"],
    )
    assert query["signature"] == offline_signature(fields, ApiKey(key))
    assert (fields.series, fields.number) == (answer.series, str(answer.number))
    assert fields.total_amount == qr_amount(Decimal(answer.total))
    assert fields.internal_id == answer.internal_id
    issued = datetime.fromisoformat(answer.issued_at).astimezone(ATHENS)
    assert fields.date_issued == issued.strftime("%Y%m%d%H%M%S")


def _check_offline_answer(
    stack: E2EStack, answer: DocumentAnswer, code: int, legend: str, *, at_provider: bool = False
) -> None:
    assert answer.state == "delayed"
    assert answer.offline is True
    assert answer.delayed_code == code
    assert answer.legend == legend
    assert answer.mark is None
    issued = datetime.fromisoformat(answer.issued_at).astimezone(ATHENS)
    end_of_next_day = datetime.combine(
        issued.date() + timedelta(days=2), datetime.min.time(), tzinfo=ATHENS
    )
    assert datetime.fromisoformat(answer.due_at) == end_of_next_day
    _check_offline_qr(stack, answer)
    if not at_provider:
        assert stack.provider_document(answer.uid) is None


def _sync_until_accepted(stack: E2EStack, receipt_ids: list[int]) -> list[DocumentAnswer]:
    def all_accepted() -> list[DocumentAnswer] | None:
        stack.post("/v1/sync", {})
        receipts = [stack.receipt(receipt_id) for receipt_id in receipt_ids]
        return receipts if all(r.state == "accepted" for r in receipts) else None

    return wait_for(all_accepted, timeout_s=30, what=f"receipts {receipt_ids} to be accepted")


@pytest.mark.parametrize("mode", list(MODES))
def test_offline_receipts_then_recovery_delivers_each_once(stack: E2EStack, mode: str) -> None:
    code, legend, first_error = MODES[mode]
    stack.set_faults(mode)

    first = stack.issue(cash_receipt(f"offline-{mode}-1"))
    _check_offline_answer(stack, first, code, legend)
    assert first.last_error.startswith(first_error), first.last_error
    assert stack.breaker() == "open" or mode == "aade_down"  # the probe may close it on 408
    counted_at_once = _receipts_counted(stack, "breaker_open")

    later = []
    for index in (2, 3):
        answer = stack.issue(cash_receipt(f"offline-{mode}-{index}"))
        _check_offline_answer(stack, answer, code, legend)
        if mode != "aade_down":  # a 408 answers fast; the probe may close the breaker on it
            # Went offline without calling the provider: no wait on a timeout at all.
            assert "breaker open" in answer.last_error, answer.last_error
        later.append(answer)
    assert [a.number for a in later] == [first.number + 1, first.number + 2]
    if mode != "aade_down":  # issued without a send, and still counted as issued
        assert _receipts_counted(stack, "breaker_open") == counted_at_once + 2

    delayed = parsed(stack.get("/v1/receipts", state="delayed"), ReceiptList, 200).receipts
    issued = [first, *later]
    assert {a.receipt_id for a in issued} <= {r.receipt_id for r in delayed}

    stack.set_faults("ok")
    synced = _sync_until_accepted(stack, [a.receipt_id for a in issued])

    for before, after in zip(issued, synced, strict=True):
        assert (after.number, after.uid) == (before.number, before.uid)
        assert after.mark is not None and len(str(after.mark)) == 15
        assert after.delayed_code == code
        provider = stack.provider_document(after.uid)
        assert provider is not None
        assert provider["mark"] == after.mark
        assert provider["submissions"] == 1, provider
        assert provider["is_delayed_code"] == code
    stack.close_breaker()


def test_offline_documents_keep_the_api_key_out_of_the_logs(stack: E2EStack) -> None:
    stack.set_faults("down")
    answer = stack.issue(cash_receipt("offline-log-1"))
    assert answer.offline_qr_url
    stack.set_faults("ok")
    _sync_until_accepted(stack, [answer.receipt_id])
    stack.assert_api_key_not_logged()


def test_provider_accepted_but_answered_too_late(stack: E2EStack) -> None:
    """`slow` stores the document, then answers after the total timeout: the till gets an offline
    receipt (so the agent did not wait for that answer), and the sync later adopts the MARK the
    provider already gave it."""
    stack.set_faults("slow", delay_ms=int((TOTAL_TIMEOUT_S + 3) * 1000))

    answer = stack.issue(cash_receipt("offline-late-1"))

    _check_offline_answer(stack, answer, 1, LEGEND_PROVIDER, at_provider=True)
    provider_before = stack.provider_document(answer.uid)
    assert provider_before is not None, "slow must store before it delays the answer"
    numbers = stack.last_numbers()

    stack.set_faults("ok")
    [synced] = _sync_until_accepted(stack, [answer.receipt_id])

    assert synced.mark == provider_before["mark"]
    assert (synced.number, synced.uid) == (answer.number, answer.uid)
    provider = stack.provider_document(answer.uid)
    assert provider is not None
    assert provider["submissions"] == 2  # the late-answered one and the re-send (409)
    assert stack.last_numbers() == numbers


def test_scheduler_alone_delivers_after_recovery(stack: E2EStack) -> None:
    """No POST /v1/sync: the breaker's probe job notices the provider is back and syncs."""
    stack.set_faults("down")
    answer = stack.issue(cash_receipt("offline-scheduler-1"))
    assert answer.state == "delayed"

    stack.set_faults("ok")

    def accepted() -> DocumentAnswer | None:
        current = stack.receipt(answer.receipt_id)
        return current if current.state == "accepted" else None

    synced = wait_for(accepted, timeout_s=20, what="the scheduler to deliver the receipt")
    provider = stack.provider_document(answer.uid)
    assert provider is not None
    assert provider["mark"] == synced.mark
    assert provider["submissions"] == 1
    assert provider["is_delayed_code"] == 1
