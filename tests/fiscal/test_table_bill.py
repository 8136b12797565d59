"""A table's bill in its order slips' own amounts; a share of it apportioned to the cent; the
last payer takes the remainder so the receipts add up to the order slips per VAT rate."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from agent.fiscal.amounts import line_amounts
from agent.fiscal.receipt_model import ReceiptLine
from agent.fiscal.table_bill import (
    Amounts,
    PaidLines,
    PricedOrder,
    Share,
    TablePartRefused,
    amount_part,
    apportion,
    lines_part,
    rest_lines,
    table_bill,
)


def order(*lines: tuple[str, str, str, int], is_return: bool = False) -> PricedOrder:
    receipt_lines = [
        ReceiptLine(description=d, quantity=D(q), unit_price=D(p), vat_category=c)
        for d, q, p, c in lines
    ]
    amounts = []
    for line in receipt_lines:
        priced = line_amounts(
            line.quantity, line.unit_price, line.vat_category, prices_include_vat=True
        )
        amounts.append(Amounts(priced.net, priced.vat, priced.gross))
    return PricedOrder(is_return=is_return, lines=receipt_lines, amounts=amounts)


def per_rate(lines: list) -> dict[int, tuple[D, D]]:
    sums: dict[int, tuple[D, D]] = {}
    for line in lines:
        net, vat = sums.get(line.vat_category, (D(0), D(0)))
        sums[line.vat_category] = (net + line.net, vat + line.vat)
    return sums


def test_the_rest_carries_the_slips_rounded_amounts_not_a_new_rounding() -> None:
    bill = table_bill([order(("Φρέντο", "1", "2.50", 1)) for _ in range(3)], [])
    [line] = rest_lines(bill)
    assert (line.quantity, line.net, line.vat, line.gross) == (
        D(3),
        D("6.06"),
        D("1.44"),
        D("7.50"),
    )


def test_apportioning_rounds_down_and_gives_the_missing_cents_to_the_largest_remainders() -> None:
    low, high = Share(2, None, "goods"), Share(1, None, "goods")
    assert apportion(D("10.00"), {low: D("11.90"), high: D("6.30")}) == {
        low: D("6.54"),
        high: D("3.46"),
    }
    parts = apportion(D("0.01"), {low: D("1.00"), high: D("1.00")})
    assert parts == {low: D("0.01"), high: D("0.00")}  # a tie: the earlier share
    assert sum(apportion(D("33.33"), {low: D("7"), high: D("13")}).values()) == D("33.33")


def test_shares_then_the_rest_add_up_to_the_orders_per_rate() -> None:
    orders = [
        order(("Μουσακάς", "1", "11.90", 2), ("Κρασί", "1", "6.30", 1)),
        order(("Νερό", "3", "0.50", 2)),
    ]
    paid: list[PaidLines] = []
    for amount in ("5.00", "4.99"):
        paid.append(PaidLines(lines=amount_part(table_bill(orders, paid), D(amount))))
    bill = table_bill(orders, paid)
    assert bill.left == D("19.70") - D("9.99") and bill.shares_paid
    last = PaidLines(lines=amount_part(bill, bill.left))
    every = [line for payment in [*paid, last] for line in payment.lines]
    whole = rest_lines(table_bill(orders, []))
    assert per_rate(every) == per_rate(whole)
    assert table_bill(orders, [*paid, last]).left == 0


def test_items_paid_by_quantity_and_refusals_name_the_line() -> None:
    orders = [order(("Μπίρα", "3", "4.50", 1)), order(("Μπίρα", "1", "4.50", 1), is_return=True)]
    bill = table_bill(orders, [])
    beer = ReceiptLine(description="Μπίρα", quantity=D(3), unit_price=D("4.50"), vat_category=1)
    with pytest.raises(TablePartRefused) as refused:
        lines_part(bill, [beer], prices_include_vat=True)
    assert refused.value.fields[0].path == "lines[0]"
    one = beer.model_copy(update={"quantity": D(1)})
    [paid] = lines_part(bill, [one], prices_include_vat=True)
    after = table_bill(orders, [PaidLines(lines=[paid])])
    [rest] = rest_lines(after)
    assert rest.quantity == 1 and after.left == D("4.50")
    with pytest.raises(TablePartRefused):
        amount_part(after, D("4.51"))
    shared = table_bill(orders, [PaidLines(lines=amount_part(bill, D("1.00")))])
    with pytest.raises(TablePartRefused):
        lines_part(shared, [one], prices_include_vat=True)


def test_a_cent_left_by_an_item_returned_in_full_stays_on_the_receipt() -> None:
    """Three slips of 2.50 (3 × 2.02 net) returned by one slip of 3 (6.05 net) leave net 0.01
    and VAT -0.01 on no quantity: the rest carries them on the other item at that rate."""
    orders = [order(("Φρέντο", "1", "2.50", 1)) for _ in range(3)]
    orders += [order(("Φρέντο", "3", "2.50", 1), is_return=True), order(("Τοστ", "1", "4.00", 1))]
    [toast] = rest_lines(table_bill(orders, []))
    assert (toast.description, toast.quantity, toast.gross) == ("Τοστ", D(1), D("4.00"))
    assert (toast.net, toast.vat) == (D("3.23") + D("0.01"), D("0.77") - D("0.01"))
