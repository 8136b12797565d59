"""Greek time. Everything fiscal (issue time, UID date, deadlines) is Europe/Athens aware."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

ATHENS = ZoneInfo("Europe/Athens")

Clock = Callable[[], datetime]


def athens_now() -> datetime:
    """Whole seconds: the provider formats issue times without fractions."""
    return datetime.now(ATHENS).replace(microsecond=0)
