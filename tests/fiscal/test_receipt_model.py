"""Bad receipts are refused with the field path and the rule."""

import pytest
from pydantic import ValidationError

from agent.api.errors import from_validation_error
from agent.fiscal.receipt_model import (
    Customer,
    PaymentSignRequest,
    PosReceiptRequest,
    ReceiptRequest,
    RequestedPrices,
)
from agent.fiscal.vat_number import is_valid_afm
from agent.json_codec import loads

GOOD_LINE = {"description": "Καφές", "quantity": 1, "unit_price": "2.50", "vat_category": 2}
GOOD = {"request_id": "r-1", "lines": [GOOD_LINE], "payments": [{"method": 3, "amount": "2.50"}]}


def problems(body: dict, model=ReceiptRequest) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    error = from_validation_error(caught.value)
    assert error.status == 422
    return {p.path: p.message for p in error.fields}


def with_line(**changes):
    return {**GOOD, "lines": [{**GOOD_LINE, **changes}]}


def test_good_receipt_validates():
    assert ReceiptRequest.model_validate(GOOD).lines[0].vat_category == 2


@pytest.mark.parametrize(
    ("body", "path", "rule"),
    [
        (with_line(quantity=0), "lines[0].quantity", "greater than 0"),
        (with_line(quantity=-2), "lines[0].quantity", "greater than 0"),
        (with_line(unit_price="-1.00"), "lines[0].unit_price", "greater than or equal to 0"),
        (with_line(unit_price="2.505"), "lines[0].unit_price", "2 decimal places"),
        (with_line(vat_category=8), "lines[0].vat_category", "unknown VAT category"),
        (with_line(vat_category=11), "lines[0].vat_category", "unknown VAT category"),
        (with_line(vat_category=7), "lines[0].exemption_cause", "required when vat_category is 7"),
        (
            with_line(exemption_cause=3),
            "lines[0].exemption_cause",
            "only allowed with vat_category 7",
        ),
        (with_line(description="x" * 301), "lines[0].description", "at most 300"),
        (with_line(description="a\x1bb"), "lines[0].description", "control characters"),
        (
            {**GOOD, "payments": [{"method": 9, "amount": "2.50"}]},
            "payments[0].method",
            "payment method",
        ),
        (
            {**GOOD, "payments": [{"method": 7, "amount": "2.50"}]},
            "payments[0].terminal_id",
            "required for card",
        ),
        (
            {**GOOD, "payments": [{"method": 3, "amount": "2.50", "terminal_id": "T"}]},
            "payments[0].terminal_id",
            "only for card",
        ),
        ({**GOOD, "customer": {"vat": "123456789"}}, "customer.vat", "check digit"),
        (
            {**GOOD, "customer": {"mobile_numbers": ["+30 691 234 5678"]}},
            "customer.mobile_numbers[0]",
            "without spaces",
        ),
        (
            {**GOOD, "customer": {"mobile_numbers": ["2101234567"]}},
            "customer.mobile_numbers[0]",
            "Greek mobiles",
        ),
        ({**GOOD, "customer": {"emails": ["not-an-email"]}}, "customer.emails[0]", "e-mail"),
        ({**GOOD, "delivery": {"email": True}}, "delivery.email", "needs customer.emails"),
        ({**GOOD, "type": "11.4"}, "correlated_marks", "MARK of the original"),
        ({**GOOD, "correlated_marks": [1]}, "correlated_marks", "only for 11.4"),
        ({**GOOD, "payments": []}, "payments", "at least one payment"),
        ({**GOOD, "surprise": 1}, "surprise", "Extra inputs"),
        ({**GOOD, "request_id": "has space"}, "request_id", "pattern"),
    ],
)
def test_rule_is_named_with_its_field(body, path, rule):
    found = problems(body)
    assert path in found, found
    assert rule in found[path], found[path]


def test_money_from_json_is_decimal_and_nan_is_refused():
    body = loads(
        b'{"request_id":"r","lines":[{"description":"x","quantity":1,"unit_price":0.1,"vat_category":1}],"payments":[{"method":3,"amount":0.1}]}'
    )
    request = ReceiptRequest.model_validate(body)
    assert str(request.lines[0].unit_price) == "0.1"
    found = problems({**GOOD, "payments": [{"method": 3, "amount": "NaN"}]})
    assert "payments[0].amount" in found


def test_a_stored_request_gives_back_the_unit_prices_it_named_to_the_digit():
    lines = [GOOD_LINE, {**GOOD_LINE, "unit_price": "3.5"}, {**GOOD_LINE, "unit_price": 4}]
    stored = ReceiptRequest.model_validate({**GOOD, "lines": lines}).model_dump_json()
    prices = RequestedPrices.of_stored_request(stored).unit_prices()
    assert [str(price) for price in prices] == ["2.50", "3.5", "4"]
    pos = PosReceiptRequest.model_validate(
        {
            "request_id": "p",
            "payments": [
                {"method": 7, "amount": "1.00", "terminal_id": "T", "transaction_id": "t"}
            ],
        }
    )
    assert RequestedPrices.of_stored_request(pos.model_dump_json()).unit_prices() == []


def test_pos_receipt_takes_card_payments_only():
    found = problems(
        {"request_id": "p", "payments": [{"method": 3, "amount": "1.00"}]}, PosReceiptRequest
    )
    assert "payments" in found


def test_sign_request_needs_lines_for_a_new_receipt():
    found = problems({"request_id": "s", "terminal_id": "T1", "amount": "2.50"}, PaymentSignRequest)
    assert "lines" in found


@pytest.mark.parametrize(
    ("vat", "valid"),
    [
        ("094019245", True),
        ("EL094019245", True),
        ("154697391", True),
        ("123456789", False),
        ("000000000", False),
        ("12345678", False),
        ("09401924A", False),
    ],
)
def test_afm_check_digit(vat, valid):
    assert is_valid_afm(vat) is valid


@pytest.mark.parametrize("vat", ["094019245", "EL094019245", "el094019245"])
def test_customer_vat_is_stored_without_the_country_prefix(vat):
    assert Customer(vat=vat).vat == "094019245"


def test_a_customer_vat_on_a_retail_document_names_the_field_and_another_document_type():
    found = problems({**GOOD, "customer": {"vat": "094019245", "name": "Πελάτης Α.Ε."}})
    assert "another document type" in found["customer.vat"]
    assert "no counterpart" in found["customer.vat"]
    contact = {"name": "Πελάτης", "emails": ["p@x.gr"], "mobile_numbers": ["+306912345678"]}
    assert ReceiptRequest.model_validate({**GOOD, "customer": contact}).customer is not None


@pytest.mark.parametrize("document_type", ["11.1", "11.4"])
def test_signing_a_retail_document_or_its_refund_needs_its_lines(document_type):
    body = {
        "request_id": "s",
        "terminal_id": "T1",
        "amount": "2.50",
        "document_type": document_type,
    }
    assert document_type in problems(body, PaymentSignRequest)["lines"]
    PaymentSignRequest.model_validate({**body, "lines": [GOOD_LINE]})


@pytest.mark.parametrize("document_type", ["8.4", "8.5"])
def test_signing_a_pos_receipt_or_return_takes_the_amount_only(document_type):
    body = {
        "request_id": "s",
        "terminal_id": "T1",
        "amount": "2.50",
        "document_type": document_type,
    }
    PaymentSignRequest.model_validate(body)
    assert "no lines" in problems({**body, "lines": [GOOD_LINE]}, PaymentSignRequest)["lines"]


def test_texts_that_str_isprintable_passes_hold_no_control_character() -> None:
    """The validator's fast path: over every code point, what `isprintable` passes is never
    Cc, Cf or Cs; what it refuses but is allowed (a no-break space, private use) still passes."""
    import sys
    import unicodedata

    from agent.fiscal.receipt_model import _printable

    passed_controls = [
        hex(point)
        for point in range(sys.maxunicode + 1)
        if chr(point).isprintable() and unicodedata.category(chr(point)) in ("Cc", "Cf", "Cs")
    ]
    assert passed_controls == []
    assert _printable("Καφές\u00a0διπλός \ue000") == "Καφές\u00a0διπλός \ue000"
    for control in ("a\x1bb", "a\u200bb", "a\u202eb", "a\ud800b"):
        with pytest.raises(ValueError, match="control characters"):
            _printable(control)
