"""Returns named by the original receipt: what may be returned, and the original's MARK.

A return (11.4 credit of an 11.1, 8.5 return of an 8.4) may name its original by receipt id.
It may give back no more than the original sold: per original line, the quantities and the
amounts of every return naming it add up to at most the line's; an 8.5 at most the 8.4's total.

When the original has no MARK yet (issued offline), the return is frozen with an empty
correlation list and goes out once the original's MARK is known: `with_original_mark` puts it
in. The bytes it sends are a pure function of two committed, never-changing values (the frozen
payload and the original's MARK), so every send and every retry carries the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from agent.fiscal.errors import DomainError, FieldProblem
from agent.fiscal.provider_payloads import PricedLine
from agent.fiscal.receipt_model import ReceiptLine
from agent.json_codec import loads

RETURN_OF = {"11.4": "11.1", "8.5": "8.4"}
# The one empty correlation list a return frozen before its original's MARK carries.
_EMPTY_CORRELATION = {"11.4": b'"CorrelatedInvoices":[]', "8.5": b'"correlatedInvoices":[]'}


class NamedOriginal(BaseModel):
    """How the request stored with an 11.4 or 8.5 named its original: by receipt id or by
    MARK (`ReceiptRequest`, `PosReceiptRequest`). Only these two fields are read, and they may
    be absent: an 11.4 that refunds a table stores its close request, and a number lost to a
    rollback stores `{}`; neither names an original."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    correlated_receipt_id: int | None = None
    correlated_marks: list[int] = Field(default_factory=list)

    @classmethod
    def of_stored_request(cls, request_json: str) -> NamedOriginal:
        return cls.model_validate(loads(request_json))


class ReturnExceedsOriginal(DomainError):
    """A return gives back more than its original sold (quantity or amount), or an item the
    original did not sell."""


class OriginalNotReturnable(DomainError):
    """The receipt named as the original is not one a return of this type can name."""


@dataclass(frozen=True)
class ItemKey:
    """What makes two lines the same item: as described, priced and taxed on the original."""

    description: str
    unit_price: Decimal
    vat_category: int
    unit: int
    code: str | None

    @classmethod
    def of(cls, line: ReceiptLine) -> ItemKey:
        return cls(
            line.description, line.unit_price.normalize(), line.vat_category, line.unit, line.code
        )


@dataclass(frozen=True)
class ReturnedItem:
    key: ItemKey
    quantity: Decimal
    gross: Decimal


def items(lines: Sequence[ReceiptLine], priced: Sequence[PricedLine]) -> list[ReturnedItem]:
    """A document's lines as items: quantity and the gross after any discount."""
    return [
        ReturnedItem(ItemKey.of(line), line.quantity, p.amounts.gross)
        for line, p in zip(lines, priced, strict=True)
    ]


def check_return_items(
    original: Sequence[ReturnedItem],
    earlier: Sequence[ReturnedItem],
    returned: Sequence[ReturnedItem],
) -> None:
    """Every returned line is an item of the original, and this return with the earlier ones
    gives back at most the original's quantity and amount of it; names the first line over."""
    sold: dict[ItemKey, tuple[Decimal, Decimal]] = {}
    for item in original:
        quantity, gross = sold.get(item.key, (Decimal(0), Decimal(0)))
        sold[item.key] = (quantity + item.quantity, gross + item.gross)
    back: dict[ItemKey, tuple[Decimal, Decimal]] = {}
    for item in earlier:
        quantity, gross = back.get(item.key, (Decimal(0), Decimal(0)))
        back[item.key] = (quantity + item.quantity, gross + item.gross)
    for index, item in enumerate(returned):
        if item.key not in sold:
            raise ReturnExceedsOriginal(
                f"line {index + 1} ({item.key.description}) is not on the original receipt",
                [FieldProblem(f"lines[{index}]", "not an item of the original receipt")],
            )
        quantity, gross = back.get(item.key, (Decimal(0), Decimal(0)))
        quantity, gross = quantity + item.quantity, gross + item.gross
        back[item.key] = (quantity, gross)
        sold_quantity, sold_gross = sold[item.key]
        if quantity > sold_quantity:
            raise ReturnExceedsOriginal(
                f"line {index + 1} returns {quantity} of {item.key.description} in all; the "
                f"original sold {sold_quantity}",
                [
                    FieldProblem(
                        f"lines[{index}].quantity",
                        f"with earlier returns {quantity}, more than the {sold_quantity} sold",
                    )
                ],
            )
        if gross > sold_gross:
            raise ReturnExceedsOriginal(
                f"line {index + 1} gives back {gross} for {item.key.description} in all; the "
                f"original charged {sold_gross}",
                [
                    FieldProblem(
                        f"lines[{index}]",
                        f"with earlier returns {gross}, more than the {sold_gross} charged",
                    )
                ],
            )


def check_return_amount(original_total: Decimal, earlier: Decimal, amount: Decimal) -> None:
    """An 8.5 gives back at most what its 8.4 took, less the earlier returns of it."""
    if earlier + amount > original_total:
        left = original_total - earlier
        raise ReturnExceedsOriginal(
            f"the return of {amount} is more than the {left} left of the original's "
            f"{original_total}",
            [FieldProblem("payments", f"add up to more than the {left} left to return")],
        )


def with_original_mark(payload: bytes, type_code: str, mark: int) -> bytes:
    """The frozen return with its original's MARK in its one empty correlation list."""
    empty = _EMPTY_CORRELATION[type_code]
    if payload.count(empty) != 1:
        raise ValueError(f"a frozen {type_code} return carries one empty correlation list")
    return payload.replace(empty, empty[:-1] + str(mark).encode() + b"]")


def needs_original_mark(payload: bytes, type_code: str) -> bool:
    """A return frozen before its original had a MARK (its correlation list is empty)."""
    empty = _EMPTY_CORRELATION.get(type_code)
    return empty is not None and empty in payload
