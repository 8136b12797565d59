"""Discounts: a line's own and the receipt's, spread over the lines to the cent.

The rule (docs/integrator.md "Discounts"), in the till's prices (gross, or net in net mode):
1. A line's discount is taken from the line's value (quantity × unit price, rounded half-up to
   the cent): `amount` as given, `percent` of the value rounded half-up.
2. The receipt's discount is taken from the sum of the lines after their own discounts and is
   spread over them in proportion to those values: each line's share is rounded down to the
   cent, and the cents left over go one each to the lines with the largest remainders (the
   earlier line first on a tie). The shares add up to the receipt's discount exactly.
3. A line's net and VAT are computed on its value after both discounts, exactly as an
   undiscounted line's; what each step removed from net and VAT is an `Allowance`, which the
   provider payload carries per line.

Pure functions: the same request always prices to the same cents, so a payload rebuilt for a
check and the one frozen at issue agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from agent.fiscal.amounts import CENT, HUNDRED, LineAmounts, to_cents
from agent.fiscal.errors import DomainError, FieldProblem
from agent.fiscal.receipt_model import Discount

ZERO = Decimal("0.00")


class DiscountTooLarge(DomainError):
    """A discount larger than the value it is taken from."""


@dataclass(frozen=True)
class Allowance:
    """One discount step on one line, as the provider payload carries it: the net amount it
    removed (`net`), the VAT it removed (`vat`), and the net value it was taken from."""

    kind: Literal["line", "receipt"]
    percent: Decimal | None
    underlying_net: Decimal
    net: Decimal
    vat: Decimal

    @property
    def gross(self) -> Decimal:
        return self.net + self.vat


@dataclass(frozen=True)
class DiscountedLine:
    amounts: LineAmounts
    allowances: tuple[Allowance, ...]


def discount_value(discount: Discount, base: Decimal) -> Decimal:
    if discount.amount is not None:
        return discount.amount
    assert discount.percent is not None
    return to_cents(base * discount.percent / HUNDRED)


def spread(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """`total` in shares proportional to `weights`, to the cent, adding up exactly (rule 2)."""
    whole = sum(weights, ZERO)
    if total == 0 or whole == 0:
        return [ZERO for _ in weights]
    exact = [total * weight / whole for weight in weights]
    shares = [value.quantize(CENT, rounding=ROUND_DOWN) for value in exact]
    left = int((total - sum(shares, ZERO)) / CENT)
    by_remainder = sorted(range(len(weights)), key=lambda i: (shares[i] - exact[i], i))
    for index in by_remainder[:left]:
        shares[index] += CENT
    return shares


def _split(value: Decimal, rate: Decimal, *, prices_include_vat: bool) -> tuple[Decimal, Decimal]:
    """Net and VAT of a value in cents, rounded as `amounts.line_amounts` rounds a line."""
    if prices_include_vat:
        net = to_cents(value / (1 + rate / HUNDRED))
        return net, value - net
    return value, to_cents(value * rate / HUNDRED)


def line_discounts(
    values: Sequence[Decimal], discounts: Sequence[Discount | None]
) -> list[Decimal]:
    """Each line's own discount (rule 1); refused when larger than the line's value."""
    taken = []
    for index, (value, discount) in enumerate(zip(values, discounts, strict=True)):
        amount = ZERO if discount is None else discount_value(discount, value)
        if amount > value:
            raise DiscountTooLarge(
                f"line {index + 1}: a discount of {amount} on a line worth {value}",
                [
                    FieldProblem(
                        f"lines[{index}].discount.amount",
                        f"must not exceed the line's value {value} (quantity × unit price)",
                    )
                ],
            )
        taken.append(amount)
    return taken


def receipt_shares(after_own: Sequence[Decimal], discount: Discount | None) -> list[Decimal]:
    """The receipt's discount spread over the lines (rule 2); refused when larger than them."""
    if discount is None:
        return [ZERO for _ in after_own]
    whole = sum(after_own, ZERO)
    amount = discount_value(discount, whole)
    if amount > whole:
        raise DiscountTooLarge(
            f"a receipt discount of {amount} on lines worth {whole}",
            [
                FieldProblem(
                    "discount.amount",
                    f"must not exceed the lines' value {whole} after their own discounts",
                )
            ],
        )
    return spread(amount, after_own)


def apply_discounts(
    before: LineAmounts,
    value: Decimal,
    own: tuple[Decimal, Discount | None],
    share: tuple[Decimal, Discount | None],
    *,
    prices_include_vat: bool,
) -> DiscountedLine:
    """A line's amounts after its own discount and its share of the receipt's (rule 3).

    `value` is the line's value before any discount, `own`/`share` the amount taken at each
    step with the discount it came from (for its percentage)."""
    own_amount, own_discount = own
    share_amount, receipt_discount = share
    if own_amount == 0 and share_amount == 0:
        return DiscountedLine(before, ())
    rate = before.rate
    net1, vat1 = _split(value - own_amount, rate, prices_include_vat=prices_include_vat)
    net2, vat2 = _split(
        value - own_amount - share_amount, rate, prices_include_vat=prices_include_vat
    )
    allowances = []
    if own_amount:
        allowances.append(
            Allowance(
                "line",
                own_discount.percent if own_discount else None,
                before.net,
                before.net - net1,
                before.vat - vat1,
            )
        )
    if share_amount:
        allowances.append(
            Allowance(
                "receipt",
                receipt_discount.percent if receipt_discount else None,
                net1,
                net1 - net2,
                vat1 - vat2,
            )
        )
    after = LineAmounts(
        net=net2,
        vat=vat2,
        gross=net2 + vat2,
        rate=rate,
        vat_category=before.vat_category,
        net_unit_price=before.net_unit_price,
    )
    return DiscountedLine(after, tuple(allowances))
