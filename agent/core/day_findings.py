"""What `status`, `doctor` and `/metrics` say about the day's proof: receipts accepted without a
known MARK, and (with the daily closing) closings not done and reconciliations that failed, and
the provider's open order slips that no open table here holds.

Each finding names what is wrong and what to do; all are WARN but an order slip the provider
holds open without this register once it is near or past its legal limit (`critical`), since
the provider then refuses the merchant's documents."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol

import offline_store as store
from agent.clock import ATHENS
from agent.config import AgentConfig, TablesConfig
from agent.core.day_report import Reconciliation, UnheldOrder


def last_reconciliation(conn: sqlite3.Connection) -> Reconciliation | None:
    """The last reconciliation's result as kept (one row of `meta`)."""
    text = store.last_reconciliation(conn)
    return None if text is None else Reconciliation.model_validate_json(text)


class DayFacts(Protocol):
    """What status's store section knows of the day (`StoreSection`)."""

    @property
    def mark_unknown(self) -> int: ...
    @property
    def mark_unknown_ids(self) -> list[int]: ...
    @property
    def unclosed_since(self) -> datetime | None: ...
    @property
    def reconciliation(self) -> Reconciliation | None: ...


@dataclass(frozen=True)
class DayFinding:
    text: str
    critical: bool = False


def day_findings(facts: DayFacts, config: AgentConfig, now: datetime) -> list[DayFinding]:
    """Every finding of the day's proof: MARKs unknown, a closing overdue, the reconciliation
    (documents and open order slips)."""
    found = (
        [mark_unknown_finding(facts.mark_unknown, facts.mark_unknown_ids)]
        if facts.mark_unknown
        else []
    )
    due = closing_due_finding(facts.unclosed_since, config.closing.due_hour, now)
    found += ([due] if due else []) + reconciliation_findings(facts.reconciliation)
    orders = facts.reconciliation.orders if facts.reconciliation else None
    unheld = (
        [unheld_finding(order, config.tables, now) for order in orders.unheld] if orders else []
    )
    return [DayFinding(text) for text in found] + unheld


def mark_unknown_finding(count: int, ids: list[int]) -> str:
    """Printed and registered, but the provider's answer gave no usable MARK: the paper lacks its
    proof of registration until the MARK is found."""
    listed = ", ".join(str(i) for i in ids)
    more = count - len(ids)
    return (
        f"{count} receipt(s) accepted without a known MARK ({listed}"
        f"{f' and {more} more' if more > 0 else ''}): the provider's duplicate answer carried "
        "none or an unusable one; run `pos-agent reconcile --date DAY` for each day they were "
        "issued on to take the MARK from the provider's list (pos-agent status --json lists "
        "them), or look each up by its UID in the provider's portal"
    )


def closing_due_finding(
    unclosed_since: datetime | None, due_hour: int | None, now: datetime
) -> str | None:
    """A day's receipts still in no closing (Z) at `due_hour` of the next day."""
    if unclosed_since is None or due_hour is None:
        return None
    day = unclosed_since.astimezone(ATHENS).date()
    due = datetime.combine(day + timedelta(days=1), time(due_hour), tzinfo=ATHENS)
    if now < due:
        return None
    return (
        f"the receipts of {day:%Y-%m-%d} are in no daily closing (Z), due by {due:%Y-%m-%d %H:%M}: "
        "run `pos-agent report close` (or POST /v1/closings)"
    )


def reconciliation_findings(result: Reconciliation | None) -> list[str]:
    """The last reconciliation: why it failed, and what it left for a person."""
    if result is None:
        return []
    when = f"{result.day:%Y-%m-%d} (checked {result.checked_at.astimezone(ATHENS):%Y-%m-%d %H:%M})"
    found = [
        f"the reconciliation of {when} flagged for a person: {problem}; compare with the "
        "provider's portal and tell the accountant"
        for problem in result.flagged
    ]
    if result.error is not None:
        found = [
            f"the reconciliation of {when} with the provider failed: {result.error}; run "
            f"`pos-agent reconcile --date {result.day:%Y-%m-%d}` again once that is fixed"
        ]
    orders = result.orders
    if orders is not None and orders.error is not None:
        found.append(
            f"the provider's open order slips could not be read ({when}): {orders.error}; run "
            "`pos-agent reconcile` again once that is fixed"
        )
    elif orders is not None:
        found += [f"open order slips ({when}): {problem}" for problem in orders.flagged]
    return found


def unheld_finding(order: UnheldOrder, limits: TablesConfig, now: datetime) -> DayFinding:
    """An 8.6 the provider holds open that no open table here holds: what it is, how old, when
    the provider starts refusing the merchant, and the way to clear it. Critical from
    `open_order_warning_hours` before the limit."""
    where = f"table {order.table}" if order.table else "no table given"
    if order.issued_at is None:
        age, critical = "age unknown", True
    else:
        hours = (now - order.issued_at).total_seconds() / 3600
        deadline = order.issued_at + timedelta(hours=limits.open_order_limit_hours)
        left = limits.open_order_limit_hours - hours
        critical = left <= limits.open_order_warning_hours
        age = f"issued {order.issued_at.astimezone(ATHENS):%Y-%m-%d %H:%M}, {hours:.1f} h old, " + (
            f"{-left:.1f} h past the {limits.open_order_limit_hours:g} h limit"
            if left < 0
            else f"the {limits.open_order_limit_hours:g} h limit at "
            f"{deadline.astimezone(ATHENS):%Y-%m-%d %H:%M}"
        )
    known = order.known_here or "never issued here (or issued before a restore)"
    total = f", {order.total} EUR" if order.total is not None else ""
    return DayFinding(
        f"the provider holds order slip (8.6) MARK {order.mark} of {where} open ({age}{total}) "
        f"but no open table here holds it ({known}); past the limit the provider refuses the "
        f"merchant's documents: cancel it with `pos-agent cancel-order {order.mark}` "
        f"(POST /v1/provider-orders/{order.mark}/cancel); if the guest was served, then place "
        f"the items again on {where} and close the table as usual",
        critical=critical,
    )
