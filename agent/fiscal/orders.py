"""Food-service order slips (myDATA 8.6, Δελτίο Παραγγελίας Εστίασης) and closing a table.

The rules, as the provider's QA suite exercises them (docs/provider.md §13): an 8.6 goes to
`/Invoice/json` like a receipt, with `tableId`, the waiter in `DistributionDetails.salesman`,
income classification `category1_95` and no payments; a return is an 8.6 whose lines carry
`RecordTypeCode` 7; a cancellation is an 8.6 with `totalCancelDeliveryOrders: true`, one zero line
(VAT category 8) and the cancelled MARKs in `multipleConnectedMarks`; the table is closed by an
11.1 with `SpecialInvoiceCategory` 12 connecting every open 8.6 MARK (returns included, cancelled
ones not), which is issued even when the table nets to 0.00; a split bill or a partial payment
is several such 11.1 connecting the same open MARKs (`agent.fiscal.table_bill`). Pure functions
and models: the use cases (`agent.core.orders`, `agent.core.tables`) read the table from the
store and freeze what these build.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.fiscal.errors import DomainError, FieldProblem
from agent.fiscal.receipt_model import (
    Customer,
    Delivery,
    Payment,
    PositiveMoney,
    ReceiptLine,
    RequestId,
    ShortText,
    TableId,
    check_delivery_addresses,
    check_retail_customer,
)
from agent.json_codec import loads

ORDER_TYPE = "8.6"
RETURN_RECORD_TYPE = 7
CATERING_CATEGORY = 12  # SpecialInvoiceCategory of the closing 11.1 ("Catering transactions")
ORDER_INCOME_CATEGORY = "category1_95"
NO_VAT_CATEGORY = 8


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class OrderRequest(_Strict):
    """POST /v1/orders: an order slip for a table (or a return of items the table ordered)."""

    request_id: RequestId
    table: TableId
    waiter: ShortText
    kind: Literal["order", "return"] = "order"
    lines: list[ReceiptLine] = Field(min_length=1, max_length=200)

    @classmethod
    def of_stored_request(cls, request_json: str) -> OrderRequest:
        """The request an order slip was stored with, validated as it was on the way in; read
        through `json_codec.loads`, so its prices keep their digits."""
        return cls.model_validate(loads(request_json))


class CancelOrderRequest(_Strict):
    """POST /v1/orders/{order_id}/cancel: an 8.6 that cancels that order slip."""

    request_id: RequestId
    waiter: ShortText | None = Field(None, description="default: the order's waiter")


class CancelProviderOrderRequest(_Strict):
    """POST /v1/provider-orders/{mark}/cancel: an 8.6 that cancels an order slip the provider
    holds open and no open table of this register holds (the last reconciliation lists it)."""

    request_id: RequestId
    waiter: ShortText = Field("pos-agent", description="who cancels it (the 8.6's salesman)")


class CloseTableRequest(_Strict):
    """POST /v1/tables/{table}/close: a receipt that pays the table, or part of it.

    Without `amount` and `lines` it pays what is left and closes the table; with `amount` (part
    of what is left) or `lines` (items of the table's `closing_lines` with the quantities this
    guest pays) it pays that part, and the table stays open with the rest until the receipt
    that brings it to 0.00. Every such receipt connects every open order of the table. Payments
    must add up to what the receipt pays (GET /v1/tables/{table} shows `left`); for a card, sign
    first (POST /v1/payments/sign with `table` and the same `amount` or `lines`), charge, then
    pay with the card payment's `signature_id`. Only a receipt of 0.00 has no payments.
    """

    request_id: RequestId
    amount: PositiveMoney | None = Field(None, description="pay this part of what is left")
    lines: list[ReceiptLine] | None = Field(
        None, min_length=1, max_length=200, description="pay these items of closing_lines"
    )
    payments: list[Payment] = Field(default_factory=list, max_length=20)
    customer: Customer | None = None
    delivery: Delivery = Delivery()

    @model_validator(mode="after")
    def _rules(self) -> CloseTableRequest:
        if self.amount is not None and self.lines is not None:
            raise ValueError("amount: give amount or lines, not both")
        check_retail_customer(self.customer)
        check_delivery_addresses(self.customer, self.delivery)
        return self


class DrawerOpenRequest(_Strict):
    """POST /v1/drawer/open: kick the cash drawer now (journaled with the caller's uid)."""

    request_id: RequestId


@dataclass(frozen=True)
class ItemKey:
    """What makes two order lines the same item on the bill."""

    description: str
    unit_price: Decimal
    vat_category: int
    exemption_cause: int | None
    unit: int
    code: str | None
    kind: str

    @classmethod
    def of(cls, line: object) -> ItemKey:
        """The item of an order line or of a line a receipt paid (both carry these fields)."""
        return cls(**{field.name: getattr(line, field.name) for field in fields(cls)})

    def attributes(self) -> dict[str, Any]:
        """The key's fields by name, for the lines built from it."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def line(self, quantity: Decimal) -> ReceiptLine:
        return ReceiptLine(quantity=quantity, **self.attributes())


@dataclass(frozen=True)
class PlacedOrder:
    """An open order slip as the table sees it: returns count against the items."""

    is_return: bool
    lines: list[ReceiptLine]


def table_items(orders: Iterable[PlacedOrder]) -> dict[ItemKey, Decimal]:
    """Quantity still on the table per item: ordered minus returned, in order of first order."""
    items: dict[ItemKey, Decimal] = {}
    for order in orders:
        for line in order.lines:
            key = ItemKey.of(line)
            change = -line.quantity if order.is_return else line.quantity
            items[key] = items.get(key, Decimal("0")) + change
    return items


def check_return(items: dict[ItemKey, Decimal], lines: list[ReceiptLine]) -> None:
    """A return may only give back what the table has: same item, at most its open quantity."""
    problems: list[FieldProblem] = []
    remaining = dict(items)
    for index, line in enumerate(lines):
        key = ItemKey.of(line)
        available = remaining.get(key, Decimal("0"))
        if line.quantity > available:
            problems.append(
                FieldProblem(
                    f"lines[{index}]",
                    f"the table has {available} of {line.description!r} at {line.unit_price} "
                    f"(VAT category {line.vat_category}) open; a return cannot exceed it",
                )
            )
        remaining[key] = available - line.quantity
    if problems:
        raise ReturnExceedsOrders("a return names items the table did not order", problems)


def negative_items(items: dict[ItemKey, Decimal]) -> list[ItemKey]:
    return [key for key, quantity in items.items() if quantity < 0]


def closing_lines(
    items: dict[ItemKey, Decimal], *, fallback_vat_category: int
) -> list[ReceiptLine]:
    """The closing 11.1's lines: what is left on the table. A table that nets to zero still
    needs its 11.1 (of 0.00): one zero line at the VAT category of the table's orders, as the
    provider's QA suite sends it."""
    lines = [key.line(quantity) for key, quantity in items.items() if quantity > 0]
    if lines:
        return lines
    return [
        ReceiptLine(
            description="Κλείσιμο τραπεζιού",
            quantity=Decimal("1"),
            unit_price=Decimal("0.00"),
            vat_category=fallback_vat_category,
            exemption_cause=1 if fallback_vat_category == 7 else None,
        )
    ]


def order_payload(document: dict[str, Any], *, table: str, waiter: str, is_return: bool) -> dict:
    """An `invoice_payload` of type 8.6 turned into the order slip the provider expects."""
    document["totalCancelDeliveryOrders"] = False
    document["tableId"] = table
    document["DistributionDetails"]["salesman"] = waiter
    document.pop("PaymentDetails", None)
    for detail in document["Details"]:
        detail["RecordTypeCode"] = RETURN_RECORD_TYPE if is_return else 0
        detail["IncomeClassification"] = {
            "ClassificationTypeCode": "",
            "ClassificationCategoryCode": ORDER_INCOME_CATEGORY,
        }
    return document


def cancel_payload(
    document: dict[str, Any], *, table: str, waiter: str, marks: list[int]
) -> dict[str, Any]:
    """An 8.6 `invoice_payload` with one zero line (VAT category 8) turned into a cancellation
    of `marks`."""
    document = order_payload(document, table=table, waiter=waiter, is_return=False)
    document["totalCancelDeliveryOrders"] = True
    document["multipleConnectedMarks"] = list(marks)
    return document


class SlipCancellation(BaseModel):
    """What a frozen 8.6 payload cancels, read back by the provider's field names: the MARKs
    it connects when it is a cancellation (`totalCancelDeliveryOrders` true), none for an
    order or a return."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    is_cancellation: bool = Field(default=False, alias="totalCancelDeliveryOrders", strict=True)
    connected_marks: list[int] = Field(default_factory=list, alias="multipleConnectedMarks")

    @classmethod
    def of_payload(cls, payload: bytes) -> SlipCancellation:
        return cls.model_validate_json(payload)

    def cancels(self, mark: int) -> bool:
        return self.is_cancellation and mark in self.connected_marks


class ReturnExceedsOrders(DomainError):
    """A return names an item, or a quantity, the table does not have open."""
