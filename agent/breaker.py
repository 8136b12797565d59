"""Circuit breaker for the provider: after one failure, receipts go offline at once.

The till must never wait on timeouts twice in a row. While open, a background probe checks the
provider; the first success closes it and triggers an immediate sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


@dataclass
class CircuitBreaker:
    state: BreakerState = BreakerState.CLOSED
    last_failure: str | None = None
    delayed_code: int = 1

    @property
    def is_open(self) -> bool:
        return self.state is BreakerState.OPEN

    def record_failure(self, reason: str, delayed_code: int) -> None:
        """Open (or stay open) with the delayed code that new offline receipts must carry."""
        self.last_failure = reason
        self.delayed_code = delayed_code
        self.state = BreakerState.OPEN

    def record_success(self) -> bool:
        """Close; True when this call closed it (the caller then runs the sync)."""
        if self.state is BreakerState.OPEN:
            self.state = BreakerState.CLOSED
            return True
        return False
