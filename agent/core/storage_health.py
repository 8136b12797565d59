"""What the daemon has seen of its own storage: write failures, and whether writes work again.

A full disk, a filesystem gone read-only, a lock held by another process or a failing SD card
surface as `sqlite3` errors deep in a use case. `StorageHealth.guard` turns each into a
`StorageUnavailable` (the till gets 503 `storage_unavailable`, retryable, never a bare 500),
counts it for `/metrics`, and remembers it for `status` until a later write succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import offline_store as store
from agent.clock import Clock
from agent.core.errors import StorageBusy, StorageUnavailable
from agent.core.metrics import Metrics

log = logging.getLogger("pos_agent.storage")


@dataclass(frozen=True)
class StorageFailure:
    fault: store.StorageFault
    message: str
    at: datetime


class StorageHealth:
    def __init__(self, clock: Clock, metrics: Metrics) -> None:
        self._clock = clock
        self._metrics = metrics
        self.failures = 0
        self.failing: StorageFailure | None = None  # the last failure, until a write succeeds

    @contextmanager
    def guard(self, *, writes: bool) -> Iterator[None]:
        """Around one request or background run. `writes`: it commits when it succeeds (the
        API's POSTs), so its success shows the storage takes writes again; a background tick
        mostly writes nothing and proves nothing."""
        try:
            yield
        except StorageUnavailable as exc:  # a use case that knows more of what happened
            self._note(store.StorageFault(exc.fault), exc.reason)
            raise
        except Exception as exc:
            fault = store.storage_fault(exc)
            if fault is None:
                raise
            reason = str(exc)[:200]
            self._note(fault, reason)
            if fault is store.StorageFault.BUSY:
                raise StorageBusy(fault.value, reason) from exc
            raise StorageUnavailable(fault.value, reason) from exc
        if writes:
            self.failing = None

    def _note(self, fault: store.StorageFault, reason: str) -> None:
        log.warning("the storage refused a write (%s): %s", fault.value, reason)
        self.failures += 1
        self.failing = StorageFailure(fault, reason, self._clock())
        self._metrics.storage_failures.labels(fault.value).inc()
