"""The daemon's services wired once around one Runtime."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import offline_store as store
from agent import __version__
from agent.core.card_payments import CardPaymentService
from agent.core.issuing import IssuingService
from agent.core.receipts import ReceiptService
from agent.core.runtime import Runtime
from agent.core.status_report import (
    ClockSection,
    DaemonSection,
    PrinterSection,
    ProviderSection,
    StatusReport,
    StorageSection,
    StoreSection,
    backlog_section,
    storage_section,
    store_status,
    verdict,
)
from agent.core.sync import SyncService
from agent.core.transmission import Transmitter


@dataclass
class Services:
    runtime: Runtime
    transmitter: Transmitter = field(init=False)
    issuing: IssuingService = field(init=False)
    cards: CardPaymentService = field(init=False)
    sync: SyncService = field(init=False)
    receipts: ReceiptService = field(init=False)
    # The printer's last known state for `status`; the daemon passes its printer worker's.
    printer_state: Callable[[], str] = field(default=lambda: "unknown")

    def __post_init__(self) -> None:
        self.transmitter = Transmitter(self.runtime)
        self.issuing = IssuingService(self.runtime, self.transmitter)
        self.cards = CardPaymentService(self.runtime)
        self.sync = SyncService(self.runtime, self.transmitter)
        self.receipts = ReceiptService(self.runtime)

    def refresh_gauges(self) -> None:
        """Right before each scrape (`GET /metrics`): the gauges are derived here only, from the
        same backlog section `status` shows."""
        rt = self.runtime
        now = rt.clock()
        backlog = backlog_section(store.backlog_summary(rt.conn, now), now)
        for code, count in backlog.by_code.items():
            rt.metrics.backlog.labels(code).set(count)
        rt.metrics.backlog.labels("0").set(backlog.pending)
        rt.metrics.oldest_delayed_age.set(backlog.oldest.age_s if backlog.oldest else 0)
        rt.metrics.breaker_open.set(1 if rt.breaker.is_open else 0)
        free = self._storage().free_bytes
        if free is not None:
            rt.metrics.storage_free_bytes.set(free)

    async def status(self) -> StatusReport:
        """The database half runs in a worker thread on its own read-only connection (WAL lets
        it read beside the writer), so a `status` never holds up a receipt on the event loop."""
        stored = await asyncio.to_thread(self._store_report, self.runtime.clock())
        return self._report(stored)

    def _store_report(self, now: datetime) -> StoreSection:
        """Counters and index ranges only: the journal's chain is verified by the maintenance
        job in slices (core/maintenance.py) and only its last result is read here."""
        rt = self.runtime
        conn = store.open_database(rt.config.database_path, read_only=True)
        try:
            return store_status(conn, rt.config, now)
        finally:
            conn.close()

    def _report(self, stored: StoreSection) -> StatusReport:
        rt = self.runtime
        now = rt.clock()
        client = rt.client
        step = rt.clock_watch.recent()
        queue = stored.print_queue
        report = StatusReport(
            version=__version__,
            generated_at=now,
            daemon=DaemonSection(
                running=True,
                pid=os.getpid(),
                started_at=rt.started_at,
                uptime_s=round((now - rt.started_at).total_seconds()),
            ),
            provider=ProviderSection(
                base_url=rt.config.provider.base_url,
                breaker=rt.breaker.state.value,
                last_failure=rt.breaker.last_failure,
                last_success_at=client.last_success_at,
                credential_alarm=rt.credential_alarm,
                last_sync_at=rt.last_sync_at,
            ),
            clock=ClockSection(
                offset_s=client.clock_offset_s,
                provider_date=client.last_server_date,
                step_s=step.by_s if step else None,
                stepped_at=step.at if step else None,
            ),
            printer=PrinterSection(
                enabled=rt.config.printer.enabled,
                backend=rt.config.printer.backend,
                state=self.printer_state(),
                queued=queue.get("queued", 0) + queue.get("printing", 0),
                failed=queue.get("failed", 0),
                printed=queue.get("printed", 0),
            ),
            store=stored,
            storage=self._storage(),
        )
        return report.judged(*verdict(report, rt.config))

    def _storage(self) -> StorageSection:
        health = self.runtime.storage
        failing = health.failing
        return storage_section(
            self.runtime.config.state_dir,
            failures=health.failures,
            failing=f"{failing.fault.value}: {failing.message}" if failing else None,
            failing_since=failing.at if failing else None,
        )
