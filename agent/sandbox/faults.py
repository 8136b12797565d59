"""Runtime fault switch: what the sandbox does to each provider call.

A fault is decided per request in two places. The connection layer (`protocol.py`) decides the
faults that never produce an HTTP answer (`down`: reset at once, `blackhole`: swallow the request);
the application decides the ones that do (`aade_down`: 408, `error500`: 500, the `slow` delay,
`foreign_uid`: a document is accepted but the answer names another document's UID, `busy`: 408
on signpos as while the provider still processes the same UID, `bad_mark_409`: a new document is
accepted but its answer is lost (500), and a re-send's 409 carries a MARK outside xs:long). The
list faults touch only `getdocuments`: `list_drops` leaves the newest listed document out,
`list_total` lists it with 1.00 more than it was sent with; `open_orders_drops` touches only the
open order slips' list and leaves the newest one out.
`flaky` draws a failure for `percent`% of calls, half of them at each layer, so the overall rate
is the configured percentage. Admin paths (`/_sandbox/...`) are never faulted.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Literal, get_args

Mode = Literal[
    "ok",
    "down",
    "blackhole",
    "aade_down",
    "error500",
    "slow",
    "flaky",
    "foreign_uid",
    "busy",
    "bad_mark_409",
    "list_drops",
    "list_total",
    "open_orders_drops",
]
ConnectionFault = Literal["down", "blackhole"]
AnswerFault = Literal["aade_down", "error500", "foreign_uid", "busy", "bad_mark_409"]

MODES: tuple[Mode, ...] = get_args(Mode)
ADMIN_PREFIX = "/_sandbox/"


@dataclass(frozen=True)
class FaultSettings:
    mode: Mode = "ok"
    delay_ms: int = 0
    percent: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if self.delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        if not 0 <= self.percent <= 100:
            raise ValueError("percent must be within 0..100")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class DelayedAnswers:
    """How long delayed answers really took from the request's arrival, since the last setting:
    the benchmark checks that "20 ms latency" is 20 ms, not more and never less."""

    count: int = 0
    total_s: float = 0.0
    min_s: float = 0.0
    max_s: float = 0.0

    def record(self, seconds: float) -> None:
        self.min_s = min(self.min_s, seconds) if self.count else seconds
        self.max_s = max(self.max_s, seconds)
        self.count += 1
        self.total_s += seconds

    def as_dict(self) -> dict[str, object]:
        mean = self.total_s / self.count if self.count else 0.0
        return {
            "count": self.count,
            "mean_ms": _ms(mean),
            "min_ms": _ms(self.min_s),
            "max_ms": _ms(self.max_s),
        }


def _ms(seconds: float) -> Decimal:
    """Microsecond-exact milliseconds (the sandbox's JSON carries no floats)."""
    return Decimal(round(seconds * 1_000_000)) / 1000


class Faults:
    """The current settings plus a seeded random source, shared by both layers."""

    def __init__(self, seed: int | None = None) -> None:
        self.settings = FaultSettings()
        self.delayed = DelayedAnswers()
        self.held = 0  # requests `blackhole` swallowed, so a test can wait for one
        self._random = random.Random(seed)

    def set(self, settings: FaultSettings) -> None:
        self.settings = settings
        self.delayed = DelayedAnswers()

    def connection_fault(self, path: str) -> ConnectionFault | None:
        """Decided when a request line arrives, before any HTTP parsing."""
        if path.startswith(ADMIN_PREFIX):
            return None
        mode = self.settings.mode
        if mode in ("down", "blackhole"):
            return mode  # type: ignore[return-value]
        if mode == "flaky" and self._random.random() < self._half_rate():
            return self._random.choice(("down", "blackhole"))
        return None

    def answer_fault(self, path: str) -> AnswerFault | None:
        """Decided by the application for a request that got past the connection layer."""
        if path.startswith(ADMIN_PREFIX):
            return None
        mode = self.settings.mode
        if mode in ("aade_down", "error500", "foreign_uid", "busy", "bad_mark_409"):
            return mode  # type: ignore[return-value]
        if mode == "flaky":
            half = self._half_rate()
            # Conditional on having passed the connection layer, so the total stays `percent`.
            if self._random.random() < half / (1 - half):
                return self._random.choice(("aade_down", "error500"))
        return None

    def delay_s(self, path: str) -> float:
        """`slow` and `flaky` delay every answered provider call by `delay_ms`."""
        if path.startswith(ADMIN_PREFIX) or self.settings.mode not in ("slow", "flaky"):
            return 0.0
        return self.settings.delay_ms / 1000

    def _half_rate(self) -> float:
        return self.settings.percent / 200
