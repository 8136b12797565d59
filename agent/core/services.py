"""The daemon's services wired once around one Runtime."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import offline_store as store
from agent import __version__
from agent.core.card_payments import CardPaymentService
from agent.core.issuing import IssuingService
from agent.core.runtime import Runtime
from agent.core.status_report import LEVEL_NAMES, store_status, verdict
from agent.core.sync import SyncService
from agent.core.transmission import Transmitter


@dataclass
class Services:
    runtime: Runtime
    transmitter: Transmitter = field(init=False)
    issuing: IssuingService = field(init=False)
    cards: CardPaymentService = field(init=False)
    sync: SyncService = field(init=False)
    printer_state: Callable[[], str] | None = None  # set by the printing worker
    _journal_checkpoint: tuple[int, str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.transmitter = Transmitter(self.runtime)
        self.issuing = IssuingService(self.runtime, self.transmitter)
        self.cards = CardPaymentService(self.runtime)
        self.sync = SyncService(self.runtime, self.transmitter)

    def refresh_gauges(self) -> None:
        """Right before each scrape (`GET /metrics`): the gauges are derived here only."""
        rt = self.runtime
        now = rt.clock()
        summary = store.backlog_summary(rt.conn, now)
        for code, count in summary.delayed_by_code.items():
            rt.metrics.backlog.labels(str(code)).set(count)
        rt.metrics.backlog.labels("0").set(summary.by_state.get("pending", 0))
        oldest = summary.oldest_delayed
        rt.metrics.oldest_delayed_age.set((now - oldest.issued_at).total_seconds() if oldest else 0)
        rt.metrics.breaker_open.set(1 if rt.breaker.is_open else 0)

    async def status(self) -> dict[str, Any]:
        """The database half runs in a worker thread on its own read-only connection (WAL lets
        it read beside the writer), so a `status` never holds up a receipt on the event loop."""
        stored = await asyncio.to_thread(self._store_report, self.runtime.clock())
        return self._report(stored)

    def _store_report(self, now: datetime) -> dict[str, Any]:
        """The journal is verified from the last good checkpoint: each call hashes only the
        entries written since the previous one, not years of history."""
        rt = self.runtime
        conn = store.open_database(rt.config.database_path, read_only=True)
        try:
            journal = store.verify_journal(conn, after=self._journal_checkpoint)
            self._journal_checkpoint = journal.checkpoint
            return store_status(conn, rt.config, now, journal=journal)
        finally:
            conn.close()

    def _report(self, stored: dict[str, Any]) -> dict[str, Any]:
        rt = self.runtime
        now = rt.clock()
        client = rt.client
        queue = stored["print_queue"]
        report: dict[str, Any] = {
            "version": __version__,
            "generated_at": now.isoformat(),
            "daemon": {
                "running": True,
                "pid": os.getpid(),
                "started_at": rt.started_at.isoformat(),
                "uptime_s": round((now - rt.started_at).total_seconds()),
            },
            "provider": {
                "base_url": rt.config.provider.base_url,
                "breaker": rt.breaker.state.value,
                "last_failure": rt.breaker.last_failure,
                "last_success_at": client.last_success_at.isoformat()
                if client.last_success_at
                else None,
                "credential_alarm": rt.credential_alarm,
                "last_sync_at": rt.last_sync_at.isoformat() if rt.last_sync_at else None,
            },
            "clock": {
                "offset_s": client.clock_offset_s,
                "provider_date": client.last_server_date.isoformat()
                if client.last_server_date
                else None,
            },
            "printer": {
                "enabled": rt.config.printer.enabled,
                "backend": rt.config.printer.backend,
                "state": self.printer_state() if self.printer_state else "unknown",
                "queued": queue.get("queued", 0) + queue.get("printing", 0),
                "failed": queue.get("failed", 0),
                "printed": queue.get("printed", 0),
            },
            "store": stored,
        }
        level, findings = verdict(report, rt.config)
        report["level"] = LEVEL_NAMES[level]
        report["exit_code"] = level
        report["findings"] = findings
        return report
