"""A table's bill in the amounts its order slips carried, and the parts its guests pay.

Every 8.6 was priced line by line (half-up, `agent.fiscal.amounts`). A receipt that pays the
table carries those rounded amounts and never re-prices the summed quantities, so per VAT rate
the receipts of a table add up to exactly the 8.6 documents they connect: three slips of 2.50 at
24 % are 3 × (2.02 + 0.48) = 6.06 / 1.44, where pricing 3 × 2.50 at once would give 6.05 / 1.45.

A guest pays part of the bill in one of two ways:
- `lines`: items of the bill with quantities. All of an item's remaining quantity takes exactly
  its remaining amounts; part of it is priced like an order line (half-up).
- `amount`: a share of what is left, apportioned over the VAT rates by `apportion`.
The receipt that pays what is left (no amount and no lines, or the whole amount) takes exactly
the remainder, per item, or per VAT rate once a share was paid: the last payer takes the cents
the earlier shares rounded away. Pure functions; the use case (`agent.core.tables`) reads the
table from the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from pydantic import BaseModel, ConfigDict

from agent.fiscal.amounts import CENT, HUNDRED, LineAmounts, line_amounts, to_cents
from agent.fiscal.errors import DomainError, FieldProblem
from agent.fiscal.orders import ItemKey
from agent.fiscal.provider_payloads import PricedLine
from agent.fiscal.receipt_model import ReceiptLine
from agent.fiscal.tax_codes import VAT_RATES

ZERO = Decimal("0.00")
SHARE_DESCRIPTION = "Λογαριασμός τραπεζιού"  # a share of the bill at one VAT rate


@dataclass(frozen=True)
class Amounts:
    net: Decimal
    vat: Decimal
    gross: Decimal

    def plus(self, other: Amounts) -> Amounts:
        return Amounts(self.net + other.net, self.vat + other.vat, self.gross + other.gross)

    def minus(self, other: Amounts) -> Amounts:
        return Amounts(self.net - other.net, self.vat - other.vat, self.gross - other.gross)

    def negated(self) -> Amounts:
        return Amounts(-self.net, -self.vat, -self.gross)


NO_AMOUNTS = Amounts(ZERO, ZERO, ZERO)


@dataclass(frozen=True)
class Share:
    """A VAT rate of the bill (with what else decides a line's classification)."""

    vat_category: int
    exemption_cause: int | None
    kind: str


@dataclass(frozen=True)
class PricedOrder:
    """An open 8.6 of the table: its lines and the amounts its document carried per line."""

    is_return: bool
    lines: Sequence[ReceiptLine]
    amounts: Sequence[Amounts]


class PaidLine(BaseModel):
    """One line of a receipt that paid the table: an item (`share` false) or a share of the
    bill at one VAT rate (`share` true), with the amounts the receipt carried."""

    model_config = ConfigDict(frozen=True)

    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_category: int
    exemption_cause: int | None
    unit: int
    code: str | None
    kind: str
    net: Decimal
    vat: Decimal
    gross: Decimal
    share: bool

    @property
    def amounts(self) -> Amounts:
        return Amounts(self.net, self.vat, self.gross)

    @property
    def key(self) -> ItemKey:
        return ItemKey.of(self)

    def priced(self) -> PricedLine:
        rate = VAT_RATES[self.vat_category]
        return PricedLine(
            description=self.description,
            quantity=self.quantity,
            unit=self.unit,
            vat_category=self.vat_category,
            exemption_cause=self.exemption_cause,
            code=self.code,
            kind=self.kind,
            amounts=LineAmounts(
                net=self.net,
                vat=self.vat,
                gross=self.gross,
                rate=rate,
                vat_category=self.vat_category,
                net_unit_price=(self.net / self.quantity).quantize(Decimal("0.0001")),
            ),
        )


class PaidLines(BaseModel):
    """What a part payment carried, stored with it (`table_payments.paid_json`)."""

    lines: list[PaidLine]


@dataclass(frozen=True)
class Item:
    quantity: Decimal
    amounts: Amounts


@dataclass(frozen=True)
class Bill:
    """The table now: items not yet paid by item, what is left per share, totals."""

    items: dict[ItemKey, Item]
    left_by_share: dict[Share, Amounts]
    total: Decimal
    paid: Decimal
    shares_paid: bool

    @property
    def left(self) -> Decimal:
        return self.total - self.paid


def share_of(key: ItemKey) -> Share:
    return Share(key.vat_category, key.exemption_cause, key.kind)


def table_bill(orders: Iterable[PricedOrder], payments: Iterable[PaidLines]) -> Bill:
    """Ordered minus returned, in the orders' own amounts, minus what was paid."""
    items: dict[ItemKey, Item] = {}
    total = ZERO
    for order in orders:
        sign = -1 if order.is_return else 1
        for line, amounts in zip(order.lines, order.amounts, strict=True):
            key = ItemKey.of(line)
            signed = amounts.negated() if order.is_return else amounts
            had = items.get(key, Item(Decimal("0"), NO_AMOUNTS))
            items[key] = Item(had.quantity + sign * line.quantity, had.amounts.plus(signed))
            total += signed.gross
    paid = ZERO
    share_payments: list[PaidLine] = []
    for payment in payments:
        for paid_line in payment.lines:
            paid += paid_line.gross
            if paid_line.share:
                share_payments.append(paid_line)
                continue
            had = items[paid_line.key]
            items[paid_line.key] = Item(
                had.quantity - paid_line.quantity, had.amounts.minus(paid_line.amounts)
            )
    left: dict[Share, Amounts] = {}
    for key, item in items.items():
        left[share_of(key)] = left.get(share_of(key), NO_AMOUNTS).plus(item.amounts)
    for paid_line in share_payments:
        share = share_of(paid_line.key)
        left[share] = left.get(share, NO_AMOUNTS).minus(paid_line.amounts)
    ordered = dict(sorted(left.items(), key=lambda kv: (kv[0].vat_category, kv[0].kind)))
    return Bill(items, ordered, total, paid, shares_paid=bool(share_payments))


def rest_lines(bill: Bill) -> list[PaidLine]:
    """What is left, exactly: per item while only items were paid, else per share. Empty when
    nothing is left; amounts negative when the table owes the guest (a return after paying)."""
    by_item = not bill.shares_paid and all(item.quantity >= 0 for item in bill.items.values())
    if by_item:
        return _item_rest(bill.items)
    return [
        _share_line(share, amounts)
        for share, amounts in bill.left_by_share.items()
        if amounts != NO_AMOUNTS
    ]


def _item_rest(items: dict[ItemKey, Item]) -> list[PaidLine]:
    """The items left, each with its remaining amounts. An item returned in full by one slip
    after several slips ordered it can keep a cent of net against a cent of VAT (the slips
    rounded apart): that cent goes onto the first item left at the same VAT rate, so per rate
    the receipt still adds up to the slips."""
    left = {key: item for key, item in items.items() if item.quantity > 0}
    for key, item in items.items():
        if item.quantity != 0 or item.amounts == NO_AMOUNTS:
            continue
        same = next((k for k in left if share_of(k) == share_of(key)), None)
        if same is not None:
            left[same] = Item(left[same].quantity, left[same].amounts.plus(item.amounts))
    return [item_line(key, item.quantity, item.amounts) for key, item in left.items()]


def lines_part(
    bill: Bill, requested: Sequence[ReceiptLine], *, prices_include_vat: bool
) -> list[PaidLine]:
    """The items a guest pays, each at most the quantity the table has left of it."""
    if bill.shares_paid:
        raise TablePartRefused(
            "this table was paid in part by amount: pay by amount, or the rest",
            [FieldProblem("lines", "not after an amount was paid on the table")],
        )
    remaining = {key: item for key, item in bill.items.items()}
    paid: list[PaidLine] = []
    problems: list[FieldProblem] = []
    for index, line in enumerate(requested):
        key = ItemKey.of(line)
        item = remaining.get(key, Item(Decimal("0"), NO_AMOUNTS))
        if line.quantity > item.quantity:
            problems.append(
                FieldProblem(
                    f"lines[{index}]",
                    f"the table has {item.quantity} of {line.description!r} at "
                    f"{line.unit_price} (VAT category {line.vat_category}) left to pay",
                )
            )
            continue
        if line.quantity == item.quantity:
            amounts = item.amounts
        else:
            priced = line_amounts(
                line.quantity,
                line.unit_price,
                line.vat_category,
                prices_include_vat=prices_include_vat,
            )
            amounts = Amounts(priced.net, priced.vat, priced.gross)
        remaining[key] = Item(item.quantity - line.quantity, item.amounts.minus(amounts))
        paid.append(item_line(key, line.quantity, amounts))
    if problems:
        raise TablePartRefused("lines name more than the table has left to pay", problems)
    return paid


def amount_part(bill: Bill, amount: Decimal) -> list[PaidLine]:
    """A share of what is left, apportioned over the VAT rates; the whole of it is the rest."""
    if amount > bill.left:
        raise TablePartRefused(
            f"the table has {bill.left} left to pay",
            [FieldProblem("amount", f"more than the {bill.left} left on the table")],
        )
    if amount == bill.left:
        return rest_lines(bill)
    open_shares = {s: a.gross for s, a in bill.left_by_share.items() if a.gross > 0}
    return [
        _share_line(share, _gross_amounts(share, gross))
        for share, gross in apportion(amount, open_shares).items()
        if gross > 0
    ]


def apportion(amount: Decimal, weights: dict[Share, Decimal]) -> dict[Share, Decimal]:
    """`amount` split over the shares in proportion to their weights, to the cent: each share
    gets its proportional part rounded down to the cent, and the cents still missing go one
    each to the shares with the largest parts rounded away (ties: the earlier share, in VAT
    category order). The parts add up to `amount` exactly."""
    whole = sum(weights.values(), ZERO)
    exact = {share: amount * weight / whole for share, weight in weights.items()}
    parts = {share: value.quantize(CENT, rounding=ROUND_DOWN) for share, value in exact.items()}
    missing = int((amount - sum(parts.values(), ZERO)) / CENT)
    by_remainder = sorted(exact, key=lambda share: exact[share] - parts[share], reverse=True)
    for share in by_remainder[:missing]:
        parts[share] += CENT
    return parts


def _gross_amounts(share: Share, gross: Decimal) -> Amounts:
    net = to_cents(gross / (1 + VAT_RATES[share.vat_category] / HUNDRED))
    return Amounts(net, gross - net, gross)


def item_line(key: ItemKey, quantity: Decimal, amounts: Amounts) -> PaidLine:
    """An item of the bill as a paid line carrying the given amounts."""
    return PaidLine(
        **key.attributes(),
        quantity=quantity,
        net=amounts.net,
        vat=amounts.vat,
        gross=amounts.gross,
        share=False,
    )


def _share_line(share: Share, amounts: Amounts) -> PaidLine:
    return PaidLine(
        description=SHARE_DESCRIPTION,
        quantity=Decimal("1"),
        unit_price=amounts.gross,
        vat_category=share.vat_category,
        exemption_cause=share.exemption_cause,
        unit=1,
        code=None,
        kind=share.kind,
        net=amounts.net,
        vat=amounts.vat,
        gross=amounts.gross,
        share=True,
    )


class TablePartRefused(DomainError):
    """A part payment names more than the table has left, or mixes the ways of paying."""
