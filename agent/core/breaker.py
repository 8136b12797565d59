"""Circuit breaker for the provider: after one failure, receipts go offline at once.

The till must never wait on timeouts twice in a row. While open, a background probe checks the
provider; the first success closes it and triggers an immediate sync.

It tells two outages apart by the delayed code it opened with: 1, the provider itself did not
answer; 2, the provider answered 408 because AADE is down. Card signing (signpos) does not involve
AADE, so it goes on during the second (`provider_unreachable` is False), and its success says
nothing about AADE, so it does not close a breaker opened by AADE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from agent.clock import Clock, athens_now

UNREACHABLE_CODE = 1
AADE_DOWN_CODE = 2


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


@dataclass
class CircuitBreaker:
    state: BreakerState = BreakerState.CLOSED
    last_failure: str | None = None
    delayed_code: int = 1
    # How many times it has opened. A call notes it when it goes out, and its success closes
    # the breaker only if the breaker has not opened since: when the provider fails with
    # several calls in flight, the answers already on their way say nothing about the
    # provider now, and closing on them would send the next sale online into the outage.
    generation: int = 0
    clock: Clock = athens_now
    # When it entered its current state (its creation, i.e. the daemon's start, until the first
    # change): `status` and /metrics show how long receipts have been going out offline.
    since: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.since = self.clock()

    @property
    def is_open(self) -> bool:
        return self.state is BreakerState.OPEN

    @property
    def provider_unreachable(self) -> bool:
        """Open because the provider itself did not answer: calls that do not need AADE are
        pointless too. False while only AADE is down."""
        return self.is_open and self.delayed_code != AADE_DOWN_CODE

    def record_failure(self, reason: str, delayed_code: int) -> None:
        """Open (or stay open) with the delayed code that new offline receipts must carry."""
        self.last_failure = reason
        self.delayed_code = delayed_code
        if self.state is BreakerState.CLOSED:
            self.generation += 1
            self.since = self.clock()
        self.state = BreakerState.OPEN

    def record_success(self, sent_in: int, *, reaches_aade: bool = True) -> bool:
        """A call sent in generation `sent_in` succeeded. Close, unless the breaker opened after
        that call went out, or the call never reached AADE (`reaches_aade=False`: signpos) and
        the breaker is open for AADE. True when this closed it (the caller then runs the sync)."""
        if not reaches_aade and self.delayed_code == AADE_DOWN_CODE:
            return False
        if self.state is BreakerState.OPEN and sent_in == self.generation:
            self.state = BreakerState.CLOSED
            self.since = self.clock()
            return True
        return False
