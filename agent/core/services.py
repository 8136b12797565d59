"""The daemon's services wired once around one Runtime."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import offline_store as store
from agent import __build_time__, __version__
from agent.core.answers import Health
from agent.core.card_payments import CardPaymentService
from agent.core.closings import ClosingService
from agent.core.day_findings import last_reconciliation
from agent.core.drawer import DrawerService
from agent.core.held_returns import stranded_returns
from agent.core.iris_payments import IrisPaymentService
from agent.core.issuing import IssuingService
from agent.core.orders import OrdersService
from agent.core.provider_orders import ProviderOrders
from agent.core.receipt_payments import ReceiptPaymentService
from agent.core.receipts import ReceiptService
from agent.core.reconcile import ReconcileService
from agent.core.runtime import Runtime
from agent.core.status_metrics import ChecksSection, ScrapeView
from agent.core.status_report import (
    ClockSection,
    DaemonSection,
    PrinterSection,
    ProviderSection,
    StatusReport,
    StorageSection,
    StoreSection,
    backlog_section,
    open_orders_section,
    storage_section,
    store_status,
    verdict,
)
from agent.core.sync import SyncService
from agent.core.tables import TablesService
from agent.core.transmission import Transmitter

# What a scrape counts of the print queue (printed jobs are history: status counts them).
WAITING_PRINT_STATES = (
    store.PrintState.QUEUED,
    store.PrintState.PRINTING,
    store.PrintState.FAILED,
)


@dataclass
class Services:
    runtime: Runtime
    transmitter: Transmitter = field(init=False)
    issuing: IssuingService = field(init=False)
    cards: CardPaymentService = field(init=False)
    receipt_payments: ReceiptPaymentService = field(init=False)
    iris: IrisPaymentService = field(init=False)
    sync: SyncService = field(init=False)
    receipts: ReceiptService = field(init=False)
    orders: OrdersService = field(init=False)
    tables: TablesService = field(init=False)
    drawer: DrawerService = field(init=False)
    closings: ClosingService = field(init=False)
    reconcile: ReconcileService = field(init=False)
    provider_orders: ProviderOrders = field(init=False)
    # The printer's last known state for `status`; the daemon passes its printer worker's.
    printer_state: Callable[[], str] = field(default=lambda: "unknown")

    def __post_init__(self) -> None:
        self.transmitter = Transmitter(self.runtime)
        self.issuing = IssuingService(self.runtime, self.transmitter)
        self.cards = CardPaymentService(self.runtime)
        self.receipt_payments = ReceiptPaymentService(self.runtime)
        self.iris = IrisPaymentService(self.runtime)
        self.sync = SyncService(self.runtime, self.transmitter)
        self.receipts = ReceiptService(self.runtime)
        self.orders = OrdersService(self.runtime, self.issuing)
        self.tables = TablesService(self.runtime, self.issuing)
        self.drawer = DrawerService(self.runtime)
        self.reconcile = ReconcileService(self.runtime, self.sync)
        self.closings = ClosingService(self.runtime, self.reconcile)
        self.provider_orders = ProviderOrders(
            self.runtime, self.issuing, self.orders, self.reconcile
        )

    def scrape(self) -> bytes:
        """`GET /metrics` on the API socket and on the metrics listener: the gauges are derived
        right here, right before the exposition."""
        metrics = self.runtime.metrics
        metrics.status.update(self.scrape_view())
        rt = self.runtime
        metrics.footer_missing.set(len(rt.config.provider.footer.problems()))
        orders = open_orders_section(rt.conn, rt.clock())
        metrics.open_orders.set(orders.count)
        metrics.oldest_open_order_age.set(orders.oldest_age_s or 0)
        for state in (store.KickState.QUEUED, store.KickState.FAILED):
            metrics.drawer_kicks.labels(state.value).set(store.kick_count(rt.conn, state))
        return metrics.exposition()

    def scrape_view(self) -> ScrapeView:
        """What a scrape exports, built by the same section builders as `status`. Nothing here
        grows with history of its own: print jobs are counted on their index for the waiting
        states only (never years of printed ones), and the journal result is the last check's,
        not a walk. (The backlog summary is status's own, shared as it is.)"""
        rt = self.runtime
        now = rt.clock()
        summary = store.backlog_summary(rt.conn, now)
        integrity = store.last_integrity_check(rt.conn)
        queue = store.print_queue_summary(rt.conn, states=WAITING_PRINT_STATES)
        journal = store.last_journal_check(rt.conn)  # the maintenance job's last slice
        return ScrapeView(
            version=__version__,
            built_at=__build_time__ or None,
            generated_at=now,
            backlog=backlog_section(summary, now),
            rejected=summary.rejected,
            mark_unknown=summary.mark_unknown,
            provider=self._provider(),
            clock=self._clock(),
            printer=self._printer(queue),
            storage=self._storage(),
            checks=ChecksSection(
                integrity=integrity[1] if integrity else None,
                integrity_checked_at=integrity[0] if integrity else None,
                journal_ok=journal.ok if journal else None,
                journal_checked_at=journal.checked_at if journal else None,
            ),
            unclosed_since=store.first_unclosed(rt.conn),
            reconciliation=last_reconciliation(rt.conn),
            stranded_returns=dict(Counter(held.why for held in stranded_returns(rt.conn))),
        )

    def health(self) -> Health:
        """Liveness: the daemon answers, and whether the provider is being called at all."""
        rt = self.runtime
        return Health(
            status="ok",
            version=__version__,
            breaker=rt.breaker.state.value,
            in_flight=len(self.transmitter.in_flight),
        )

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
        report = StatusReport(
            version=__version__,
            built_at=__build_time__ or None,
            generated_at=now,
            daemon=DaemonSection(
                running=True,
                pid=os.getpid(),
                started_at=rt.started_at,
                uptime_s=round((now - rt.started_at).total_seconds()),
            ),
            provider=self._provider(),
            clock=self._clock(),
            printer=self._printer(stored.print_queue),
            store=stored,
            storage=self._storage(),
        )
        return report.judged(*verdict(report, rt.config))

    def _provider(self) -> ProviderSection:
        rt = self.runtime
        return ProviderSection(
            base_url=rt.config.provider.base_url,
            breaker=rt.breaker.state.value,
            breaker_since=rt.breaker.since,
            last_failure=rt.breaker.last_failure,
            last_success_at=rt.client.last_success_at,
            credential_alarm=rt.credentials.message,
            last_sync_at=self.sync.last_sync_at,
        )

    def _clock(self) -> ClockSection:
        client = self.runtime.client
        step = self.runtime.clock_watch.recent()
        return ClockSection(
            offset_s=client.clock_offset_s,
            provider_date=client.last_server_date,
            step_s=step.by_s if step else None,
            stepped_at=step.at if step else None,
        )

    def _printer(self, queue: dict[str, int]) -> PrinterSection:
        """`queued` counts the job being printed too."""
        printer = self.runtime.config.printer
        return PrinterSection(
            enabled=printer.enabled,
            backend=printer.backend,
            state=self.printer_state(),
            queued=queue.get("queued", 0) + queue.get("printing", 0),
            failed=queue.get("failed", 0),
            printed=queue.get("printed", 0),
        )

    def _storage(self) -> StorageSection:
        health = self.runtime.storage
        failing = health.failing
        return storage_section(
            self.runtime.config.state_dir,
            failures=health.failures,
            failing=f"{failing.fault.value}: {failing.message}" if failing else None,
            failing_since=failing.at if failing else None,
            high_water_failure=self.runtime.rollback_guard.write_failure,
        )
