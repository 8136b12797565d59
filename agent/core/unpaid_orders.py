"""Where the legal 24 h clock of a table runs from: the oldest order its part payments do not
cover. Read by the table's view and by `status` (which must not import the use cases)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from decimal import Decimal

import offline_store as store
from agent.fiscal.table_bill import PaidLines

ZERO = Decimal("0.00")


def signed_total(order: store.TableOrder) -> Decimal:
    """What the order adds to the table's bill: a return takes its total off."""
    return -order.total_amount if order.kind == store.OrderKind.RETURN else order.total_amount


def oldest_unpaid(orders: Sequence[store.TableOrder], paid: Decimal) -> store.TableOrder | None:
    """The oldest order the part payments do not cover, where the legal 24 h clock runs from:
    payments cover the orders oldest first (a return gives its amount back to those before it)."""
    running = ZERO
    uncovered: store.TableOrder | None = None
    for order in orders:
        running += signed_total(order)
        if running > paid and uncovered is None and order.kind == store.OrderKind.ORDER:
            uncovered = order
        elif running <= paid:
            uncovered = None
    return uncovered


def part_paid(conn: sqlite3.Connection, table: str) -> Decimal:
    """What the table's live part payments paid."""
    return sum(
        (
            line.gross
            for payment in store.open_part_payments(conn, table)
            for line in PaidLines.model_validate_json(payment.paid_json).lines
        ),
        ZERO,
    )
