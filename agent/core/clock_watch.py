"""Wall-clock steps seen by the daemon (an NTP correction, a technician setting the date).

Issue times, UID dates and legal deadlines are read from the wall clock; the daemon's timers run
on the monotonic clock. Between two looks, both clocks should advance by the same amount: when
the wall clock moved by more than `STEP_THRESHOLD_S` beyond the monotonic one, it was stepped.
Receipts issued around a step carry times out of order (and a step back can move an issue time
before the previous receipt's), so the step stays a finding in `status` for `REPORT_FOR_S`
of monotonic time, and `/metrics` counts it: a technician sees that it happened, by how much and
when, instead of guessing from a journal that runs backwards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from agent.clock import Clock
from agent.core.metrics import Metrics

log = logging.getLogger("pos_agent.clock")

# Looks are a few seconds apart; scheduling jitter and a slow tick stay far below this.
STEP_THRESHOLD_S = 2.0
REPORT_FOR_S = 24 * 3600.0

Monotonic = Callable[[], float]


@dataclass(frozen=True)
class ClockStep:
    """`by_s`: how far the wall clock jumped (negative: back). `at`: the wall time after it."""

    by_s: float
    at: datetime
    seen_monotonic: float


class ClockWatch:
    def __init__(
        self, clock: Clock, metrics: Metrics, monotonic: Monotonic = time.monotonic
    ) -> None:
        self._clock = clock
        self._metrics = metrics
        self._monotonic = monotonic
        self._last = (clock(), monotonic())
        self._latest: ClockStep | None = None

    def look(self) -> ClockStep | None:
        """Compare both clocks with the previous look; a step found now is returned (and kept
        for `recent`)."""
        wall, mono = self._clock(), self._monotonic()
        last_wall, last_mono = self._last
        self._last = (wall, mono)
        drift = (wall - last_wall).total_seconds() - (mono - last_mono)
        if abs(drift) < STEP_THRESHOLD_S:
            return None
        self._metrics.clock_steps.inc()
        self._latest = ClockStep(by_s=round(drift, 1), at=wall, seen_monotonic=mono)
        log.warning(
            "the wall clock was stepped by %+.0f s (now %s): receipts around it carry times out "
            "of order",
            drift,
            wall.isoformat(),
        )
        return self._latest

    def recent(self) -> ClockStep | None:
        """The last step, while it is younger than `REPORT_FOR_S` of monotonic time."""
        self.look()
        latest = self._latest
        if latest is None or self._monotonic() - latest.seen_monotonic > REPORT_FOR_S:
            return None
        return latest
