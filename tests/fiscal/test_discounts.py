"""Discounts: a line's own and the receipt's spread to the cent; payload, totals and VAT agree."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.clock import ATHENS
from agent.fiscal.discounts import DiscountTooLarge, spread
from agent.fiscal.document_builder import internal_document_id, price_lines, receipt_payload
from agent.fiscal.provider_payloads import DocumentIdentity, PaymentEntry, payload_discount
from agent.fiscal.receipt_model import Discount, ReceiptRequest, SaleLine
from agent.json_codec import dumps, loads
from tests.fiscal.fixtures import shop_config
from tests.fiscal.qa_shapes import key_paths, qa_body

ISSUED = datetime(2026, 11, 21, 14, 5, 9, tzinfo=ATHENS)

# The sale drawn in docs/receipts/discount-80mm.png: 10 % off the coffees, 1.00 off the receipt.
DISCOUNT_SALE: dict[str, Any] = {
    "request_id": "discount-sale",
    "lines": [
        {
            "description": "Καφές φίλτρου",
            "quantity": "2",
            "unit_price": "3.50",
            "vat_category": 1,
            "discount": {"percent": "10"},
        },
        {"description": "Τυρόπιτα", "quantity": "1", "unit_price": "2.80", "vat_category": 2},
        {"description": "Νερό 500ml", "quantity": "3", "unit_price": "0.50", "vat_category": 2},
    ],
    "discount": {"amount": "1.00"},
    "payments": [{"method": 3, "amount": "9.60"}],
}


def _payload(request: ReceiptRequest, *, gross_mode: bool = True) -> dict[str, Any]:
    config = shop_config(pricing={"prices_include_vat": gross_mode})
    priced = price_lines(request.lines, prices_include_vat=gross_mode, discount=request.discount)
    identity = DocumentIdentity("11.1", "ΑΛΠ", 7, ISSUED, internal_document_id("11.1", "ΑΛΠ", 7))
    entries = [PaymentEntry(method=p.method, amount=p.amount) for p in request.payments]
    # As the provider reads the frozen bytes.
    return loads(dumps(receipt_payload(config, identity, request, priced, entries)))


def test_receipt_discount_over_two_vat_rates_agrees_to_the_cent() -> None:
    payload = _payload(ReceiptRequest.model_validate(DISCOUNT_SALE))
    details = payload["Details"]
    assert [d["Total"] for d in details] == [D("5.70"), D("2.54"), D("1.36")]
    # 7.00 - 0.70 = 6.30; the receipt's 1.00 over 6.30 / 2.80 / 1.50 is 0.5943 / 0.2641 / 0.1415:
    # 0.59 / 0.26 / 0.14 rounded down, and the cent left goes to the largest remainder (line 1).
    coffee = details[0]["AllowancesCharges"]
    assert [(a["Description"], a["Amount"] + a["VatAmount"]) for a in coffee] == [
        ("ΕΚΠΤΩΣΗ", D("0.70")),
        ("ΕΚΠΤΩΣΗ ΑΠΟΔΕΙΞΗΣ", D("0.60")),
    ]
    assert coffee[0]["Percentage"] == 10 and "Percentage" not in coffee[1]
    for detail in details:
        assert detail["NetTotal"] + detail["VATTotal"] == detail["Total"]
        assert detail["AllowancesTotal"] == sum(a["Amount"] for a in detail["AllowancesCharges"])
    summaries = payload["Summaries"]
    assert (summaries["TotalNetAmount"], summaries["TotalVATAmount"]) == (D("8.05"), D("1.55"))
    assert summaries["TotalGrossValue"] == D("9.60")
    assert summaries["totalAllowances"] == sum(d["AllowancesTotal"] for d in details)
    assert payload_discount(payload) == D("1.70")
    # The receipt's own discount at document level, per VAT rate, equals its lines' shares.
    document_level = payload["AllowancesCharges"]
    assert [(a["VatPercentage"], a["Amount"] + a["VatAmount"]) for a in document_level] == [
        (24, D("0.60")),
        (13, D("0.40")),
    ]
    assert [(v["VatAmount"], v["UnderlyingValue"]) for v in payload["VatAnalysis"]] == [
        (D("1.10"), D("4.60")),
        (D("0.45"), D("3.45")),
    ]


def test_discount_fields_have_the_qa_11_1_names_and_types() -> None:
    payload = _payload(ReceiptRequest.model_validate(DISCOUNT_SALE))
    qa, ours = key_paths(qa_body("invoice_11_1.json")), key_paths(payload)
    for path in ("allowancescharges", "details[].allowancestotal", "summaries.totalallowances"):
        assert ours[path] == qa[path], path


def test_a_receipt_without_discounts_carries_zero_allowances() -> None:
    plain = {**DISCOUNT_SALE, "discount": None, "payments": [{"method": 3, "amount": "11.30"}]}
    plain["lines"] = [{k: v for k, v in line.items() if k != "discount"} for line in plain["lines"]]
    payload = _payload(ReceiptRequest.model_validate(plain))
    assert payload["AllowancesCharges"] == []
    assert all(
        d["AllowancesTotal"] == 0 and "AllowancesCharges" not in d for d in payload["Details"]
    )
    assert payload["Summaries"]["totalAllowances"] == 0
    assert payload_discount(payload) == 0


def test_net_mode_discounts_the_net_value() -> None:
    sale = {
        "request_id": "net",
        "lines": [
            {
                "description": "Υπηρεσία",
                "quantity": "1",
                "unit_price": "100.00",
                "vat_category": 1,
                "discount": {"amount": "10.00"},
            }
        ],
        "payments": [{"method": 3, "amount": "111.60"}],
    }
    (detail,) = _payload(ReceiptRequest.model_validate(sale), gross_mode=False)["Details"]
    assert (detail["NetTotal"], detail["VATTotal"], detail["AllowancesTotal"]) == (
        D("90.00"),
        D("21.60"),
        D("10.00"),
    )
    assert detail["AllowancesCharges"][0]["VatAmount"] == D("2.40")


def test_a_line_discount_above_the_line_is_refused_naming_the_line() -> None:
    sale = {**DISCOUNT_SALE, "discount": None}
    sale["lines"] = [
        *DISCOUNT_SALE["lines"][:1],
        {**sale["lines"][1], "discount": {"amount": "2.81"}},
    ]
    request = ReceiptRequest.model_validate(sale)
    with pytest.raises(DiscountTooLarge) as refused:
        price_lines(request.lines, prices_include_vat=True)
    assert refused.value.fields[0].path == "lines[1].discount.amount"
    assert "2.80" in refused.value.fields[0].message


def test_a_receipt_discount_above_the_lines_is_refused() -> None:
    request = ReceiptRequest.model_validate({**DISCOUNT_SALE, "discount": {"amount": "10.61"}})
    with pytest.raises(DiscountTooLarge) as refused:
        price_lines(request.lines, prices_include_vat=True, discount=request.discount)
    assert refused.value.fields[0].path == "discount.amount"


@pytest.mark.parametrize(
    "discount", [{}, {"amount": "1.00", "percent": "5"}, {"percent": "101"}, {"amount": "-1"}]
)
def test_a_discount_names_exactly_one_valid_amount_or_percent(discount: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        ReceiptRequest.model_validate({**DISCOUNT_SALE, "discount": discount})


cents = st.integers(min_value=0, max_value=100_000).map(lambda c: D(c) / 100)


@given(st.lists(cents, min_size=1, max_size=30), st.integers(min_value=0, max_value=100))
def test_shares_add_up_exactly_and_never_exceed_their_line(weights: list[D], percent: int) -> None:
    total = (sum(weights, D(0)) * percent / 100).quantize(D("0.01"), rounding="ROUND_DOWN")
    shares = spread(total, weights)
    assert sum(shares, D(0)) == total
    assert all(D(0) <= share <= weight for share, weight in zip(shares, weights, strict=True))


line_strategy = st.builds(
    lambda q, p, c, d: SaleLine(
        description="x", quantity=q, unit_price=p, vat_category=c, discount=d
    ),
    st.decimals(min_value=D("0.001"), max_value=D("50"), places=3),
    st.decimals(min_value=D("0.01"), max_value=D("500"), places=2),
    st.sampled_from([1, 2, 3, 4, 5, 6]),
    st.one_of(
        st.none(),
        st.builds(
            lambda p: Discount(percent=p),
            st.decimals(min_value=D("0.01"), max_value=D("100"), places=2),
        ),
    ),
)


@given(
    st.lists(line_strategy, min_size=1, max_size=12),
    st.decimals(min_value=D("0.01"), max_value=D("100"), places=2),
    st.booleans(),
)
def test_discounted_totals_are_the_value_less_every_discount(
    lines: list[SaleLine], percent: D, gross_mode: bool
) -> None:
    undiscounted = price_lines(
        [line.model_copy(update={"discount": None}) for line in lines],
        prices_include_vat=gross_mode,
    )
    priced = price_lines(lines, prices_include_vat=gross_mode, discount=Discount(percent=percent))
    taken_net = sum((a.net for line in priced.lines for a in line.allowances), D(0))
    taken_vat = sum((a.vat for line in priced.lines for a in line.allowances), D(0))
    assert priced.totals.net == undiscounted.totals.net - taken_net
    assert priced.totals.vat == undiscounted.totals.vat - taken_vat
    assert all(a.net >= 0 and a.vat >= 0 for line in priced.lines for a in line.allowances)
    assert priced.totals.gross == priced.totals.net + priced.totals.vat
