"""The offline deadline: a delayed document must reach the provider by the end of the day after
its issue date, Greek time (greek-regulation §3.2, the conservative reading)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from agent.clock import ATHENS


def transmission_deadline(issued_at: datetime) -> datetime:
    """Midnight (Athens) at the end of the day after the issue date."""
    issue_day = issued_at.astimezone(ATHENS).date()
    return datetime.combine(issue_day + timedelta(days=2), time(0, 0), tzinfo=ATHENS)
