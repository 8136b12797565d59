"""What every service of the running daemon shares, built once by the daemon (or by a test) and
passed explicitly.

`Runtime` is the wiring: config, store connection, provider client, clock, metrics. It is
frozen once built. What changes while the daemon runs lives in small objects, each written by
one module only: the breaker (`breaker.py`, told by `provider_health.note_outcome`), the
credentials alarm (`provider_health.note_outcome`), storage health (`storage_health.py`), the
clock watch (`clock_watch.py`), the rollback guard (`rollback_guard.py`) and the printer link
(connected by the daemon, rung by core). The documents on their way to the provider are the
`Transmitter`'s (`transmission.py`), the time of the last sync the `SyncService`'s (`sync.py`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from agent.clock import Clock, athens_now
from agent.config import AgentConfig
from agent.core.breaker import CircuitBreaker
from agent.core.clock_watch import ClockWatch, Monotonic
from agent.core.metrics import Metrics
from agent.core.rollback_guard import RollbackGuard
from agent.core.storage_health import StorageHealth
from agent.elise.client import EliseClient
from agent.secrets import ApiKey


@dataclass
class CredentialAlarm:
    """The provider's refusal of the API key (401), kept until an answer shows the key accepted
    again; `status`, `doctor` and `/metrics` report it. Set and cleared only by
    `provider_health.note_outcome`."""

    message: str | None = None


@dataclass
class PrinterLink:
    """How core reaches the printer worker the daemon runs: a wake-up once a print job is
    queued (the worker otherwise looks on its own interval), and a report slip (X) handed over
    to print. Connected once by the daemon; unconnected (tests, tools) both do nothing."""

    wake: Callable[[], None] | None = None
    slip: Callable[[str], None] | None = None

    def connect(self, wake: Callable[[], None], slip: Callable[[str], None]) -> None:
        self.wake, self.slip = wake, slip

    def notify(self) -> None:
        if self.wake is not None:
            self.wake()

    def print_slip(self, report_json: str) -> None:
        if self.slip is not None:
            self.slip(report_json)


@dataclass(frozen=True, eq=False)
class Runtime:
    config: AgentConfig
    api_key: ApiKey
    conn: sqlite3.Connection
    client: EliseClient
    clock: Clock = athens_now
    monotonic: Monotonic = time.monotonic
    metrics: Metrics = field(default_factory=Metrics)
    started_at: datetime = field(default_factory=athens_now)
    printer: PrinterLink = field(default_factory=PrinterLink)
    credentials: CredentialAlarm = field(default_factory=CredentialAlarm)
    breaker: CircuitBreaker = field(init=False)
    storage: StorageHealth = field(init=False)
    clock_watch: ClockWatch = field(init=False)
    rollback_guard: RollbackGuard = field(init=False)

    def __post_init__(self) -> None:
        # Built from the fields above, once: the only writes a frozen Runtime ever takes.
        built = {
            "breaker": CircuitBreaker(clock=self.clock),
            "storage": StorageHealth(self.clock, self.metrics),
            "clock_watch": ClockWatch(self.clock, self.metrics, self.monotonic),
            "rollback_guard": RollbackGuard(self.conn, self.config, self.clock),
        }
        for name, value in built.items():
            object.__setattr__(self, name, value)

    def notify_printer(self) -> None:
        self.printer.notify()
