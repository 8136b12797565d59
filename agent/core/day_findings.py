"""What `status`, `doctor` and `/metrics` say about the day's proof: receipts accepted without a
known MARK, and (with the daily closing) closings not done and reconciliations that failed.

Each finding names what is wrong and what to do; the levels are decided by the callers."""

from __future__ import annotations

import sqlite3
from datetime import datetime, time, timedelta
from typing import Protocol

import offline_store as store
from agent.clock import ATHENS
from agent.core.day_report import Reconciliation


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


def day_warnings(facts: DayFacts, due_hour: int | None, now: datetime) -> list[str]:
    """Every WARN of the day's proof: MARKs unknown, a closing overdue, the reconciliation."""
    found = (
        [mark_unknown_finding(facts.mark_unknown, facts.mark_unknown_ids)]
        if facts.mark_unknown
        else []
    )
    due = closing_due_finding(facts.unclosed_since, due_hour, now)
    return found + ([due] if due else []) + reconciliation_findings(facts.reconciliation)


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
    if result.error is not None:
        return [
            f"the reconciliation of {when} with the provider failed: {result.error}; run "
            f"`pos-agent reconcile --date {result.day:%Y-%m-%d}` again once that is fixed"
        ]
    return [
        f"the reconciliation of {when} flagged for a person: {problem}; compare with the "
        "provider's portal and tell the accountant"
        for problem in result.flagged
    ]
