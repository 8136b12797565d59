"""The series names the agent exports, read from a real `Metrics` exposition.

Every gauge of the status collector is filled (a view in which everything is known), so the
exposition holds each family; sample names follow from each family's type as the exposition
format defines them (a counter's `_total`, a histogram's `_bucket`, `_sum`, `_count`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from agent.clock import ATHENS
from agent.core.day_report import OrderReconciliation, Reconciliation, UnheldOrder
from agent.core.metrics import Metrics
from agent.core.status_metrics import ChecksSection, ScrapeView
from agent.core.status_report import (
    Backlog,
    ClockSection,
    OldestDelayed,
    PrinterSection,
    ProviderSection,
    StorageSection,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=ATHENS)
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}
# Series Prometheus itself adds to every target.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def everything_known() -> ScrapeView:
    return ScrapeView(
        version="0.1.0",
        built_at=1_795_000_000,
        generated_at=NOW,
        backlog=Backlog(
            pending=1,
            delayed=2,
            by_code={"1": 1, "2": 1},
            oldest=OldestDelayed(
                receipt_id=1,
                issued_at=NOW - timedelta(hours=20),
                due_at=NOW + timedelta(hours=14),
                age_s=72000,
                hours_left=14.0,
            ),
            overdue=0,
        ),
        rejected=0,
        mark_unknown=0,
        provider=ProviderSection(
            base_url="https://provider",
            breaker="open",
            breaker_since=NOW,
            last_failure="down",
            last_success_at=NOW,
            credential_alarm=None,
            last_sync_at=NOW,
        ),
        clock=ClockSection(offset_s=0.5, provider_date=NOW),
        printer=PrinterSection(
            enabled=True, backend="usb", state="ok", queued=0, failed=0, printed=3
        ),
        storage=StorageSection(
            path="/var/lib/pos-agent", free_bytes=10**9, free_inodes=10**6, read_only=False
        ),
        checks=ChecksSection(
            integrity="ok", integrity_checked_at=NOW, journal_ok=True, journal_checked_at=NOW
        ),
        unclosed_since=NOW,
        reconciliation=Reconciliation(
            day=NOW.date(),
            checked_at=NOW,
            provider_documents=3,
            matched=2,
            resolved=1,
            resent=0,
            flagged=[],
            orders=OrderReconciliation(
                provider_open=2,
                matched=1,
                resolved=0,
                resent=0,
                flagged=[],
                unheld=[UnheldOrder(mark=400001234567, table="12", issued_at=NOW, total=None)],
            ),
        ),
    )


def exported_series() -> set[str]:
    metrics = Metrics({"vat": "094019245", "branch": "0", "register": "till-1"})
    metrics.status.update(everything_known())
    names = set()
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names
