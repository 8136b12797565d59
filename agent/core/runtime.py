"""What every service of the running daemon shares: config, store connection, provider client,
breaker, clock. Built once by the daemon (or by a test) and passed explicitly."""

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
class Runtime:
    config: AgentConfig
    api_key: ApiKey
    conn: sqlite3.Connection
    client: EliseClient
    clock: Clock = athens_now
    monotonic: Monotonic = time.monotonic
    metrics: Metrics = field(default_factory=Metrics)
    started_at: datetime = field(default_factory=athens_now)
    in_flight: set[int] = field(default_factory=set)
    credential_alarm: str | None = None
    last_sync_at: datetime | None = None
    wake_printer: list[Callable[[], None]] = field(default_factory=list)
    print_slip: list[Callable[[str], None]] = field(default_factory=list)
    breaker: CircuitBreaker = field(init=False)
    storage: StorageHealth = field(init=False)
    clock_watch: ClockWatch = field(init=False)
    rollback_guard: RollbackGuard = field(init=False)

    def __post_init__(self) -> None:
        self.breaker = CircuitBreaker(clock=self.clock)
        self.storage = StorageHealth(self.clock, self.metrics)
        self.clock_watch = ClockWatch(self.clock, self.metrics, self.monotonic)
        self.rollback_guard = RollbackGuard(self.conn, self.config, self.clock)

    def notify_printer(self) -> None:
        for wake in self.wake_printer:
            wake()
