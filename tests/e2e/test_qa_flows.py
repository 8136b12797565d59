"""The provider's own QA suites, translated into calls on our socket: one test per test case of
`Automation/FNB_flows.robot` (TC 01-16, 07.1, 07.2) and `Automation/POS_flows.robot` (TC 01-05)
of github.com/GregKazakou/robotframework, each named after it and asserting what the provider
(the sandbox) received: how many MARKs each receipt connects (the suite's
`expected_marks_count`), its gross and its payments.

The translation: an "8.6 Debit gross=G" is an order of G/5 portions at 5.00 (every QA amount is
a multiple of 5), an "8.6 Credit" a return of portions, "8.6 Cancel" one cancellation per order
(the agent cancels one order per 8.6); an "11.1 Debit gross=G" pays the table: the rest when G
is what is left, else `amount` G (a split bill or a partial payment, the suite's `peek`), in
cash; its "11.4 Credit" is the table's refund when it owes the guest (TC 07.2) or a plain 11.4
of an earlier receipt (TC 06). "Pool Should Be Empty": the table has no open order and the
sandbox's ledger has none open. One stack serves the module.
"""

from __future__ import annotations

import base64
from decimal import Decimal as D
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.core.answers import (
    CancelAnswer,
    ClosingAnswer,
    DocumentAnswer,
    OrderAnswer,
    PaymentAnswer,
    SignatureAnswer,
    TableAnswer,
)
from agent.json_codec import loads
from tests.e2e.stack import ISSUER_VAT, E2EStack, e2e_stack, parsed

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack(food_service=True)

PORTION = D("5.00")
CATEGORY = {13: 2, 24: 1}
TERMINAL = "16000198"
QA_AMOUNT = D("124")  # the POS suite's AMOUNT_TOTAL


def received(stack: E2EStack, mark: int) -> dict[str, Any]:
    """What the sandbox holds for the document with this MARK."""
    found = [d for d in stack.provider_documents() if d["mark"] == mark]
    assert len(found) == 1, f"the sandbox holds {len(found)} documents with MARK {mark}"
    return found[0]


def assert_received(
    stack: E2EStack, answer: DocumentAnswer, *, marks: int, gross: str, payments: list[tuple]
) -> dict[str, Any]:
    document = received(stack, answer.mark)
    assert len(document["connected"]) == marks, document
    assert D(document["gross"]) == D(gross), document
    got = [(p["method"], D(p["amount"])) for p in document["payments"]]
    assert got == [(method, D(amount)) for method, amount in payments], document
    return document


def _payload(stack: E2EStack, answer: DocumentAnswer) -> dict[str, Any]:
    return dict(loads(stack.stored(answer.receipt_id).payload or b""))


class Table:
    """A QA table driven through the agent: the suite's keywords as methods."""

    def __init__(self, stack: E2EStack, name: str) -> None:
        self.stack = stack
        self.name = name
        self.count = 0

    def _id(self, what: str) -> str:
        self.count += 1
        return f"{self.name}-{what}-{self.count}"

    def _portions(self, gross: int, rate: int) -> dict[str, Any]:
        return {
            "description": "Μερίδα",
            "quantity": D(gross) / PORTION,
            "unit_price": PORTION,
            "vat_category": CATEGORY[rate],
        }

    def _slip(self, gross: int, rate: int, kind: str) -> OrderAnswer:
        body = {
            "request_id": self._id(kind),
            "table": self.name,
            "waiter": "QA",
            "kind": kind,
            "lines": [self._portions(gross, rate)],
        }
        answer = parsed(self.stack.post("/v1/orders", body), OrderAnswer)
        assert answer.state == "accepted" and answer.mark, answer
        return answer

    def debit(self, gross: int, rate: int = 13) -> OrderAnswer:
        """Send 8.6 Debit."""
        return self._slip(gross, rate, "order")

    def credit(self, gross: int, rate: int = 13) -> OrderAnswer:
        """Send 8.6 Credit."""
        return self._slip(gross, rate, "return")

    def cancel(self, *orders: OrderAnswer) -> list[CancelAnswer]:
        """Send 8.6 Cancel (of the orders named, each by its own cancellation)."""
        cancels = []
        for order in orders:
            response = self.stack.post(
                f"/v1/orders/{order.receipt_id}/cancel", {"request_id": self._id("cancel")}
            )
            cancels.append(parsed(response, CancelAnswer))
            assert_received(self.stack, cancels[-1], marks=1, gross="0", payments=[])
        return cancels

    def view(self) -> TableAnswer:
        return parsed(self.stack.get(f"/v1/tables/{self.name}"), TableAnswer, 200)

    def pay(self, gross: int, *, expected_marks_count: int) -> ClosingAnswer:
        """Send 11.1 Debit (or the table's 11.4 when it owes the guest): the rest, or a part."""
        left = self.view().left
        body: dict[str, Any] = {"request_id": self._id("pay")}
        if D(gross) != abs(left):
            body["amount"] = D(gross)
        if gross:
            body["payments"] = [{"method": 3, "amount": D(gross)}]
        answer = parsed(self.stack.post(f"/v1/tables/{self.name}/close", body), ClosingAnswer)
        payments = [(3, gross)] if gross else []
        assert_received(
            self.stack, answer, marks=expected_marks_count, gross=str(gross), payments=payments
        )
        return answer

    def pool_should_be_empty(self) -> None:
        assert self.stack.get(f"/v1/tables/{self.name}").status_code == 404
        with self.stack.stack.provider() as client:
            rows = client.get("/_sandbox/orders", params={"table": self.name}).json()["orders"]
        assert rows and all(row["state"] != "open" for row in rows), rows


# -- FNB_flows.robot --------------------------------------------------------------------------


def test_fnb_tc01_simple_close(stack: E2EStack) -> None:
    table = Table(stack, "Q01")
    table.debit(50)
    receipt = table.pay(50, expected_marks_count=1)
    assert receipt.closes_table is True
    table.pool_should_be_empty()


def test_fnb_tc02_order_with_return_before_payment(stack: E2EStack) -> None:
    table = Table(stack, "Q02")
    table.debit(100)
    table.credit(20)
    table.pay(80, expected_marks_count=2)
    table.pool_should_be_empty()


def test_fnb_tc03_multiple_orders_one_close(stack: E2EStack) -> None:
    table = Table(stack, "Q03")
    for gross in (25, 35, 15):
        table.debit(gross)
    table.pay(75, expected_marks_count=3)
    table.pool_should_be_empty()


def test_fnb_tc04_two_rounds_same_table(stack: E2EStack) -> None:
    table = Table(stack, "Q04")
    table.debit(40)
    table.pay(40, expected_marks_count=1)
    table.debit(30)
    table.pay(30, expected_marks_count=1)
    table.pool_should_be_empty()


def test_fnb_tc05_full_cancellation_by_credit_and_new_order(stack: E2EStack) -> None:
    table = Table(stack, "Q05")
    table.debit(60)
    table.credit(60)
    table.debit(45)
    table.pay(45, expected_marks_count=3)
    table.pool_should_be_empty()


def test_fnb_tc06_return_after_receipt_with_11_4(stack: E2EStack) -> None:
    table = Table(stack, "Q06")
    table.debit(50)
    receipt = table.pay(50, expected_marks_count=1)
    credit = stack.post(
        "/v1/receipts",
        {
            "request_id": "Q06-credit",
            "type": "11.4",
            "correlated_marks": [receipt.mark],
            "lines": [table._portions(10, 13)],
            "payments": [{"method": 3, "amount": D("10.00")}],
        },
    )
    document = assert_received(
        stack, parsed(credit, DocumentAnswer), marks=0, gross="10", payments=[(3, 10)]
    )
    assert document["type"] == "11.4" and document["special_category"] == 0


def test_fnb_tc07_1_mixed_complex_flow_11_1_debit(stack: E2EStack) -> None:
    table = Table(stack, "Q07A")
    table.debit(10)
    table.debit(30)
    table.credit(10)
    first = table.pay(20, expected_marks_count=3)  # peek: the table stays open
    table.debit(30)
    second = table.pay(30, expected_marks_count=4)
    table.debit(20)
    table.credit(20)
    last = table.pay(10, expected_marks_count=6)
    assert [r.closes_table for r in (first, second, last)] == [False, False, True]
    connected = [received(stack, r.mark)["connected"] for r in (first, second, last)]
    assert connected[0] == connected[1][:3] and connected[1] == connected[2][:4]
    table.pool_should_be_empty()


def test_fnb_tc07_2_mixed_complex_flow_11_4_credit(stack: E2EStack) -> None:
    table = Table(stack, "Q07B")
    table.debit(10)
    table.debit(30)
    table.credit(10)
    first = table.pay(20, expected_marks_count=3)
    table.debit(30)
    second = table.pay(30, expected_marks_count=4)
    table.debit(20)
    table.credit(40)  # the table now owes the guest 10.00
    view = table.view()
    assert view.left == D("-10") and view.closing_type == "11.4"
    refund = table.pay(10, expected_marks_count=6)
    assert refund.type == "11.4" and refund.closes_table is True
    document = received(stack, refund.mark)
    assert document["special_category"] == 0
    assert first.closes_table is second.closes_table is False
    table.pool_should_be_empty()


def test_fnb_tc08_split_bill(stack: E2EStack) -> None:
    table = Table(stack, "Q08")
    table.debit(40)
    table.debit(40)
    first = table.pay(40, expected_marks_count=2)
    assert first.closes_table is False
    second = table.pay(40, expected_marks_count=2)
    assert received(stack, first.mark)["connected"] == received(stack, second.mark)["connected"]
    table.pool_should_be_empty()


def test_fnb_tc09_partial_payment_then_new_order(stack: E2EStack) -> None:
    table = Table(stack, "Q09")
    table.debit(80)
    table.pay(50, expected_marks_count=1)
    table.debit(25)
    table.pay(55, expected_marks_count=2)
    table.pool_should_be_empty()


def test_fnb_tc10_mixed_vat_rates(stack: E2EStack) -> None:
    table = Table(stack, "Q10")
    table.debit(100, rate=13)
    table.debit(60, rate=24)
    receipt = table.pay(160, expected_marks_count=2)
    categories = {line["VatCategoryCode"] for line in _payload(stack, receipt)["Details"]}
    assert categories == {1, 2}
    table.pool_should_be_empty()


def test_fnb_tc11_cancel_all_before_receipt(stack: E2EStack) -> None:
    table = Table(stack, "Q11")
    orders = [table.debit(50), table.debit(30)]
    table.cancel(*orders)
    table.pool_should_be_empty()


def test_fnb_tc12_partial_cancel_then_pay_rest(stack: E2EStack) -> None:
    table = Table(stack, "Q12")
    m1, m2, m3 = table.debit(40), table.debit(25), table.debit(35)
    table.cancel(m2)
    receipt = table.pay(75, expected_marks_count=2)
    assert received(stack, receipt.mark)["connected"] == [m1.mark, m3.mark]
    table.pool_should_be_empty()


def test_fnb_tc13_cancel_a_credit(stack: E2EStack) -> None:
    table = Table(stack, "Q13")
    m1 = table.debit(60)
    m2 = table.credit(15)
    table.cancel(m2)
    receipt = table.pay(60, expected_marks_count=1)
    assert received(stack, receipt.mark)["connected"] == [m1.mark]
    table.pool_should_be_empty()


def test_fnb_tc14_cancel_mixed_flow(stack: E2EStack) -> None:
    table = Table(stack, "Q14")
    m1, m2 = table.debit(45), table.debit(20)
    table.cancel(m2)
    receipt = table.pay(45, expected_marks_count=1)
    assert received(stack, receipt.mark)["connected"] == [m1.mark]
    m3, m4 = table.debit(30), table.debit(25)
    table.cancel(m3, m4)
    table.pool_should_be_empty()


def test_fnb_tc15_zero_value_receipt_close(stack: E2EStack) -> None:
    table = Table(stack, "Q15")
    table.debit(50, rate=13)
    table.credit(50, rate=13)
    receipt = table.pay(0, expected_marks_count=2)
    [line] = _payload(stack, receipt)["Details"]
    assert line["VatCategoryCode"] == 2 and line["Total"] == D("0")
    table.pool_should_be_empty()


def test_fnb_tc16_zero_after_multiple_offsetting_moves(stack: E2EStack) -> None:
    table = Table(stack, "Q16")
    table.debit(30, rate=13)
    table.debit(20, rate=13)
    table.credit(30, rate=13)
    table.credit(20, rate=13)
    receipt = table.pay(0, expected_marks_count=4)
    assert _payload(stack, receipt)["Details"][0]["VatCategoryCode"] == 2
    table.pool_should_be_empty()


# -- POS_flows.robot --------------------------------------------------------------------------


def _qa_lines() -> list[dict[str, Any]]:
    return [{"description": "Υπηρεσία", "quantity": 1, "unit_price": QA_AMOUNT, "vat_category": 2}]


def _sign(stack: E2EStack, request_id: str, **fields: Any) -> SignatureAnswer:
    body = {"request_id": request_id, "terminal_id": TERMINAL, **fields}
    return parsed(stack.post("/v1/payments/sign", body), SignatureAnswer)


def _card(amount: D, transaction: str, signed: SignatureAnswer | None = None) -> dict[str, Any]:
    card = {"method": 7, "amount": amount, "terminal_id": TERMINAL, "transaction_id": transaction}
    return card if signed is None else {**card, "signature_id": signed.signature_id}


def _validate(stack: E2EStack, signed: SignatureAnswer) -> None:
    """Validate Signpos: the provider's signature verifies over `input` with its public key."""
    key = serialization.load_pem_public_key(stack.public_key_pem())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(
        base64.b64decode(signed.signature),
        signed.input.encode("ascii"),
        ec.ECDSA(hashes.SHA256()),
    )


def _issue(stack: E2EStack, path: str, body: dict[str, Any]) -> DocumentAnswer:
    answer = stack.issue(body, path)
    assert answer.state == "accepted" and answer.mark, answer
    return answer


def test_pos_tc01_signpos_then_11_1_with_payment_details_then_validate(stack: E2EStack) -> None:
    signed = _sign(stack, "P01-sign", amount=QA_AMOUNT, lines=_qa_lines())
    receipt = _issue(
        stack,
        "/v1/receipts",
        {"request_id": "P01", "lines": _qa_lines(), "payments": [_card(QA_AMOUNT, "P01", signed)]},
    )
    assert receipt.receipt_id == signed.receipt_id
    assert_received(stack, receipt, marks=0, gross="124", payments=[(7, 124)])
    _validate(stack, signed)


def test_pos_tc02_signpos_then_8_4_then_validate_then_11_1_connected(stack: E2EStack) -> None:
    signed = _sign(stack, "P02-sign", amount=QA_AMOUNT, document_type="8.4")
    pos = _issue(
        stack,
        "/v1/pos-receipts",
        {"request_id": "P02-84", "payments": [_card(QA_AMOUNT, "P02", signed)]},
    )
    assert_received(stack, pos, marks=0, gross="124", payments=[(7, 124)])
    _validate(stack, signed)
    receipt = _issue(
        stack,
        "/v1/receipts",
        {"request_id": "P02-111", "lines": _qa_lines(), "connected_marks": [pos.mark]},
    )
    document = assert_received(stack, receipt, marks=1, gross="124", payments=[(7, 124)])
    assert document["connected"] == [pos.mark] and document["special_category"] == 0


def test_pos_tc03_11_1_then_signpos_with_mark_then_update_payment(stack: E2EStack) -> None:
    receipt = _issue(
        stack,
        "/v1/receipts",
        {
            "request_id": "P03",
            "lines": _qa_lines(),
            "payments": [{"method": 5, "amount": QA_AMOUNT}],
        },
    )
    signed = _sign(stack, "P03-sign", amount=QA_AMOUNT, receipt_id=receipt.receipt_id)
    assert signed.fields.mark == str(receipt.mark)
    paid = stack.post(
        f"/v1/receipts/{receipt.receipt_id}/payments",
        {"request_id": "P03-pay", "signature_id": signed.signature_id, "transaction_id": "P03"},
    )
    assert parsed(paid, PaymentAnswer).payment_mark
    assert_received(stack, receipt, marks=0, gross="124", payments=[(5, 124)])
    _validate(stack, signed)


def test_pos_tc04_8_4_then_update_payment_is_refused_here(stack: E2EStack) -> None:
    """The provider answers updatePayment on an 8.4 with 400: the agent refuses it before a
    card is charged (at the signature) and never sends it; the sandbox refuses it too."""
    signed = _sign(stack, "P04-sign", amount=QA_AMOUNT, document_type="8.4")
    pos = _issue(
        stack,
        "/v1/pos-receipts",
        {"request_id": "P04-84", "payments": [_card(QA_AMOUNT, "P04", signed)]},
    )
    refused = stack.post(
        "/v1/payments/sign",
        {
            "request_id": "P04-sign2",
            "terminal_id": TERMINAL,
            "amount": QA_AMOUNT,
            "receipt_id": pos.receipt_id,
        },
    )
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert (
        error["code"] == "pos_receipt_not_updatable" and error["fields"][0]["path"] == "receipt_id"
    )
    with stack.stack.provider() as client:
        provider = client.post(
            "/Invoice/updatePayment",
            json={
                "mark": pos.mark,
                "entityVatNumber": ISSUER_VAT,
                "paymentMethods": [
                    {
                        "paymentMethodTypeCode": 7,
                        "amount": 124,
                        "posInput": signed.input,
                        "providersSignature": signed.signature,
                        "terminalId": TERMINAL,
                    }
                ],
            },
            headers={"apikey": stack.api_key()},
        )
    assert provider.status_code == 400, provider.text
    _validate(stack, signed)


def test_pos_tc05_two_11_1_then_signpos_8_4_connected_to_both(stack: E2EStack) -> None:
    first, second = (
        _issue(
            stack,
            "/v1/receipts",
            {
                "request_id": f"P05-{n}",
                "lines": _qa_lines(),
                "payments": [_card(QA_AMOUNT, f"P05-{n}")],
            },
        )
        for n in ("a", "b")
    )
    total = QA_AMOUNT * 2
    signed = _sign(stack, "P05-sign", amount=total, document_type="8.4")
    pos = _issue(
        stack,
        "/v1/pos-receipts",
        {
            "request_id": "P05-84",
            "payments": [_card(total, "P05", signed)],
            "connected_marks": [first.mark, second.mark],
        },
    )
    document = assert_received(stack, pos, marks=2, gross="248", payments=[(7, 248)])
    assert document["connected"] == [first.mark, second.mark]
    _validate(stack, signed)
