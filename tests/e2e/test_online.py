"""End to end, online: a cash receipt over the real Unix socket against the sandbox process,
idempotent replays, reads, metrics, OpenAPI, and bad input that must write nothing."""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal as D
from typing import Any

import pytest

from agent.clock import ATHENS
from agent.core.answers import DocumentAnswer, Health, ReceiptList
from agent.fiscal.uid import document_uid
from tests.e2e.stack import ISSUER_VAT, E2EStack, cash_receipt, e2e_stack, parsed, sample_value

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack()


def _uid_from_answer(answer: DocumentAnswer) -> str:
    issued = datetime.fromisoformat(answer.issued_at).astimezone(ATHENS)
    return document_uid(ISSUER_VAT, issued.date(), 0, answer.type, answer.series, answer.number)


def test_cash_receipt_online_is_accepted_once(stack: E2EStack) -> None:
    answer = stack.issue(cash_receipt("online-cash-1"))

    assert answer.state == "accepted"
    assert answer.delayed_code == 0
    assert answer.offline is False
    assert answer.total == "5.00"
    assert len(str(answer.mark)) == 15
    assert answer.uid == _uid_from_answer(answer)
    assert answer.authentication_code
    assert answer.qr_url
    provider = stack.provider_document(answer.uid)
    assert provider is not None
    assert provider["mark"] == answer.mark
    assert provider["submissions"] == 1
    assert provider["is_delayed_code"] == 0
    assert provider["series"] == answer.series
    assert provider["number"] == str(answer.number)
    stored = stack.stored(answer.receipt_id)
    assert stored.mark == answer.mark
    assert stored.state.value == "accepted"


def test_replayed_request_id_returns_the_first_answer(stack: E2EStack) -> None:
    body = cash_receipt("online-replay-1")
    first = stack.issue(body)
    count = stack.document_count()

    again = stack.issue(body, status=200)

    for key in ("receipt_id", "series", "number", "uid", "mark", "issued_at", "state"):
        assert getattr(again, key) == getattr(first, key), key
    assert stack.document_count() == count
    assert stack.provider_document(again.uid)["submissions"] == 1


def test_same_request_id_with_another_body_is_a_conflict(stack: E2EStack) -> None:
    body = cash_receipt("online-reuse-1")
    assert stack.post("/v1/receipts", body).status_code == 201
    count, numbers = stack.document_count(), stack.last_numbers()

    other = cash_receipt("online-reuse-1", price="3.00")
    response = stack.post("/v1/receipts", other)

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "request_id_reused"
    assert stack.document_count() == count
    assert stack.last_numbers() == numbers


def test_equal_amounts_written_differently_are_the_same_body(stack: E2EStack) -> None:
    """`2.50` and `2.5` are one amount: the retry replays the first answer, no 409."""
    body = cash_receipt("online-by-value-1", quantity="2", price="2.50")
    first = stack.issue(body)
    count = stack.document_count()
    same = cash_receipt("online-by-value-1", quantity="2.000", price="2.5")
    same["payments"][0]["amount"] = D("5")

    again = stack.issue(same, status=200)

    assert again.receipt_id == first.receipt_id
    assert stack.document_count() == count


def test_reads_metrics_and_openapi(stack: E2EStack) -> None:
    issued = stack.issue(cash_receipt("online-read-1"))

    one = stack.receipt(issued.receipt_id)
    assert (one.uid, one.mark) == (issued.uid, issued.mark)
    assert stack.get("/v1/receipts/999999").status_code == 404

    accepted = parsed(stack.get("/v1/receipts", state="accepted"), ReceiptList, 200)
    assert issued.receipt_id in [r.receipt_id for r in accepted.receipts]
    delayed = parsed(stack.get("/v1/receipts", state="delayed"), ReceiptList, 200)
    assert all(r.state == "delayed" for r in delayed.receipts)
    bad_state = stack.get("/v1/receipts", state="nonsense")
    assert bad_state.status_code == 422
    assert bad_state.json()["error"]["fields"][0]["path"] == "state"

    metrics = stack.get("/metrics")
    assert metrics.status_code == 200
    assert sample_value(metrics.text, "pos_agent_receipts_total", type="11.1", outcome="accepted")

    openapi = stack.get("/openapi.json")
    assert openapi.status_code == 200
    paths = openapi.json()["paths"]
    assert "/v1/receipts" in paths
    assert "requestBody" in paths["/v1/receipts"]["post"]

    assert parsed(stack.get("/v1/health"), Health, 200).status == "ok"


def _line(**changes: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "description": "Τοστ",
        "quantity": D("1"),
        "unit_price": D("3.00"),
        "vat_category": 1,
    }
    line.update(changes)
    return line


def _receipt(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_id": "bad-input",
        "lines": [_line()],
        "payments": [{"method": 3, "amount": D("3.00")}],
    }
    body.update(changes)
    return body


BAD_INPUT: dict[str, tuple[dict[str, Any] | bytes, str]] = {
    "negative quantity": (_receipt(lines=[_line(quantity=D("-1"))]), "lines[0].quantity"),
    "price with 3 decimals": (
        _receipt(lines=[_line(unit_price=D("3.005"))]),
        "lines[0].unit_price",
    ),
    "unknown VAT category 8": (_receipt(lines=[_line(vat_category=8)]), "lines[0].vat_category"),
    "category 7 without exemption cause": (
        _receipt(lines=[_line(vat_category=7)]),
        "lines[0].exemption_cause",
    ),
    "unknown payment method 9": (
        _receipt(payments=[{"method": 9, "amount": D("3.00")}]),
        "payments[0].method",
    ),
    "payments do not add up": (
        _receipt(payments=[{"method": 3, "amount": D("2.99")}]),
        "payments",
    ),
    "bad customer VAT check digit": (
        _receipt(customer={"vat": "094019246", "name": "Πελάτης"}),
        "customer.vat",
    ),
    "customer VAT on a retail receipt": (
        _receipt(customer={"vat": "094019245", "name": "Πελάτης Α.Ε."}),
        "customer.vat",
    ),
    "mobile with spaces": (
        _receipt(customer={"mobile_numbers": ["+30 691 234 5678"]}),
        "customer.mobile_numbers[0]",
    ),
    "over-long description": (
        _receipt(lines=[_line(description="Α" * 301)]),
        "lines[0].description",
    ),
    "unknown field": (_receipt(discount=D("1.00")), "discount"),
    "11.4 without correlated_marks": (_receipt(type="11.4"), "correlated_marks"),
    "invalid JSON": (b'{"request_id": "bad-input", "lines": [', "(body)"),
    "card payment without terminal": (
        _receipt(payments=[{"method": 7, "amount": D("3.00"), "transaction_id": "T1"}]),
        "payments[0].terminal_id",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(
    stack: E2EStack, case: str
) -> None:
    body, path = BAD_INPUT[case]
    count, numbers = stack.document_count(), stack.last_numbers()

    if isinstance(body, bytes):
        with stack.client() as client:
            response = client.post(
                "/v1/receipts", content=body, headers={"content-type": "application/json"}
            )
    else:
        response = stack.post("/v1/receipts", copy.deepcopy(body))

    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["code"]
    if path == "(body)":
        assert error["code"] == "invalid_json"
    else:
        paths = [f["path"] for f in error.get("fields", [])]
        assert path in paths, (path, error)
    assert stack.document_count() == count
    assert stack.last_numbers() == numbers
    assert stack.stored_by_request("bad-input") is None


def test_api_key_never_reaches_the_logs(stack: E2EStack) -> None:
    assert stack.post("/v1/receipts", cash_receipt("online-log-1")).status_code == 201
    daemon_log = stack.logs()["daemon.log"]
    # The log is really written at INFO with our format (a library's basicConfig must not win),
    # so the check below looks at access lines, not an empty file. (Provider exchanges are
    # logged at DEBUG; test_elise_client checks every logger at DEBUG for the key.)
    assert "INFO pos_agent.daemon: pos-agent ready" in daemon_log
    assert "INFO pos_agent.access: POST /v1/receipts" in daemon_log
    stack.assert_api_key_not_logged()
