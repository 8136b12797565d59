"""The offline deadline: midnight (Athens) at the end of the day after the issue date.

The legal texts are worded loosely ("without delay after the connection is restored"; "by the end
of the next day" per Α.1112/2025 as one integrator reads it), so this is the conservative reading
(docs/provider.md §10).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from agent.clock import ATHENS


def transmission_deadline(issued_at: datetime) -> datetime:
    """Midnight (Athens) at the end of the day after the issue date."""
    issue_day = issued_at.astimezone(ATHENS).date()
    return datetime.combine(issue_day + timedelta(days=2), time(0, 0), tzinfo=ATHENS)
