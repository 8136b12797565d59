"""Greek number formatting for the paper: `1.234,50` (point for thousands, comma for decimals).

Amounts arrive as exact `Decimal`s already rounded by the agent; we only quantize for display so
that `12.4` prints as `12,40`, never re-round a value that has more than two places.
"""

from __future__ import annotations

from decimal import Decimal

_CENTS = Decimal("0.01")


def format_money(amount: Decimal) -> str:
    """`Decimal("1234.5")` → `1.234,50`; negative amounts (credit notes) keep their minus."""
    if not amount.is_finite():
        raise ValueError(f"amount {amount} is not a number")
    if amount != amount.quantize(_CENTS):
        raise ValueError(f"amount {amount} has more than two decimal places")
    text = f"{amount.quantize(_CENTS):,.2f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def format_quantity(quantity: Decimal) -> str:
    """Quantities without trailing zeros: `2`, `1,5`, `0,275`."""
    return format(quantity.normalize(), "f").replace(".", ",")


def format_percent(percent: Decimal) -> str:
    """VAT rates as printed in the analysis: `24%`, `13%`, `0%`, `5,5%`."""
    return format_quantity(percent) + "%"
