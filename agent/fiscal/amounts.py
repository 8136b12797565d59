"""Receipt arithmetic in `Decimal` only.

Each line is rounded to cents once (half-up) and the split is done so that net + VAT = gross per
line; the VAT analysis and the summaries are sums of those rounded lines, so they add up exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from agent.fiscal.tax_codes import VAT_RATES

CENT = Decimal("0.01")
HUNDRED = Decimal("100")


def to_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineAmounts:
    net: Decimal
    vat: Decimal
    gross: Decimal
    rate: Decimal
    vat_category: int
    net_unit_price: Decimal


@dataclass(frozen=True)
class VatBucket:
    vat_category: int
    rate: Decimal
    net: Decimal
    vat: Decimal


@dataclass(frozen=True)
class DocumentTotals:
    net: Decimal
    vat: Decimal
    gross: Decimal


def line_amounts(
    quantity: Decimal, unit_price: Decimal, vat_category: int, *, prices_include_vat: bool
) -> LineAmounts:
    """Gross mode: gross = qty × price, net = gross / (1 + rate). Net mode: vat = net × rate."""
    rate = VAT_RATES[vat_category]
    factor = 1 + rate / HUNDRED
    if prices_include_vat:
        gross = to_cents(quantity * unit_price)
        net = to_cents(gross / factor)
        vat = gross - net
        net_unit = (unit_price / factor).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    else:
        net = to_cents(quantity * unit_price)
        vat = to_cents(net * rate / HUNDRED)
        gross = net + vat
        net_unit = unit_price
    return LineAmounts(
        net=net, vat=vat, gross=gross, rate=rate, vat_category=vat_category, net_unit_price=net_unit
    )


def vat_analysis(lines: Iterable[LineAmounts]) -> list[VatBucket]:
    """One bucket per VAT category, in category order."""
    buckets: dict[int, tuple[Decimal, Decimal]] = {}
    for line in lines:
        net, vat = buckets.get(line.vat_category, (Decimal(0), Decimal(0)))
        buckets[line.vat_category] = (net + line.net, vat + line.vat)
    return [
        VatBucket(vat_category=cat, rate=VAT_RATES[cat], net=net, vat=vat)
        for cat, (net, vat) in sorted(buckets.items())
    ]


def document_totals(lines: Iterable[LineAmounts]) -> DocumentTotals:
    net = Decimal(0)
    vat = Decimal(0)
    for line in lines:
        net += line.net
        vat += line.vat
    return DocumentTotals(net=net, vat=vat, gross=net + vat)
