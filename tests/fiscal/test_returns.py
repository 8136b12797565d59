"""Returns by receipt id: how much may be given back, and the original's MARK put in."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from agent.fiscal.document_builder import price_lines
from agent.fiscal.receipt_model import SaleLine
from agent.fiscal.returns import (
    ReturnExceedsOriginal,
    check_return_amount,
    check_return_items,
    items,
    needs_original_mark,
    with_original_mark,
)
from agent.json_codec import loads


def _items(*lines: tuple[str, str, str]) -> list:
    sale = [
        SaleLine(description=d, quantity=D(q), unit_price=D(p), vat_category=2) for d, q, p in lines
    ]
    return items(sale, price_lines(sale, prices_include_vat=True).lines)


def test_a_return_may_give_back_what_was_sold_over_several_returns() -> None:
    sold = _items(("Καφές", "3", "2.50"), ("Νερό", "1", "0.50"))
    check_return_items(sold, _items(("Καφές", "1", "2.50")), _items(("Καφές", "2", "2.50")))


def test_more_than_sold_is_refused_naming_the_line_and_the_rule() -> None:
    sold = _items(("Καφές", "3", "2.50"), ("Νερό", "1", "0.50"))
    with pytest.raises(ReturnExceedsOriginal) as refused:
        check_return_items(
            sold,
            _items(("Καφές", "2", "2.50")),
            _items(("Νερό", "1", "0.50"), ("Καφές", "2", "2.50")),
        )
    assert refused.value.fields[0].path == "lines[1].quantity"
    assert "4" in refused.value.fields[0].message and "3" in refused.value.fields[0].message


def test_an_item_the_original_did_not_sell_is_refused() -> None:
    with pytest.raises(ReturnExceedsOriginal) as refused:
        check_return_items(_items(("Καφές", "3", "2.50")), [], _items(("Καφές", "1", "2.60")))
    assert refused.value.fields[0].path == "lines[0]"


def test_a_pos_return_gives_back_at_most_what_is_left() -> None:
    check_return_amount(D("12.00"), D("4.00"), D("8.00"))
    with pytest.raises(ReturnExceedsOriginal) as refused:
        check_return_amount(D("12.00"), D("4.00"), D("8.01"))
    assert refused.value.fields[0].path == "payments"


@pytest.mark.parametrize(
    ("type_code", "frozen", "key"),
    [
        (
            "11.4",
            b'{"IsDelayedCode":0,"CorrelatedInvoices":[],"multipleConnectedMarks":[]}',
            "CorrelatedInvoices",
        ),
        (
            "8.5",
            b'{"isDelayedCode":0,"correlatedInvoices":[],"multipleConnectedMarks":[]}',
            "correlatedInvoices",
        ),
    ],
)
def test_the_mark_goes_into_the_one_empty_correlation_list(
    type_code: str, frozen: bytes, key: str
) -> None:
    assert needs_original_mark(frozen, type_code)
    sent = with_original_mark(frozen, type_code, 400000000000123)
    assert loads(sent)[key] == [400000000000123]
    assert loads(sent)["multipleConnectedMarks"] == []
    assert sent == with_original_mark(frozen, type_code, 400000000000123)  # same bytes each time
    assert not needs_original_mark(sent, type_code)


def test_a_receipt_is_never_taken_for_a_return_waiting_for_its_mark() -> None:
    assert not needs_original_mark(b'{"IsDelayedCode":0,"CorrelatedInvoices":[]}', "11.1")
