"""The daemon's services wired once around one Runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import offline_store as store
from agent import __version__
from agent.card_payments import CardPaymentService
from agent.issuing import IssuingService
from agent.runtime import Runtime
from agent.status_report import LEVEL_NAMES, store_status, verdict
from agent.sync import SyncService
from agent.transmission import Transmitter


@dataclass
class Services:
    runtime: Runtime
    transmitter: Transmitter = field(init=False)
    issuing: IssuingService = field(init=False)
    cards: CardPaymentService = field(init=False)
    sync: SyncService = field(init=False)
    printer_state: Any = None

    def __post_init__(self) -> None:
        self.transmitter = Transmitter(self.runtime)
        self.issuing = IssuingService(self.runtime, self.transmitter)
        self.cards = CardPaymentService(self.runtime)
        self.sync = SyncService(self.runtime, self.transmitter)

    def refresh_gauges(self) -> dict[str, Any]:
        rt = self.runtime
        now = rt.clock()
        summary = store.backlog_summary(rt.conn, now)
        for code, count in summary.delayed_by_code.items():
            rt.metrics.backlog.labels(str(code)).set(count)
        rt.metrics.backlog.labels("0").set(summary.by_state.get("pending", 0))
        oldest = summary.oldest_delayed
        rt.metrics.oldest_delayed_age.set((now - oldest.issued_at).total_seconds() if oldest else 0)
        rt.metrics.breaker_open.set(1 if rt.breaker.is_open else 0)
        return {"summary": summary}

    def status(self) -> dict[str, Any]:
        rt = self.runtime
        now = rt.clock()
        self.refresh_gauges()
        client = rt.client
        queue = store.print_queue_summary(rt.conn)
        report: dict[str, Any] = {
            "version": __version__,
            "generated_at": now.isoformat(),
            "daemon": {
                "running": True,
                "pid": __import__("os").getpid(),
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
                "state": self.printer_state() if callable(self.printer_state) else "unknown",
                "queued": queue.get("queued", 0) + queue.get("printing", 0),
                "failed": queue.get("failed", 0),
                "printed": queue.get("printed", 0),
            },
            "store": store_status(rt.conn, rt.config, now),
        }
        level, findings = verdict(report, rt.config)
        report["level"] = LEVEL_NAMES[level]
        report["exit_code"] = level
        report["findings"] = findings
        return report
