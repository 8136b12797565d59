"""The sandbox's own clock: wall time plus an offset that tests move forward.

Token lifetimes, signature expiry and the `Date` header all read this clock, so a test can make
a 15-minute access token expire with one admin call instead of waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SandboxClock:
    def __init__(self, source: Callable[[], datetime] | None = None) -> None:
        self._source = source or (lambda: datetime.now(UTC))
        self._offset = timedelta()

    def now(self) -> datetime:
        return self._source() + self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset += timedelta(seconds=seconds)
        return self.now()
