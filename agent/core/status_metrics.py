"""The status report's figures as Prometheus gauges, for a fleet's Prometheus.

Each scrape first builds a `ScrapeView` from the same section builders `pos-agent status` uses
(`Services.scrape_view`), and the gauges below are a pure function of it: a figure that status
shows one way cannot be exported another. Only the cheap part of status is built (no journal
walk, no numbering-gap search, print jobs counted for the waiting states only): a scrape must
not grow with years of history.

Naming (docs/monitoring.md): `pos_agent_` + what + unit; `_timestamp_seconds` for Unix
times (alert on `time() - x`), `_seconds` for durations, `_documents` / `_jobs` for counts, 0/1
gauges for yes/no. A figure nobody can know yet (no delayed document, no answer from the
provider so far) is left out rather than exported as 0, so an alert on it cannot fire on a guess.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from pydantic import BaseModel, ConfigDict

from agent.core.day_report import Reconciliation, UnheldOrder
from agent.core.status_report import (
    Backlog,
    ClockSection,
    PrinterSection,
    ProviderSection,
    StorageSection,
)
from printers.status import PrinterState


class ChecksSection(BaseModel):
    """The database checks as status last saw them: the integrity check run at open, and the
    journal chain as last verified (None: not verified yet in this daemon's life)."""

    model_config = ConfigDict(frozen=True)

    integrity: str | None
    integrity_checked_at: datetime | None
    journal_ok: bool | None
    journal_checked_at: datetime | None


class ScrapeView(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str
    built_at: int | None  # seconds since the epoch; None in a source checkout
    generated_at: datetime
    backlog: Backlog
    rejected: int
    mark_unknown: int
    provider: ProviderSection
    clock: ClockSection
    printer: PrinterSection
    storage: StorageSection
    checks: ChecksSection
    # The day: the first receipt in no closing (Z), and the last reconciliation.
    unclosed_since: datetime | None = None
    reconciliation: Reconciliation | None = None
    # Held returns whose original was rejected / accepted without a MARK (core/held_returns).
    stranded_returns: dict[str, int] = {}


def _gauge(name: str, documentation: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, documentation, value=value)


def _timestamp(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def _flag(value: bool | None) -> float | None:
    return None if value is None else float(value)


def _labelled(name: str, documentation: str, label: str, values: dict[str, float]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


def status_families(view: ScrapeView) -> Iterator[Metric]:
    """Every gauge of a scrape, from one view."""
    build = GaugeMetricFamily(
        "pos_agent_build_info", "Always 1; the agent's version in `version`", labels=["version"]
    )
    build.add_metric([view.version], 1)
    yield build
    yield from _gauge(
        "pos_agent_build_timestamp_seconds",
        "When the running package was built (absent in a source checkout): the newest in the "
        "fleet is the version the others should catch up with",
        view.built_at,
    )
    yield from _backlog(view.backlog, view)
    yield from _provider(view.provider)
    yield from _printer(view.printer)
    yield from _storage(view.storage)
    yield from _checks(view.checks)
    yield from _day(view)
    yield from _gauge(
        "pos_agent_clock_offset_seconds",
        "The provider's Date header minus this register's clock at the provider's last answer "
        "(absent until it answered)",
        view.clock.offset_s,
    )


def _backlog(backlog: Backlog, view: ScrapeView) -> Iterator[Metric]:
    documents = GaugeMetricFamily(
        "pos_agent_backlog_documents",
        "Documents not yet accepted by the provider: state pending (being sent, delayed_code 0) "
        "or delayed with its IsDelayedCode (1 provider unreachable, 2 AADE down)",
        labels=["state", "delayed_code"],
    )
    documents.add_metric(["pending", "0"], backlog.pending)
    for code in ("1", "2"):
        documents.add_metric(["delayed", code], backlog.by_code.get(code, 0))
    yield documents
    oldest = backlog.oldest
    yield GaugeMetricFamily(
        "pos_agent_oldest_delayed_age_seconds",
        "Age of the oldest delayed document (0 when none)",
        value=oldest.age_s if oldest else 0,
    )
    due = oldest.due_at if oldest else None
    yield from _gauge(
        "pos_agent_oldest_delayed_deadline_seconds",
        "Seconds until the oldest delayed document's legal transmission deadline (end of the day "
        "after its issue, Greek time); negative once past; absent when nothing is delayed",
        (due - view.generated_at).total_seconds() if due else None,
    )
    yield from _gauge(
        "pos_agent_oldest_delayed_deadline_timestamp_seconds",
        "The oldest delayed document's transmission deadline (absent when nothing is delayed)",
        _timestamp(due),
    )
    yield GaugeMetricFamily(
        "pos_agent_overdue_documents",
        "Delayed documents already past their transmission deadline",
        value=backlog.overdue,
    )
    yield GaugeMetricFamily(
        "pos_agent_rejected_documents",
        "Documents the provider refused for their data; never retried, they need a person",
        value=view.rejected,
    )
    yield GaugeMetricFamily(
        "pos_agent_mark_unknown_documents",
        "Documents the provider holds (duplicate answer) whose MARK the agent never learned",
        value=view.mark_unknown,
    )
    yield _labelled(
        "pos_agent_stranded_return_documents",
        "Returns held offline behind an original that can no longer give them a MARK, by why "
        "(rejected: never sent, needs a person; mark_unknown: run pos-agent reconcile)",
        "why",
        {why: float(view.stranded_returns.get(why, 0)) for why in ("rejected", "mark_unknown")},
    )


def _day(view: ScrapeView) -> Iterator[Metric]:
    yield from _gauge(
        "pos_agent_unclosed_since_timestamp_seconds",
        "When the first receipt no daily closing (Z) covers yet was issued (absent: all closed)",
        _timestamp(view.unclosed_since),
    )
    result = view.reconciliation
    if result is None:
        return
    yield GaugeMetricFamily(
        "pos_agent_reconciliation_timestamp_seconds",
        "When the last reconciliation with the provider's list ran",
        value=result.checked_at.timestamp(),
    )
    yield GaugeMetricFamily(
        "pos_agent_reconciliation_failed",
        "1 when the last reconciliation could not read the provider's list (status says why)",
        value=float(result.error is not None),
    )
    yield _labelled(
        "pos_agent_reconciliation_documents",
        "The last reconciliation's documents by result: matched, resolved (MARK taken from the "
        "list), resent (the provider lacked them), flagged (for a person)",
        "result",
        {
            "matched": result.matched,
            "resolved": result.resolved,
            "resent": result.resent,
            "flagged": len(result.flagged),
        },
    )
    orders = result.orders
    if orders is None:
        return
    yield GaugeMetricFamily(
        "pos_agent_reconciliation_orders_failed",
        "1 when the last reconciliation could not read the provider's open order slips",
        value=float(orders.error is not None),
    )
    yield _labelled(
        "pos_agent_reconciliation_orders",
        "The provider's open order slips (8.6) against the open tables, by result: matched, "
        "resolved (MARK taken from the list), resent (not yet at the provider), flagged (open "
        "on one side only: for a person)",
        "result",
        {
            "matched": orders.matched,
            "resolved": orders.resolved,
            "resent": orders.resent,
            "flagged": len(orders.flagged) + len(orders.unheld),
        },
    )
    yield from _gauge(
        "pos_agent_unheld_order_oldest_timestamp_seconds",
        "When the oldest order slip the provider holds open and no table here holds was issued "
        "(absent: none; 0: one whose issue time the provider did not give, as old as can be); "
        "the provider refuses the merchant 24 h after it",
        unheld_oldest(orders.unheld),
    )


def unheld_oldest(unheld: list[UnheldOrder]) -> float | None:
    """The oldest unheld order slip's issue time as a timestamp; 0 (as old as can be) when the
    provider gave one without its time, so the alert fires as `status` is critical for it."""
    issued = [order.issued_at for order in unheld]
    if None in issued:
        return 0.0
    return min(moment.timestamp() for moment in issued if moment is not None) if issued else None


def _provider(provider: ProviderSection) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "pos_agent_breaker_open",
        "1 while the circuit breaker is open: receipts go offline at once, a probe re-checks",
        value=float(provider.breaker == "open"),
    )
    yield from _gauge(
        "pos_agent_breaker_since_timestamp_seconds",
        "When the breaker entered its current state (the daemon's start if it never changed)",
        _timestamp(provider.breaker_since),
    )
    yield GaugeMetricFamily(
        "pos_agent_credentials_refused",
        "1 while the provider refuses the API key (401): nothing can be sent until it is fixed",
        value=float(provider.credential_alarm is not None),
    )
    yield from _gauge(
        "pos_agent_provider_last_success_timestamp_seconds",
        "When the provider last answered a call (absent until it did in this daemon's life)",
        _timestamp(provider.last_success_at),
    )
    yield from _gauge(
        "pos_agent_sync_last_completed_timestamp_seconds",
        "When the last backlog sync run completed (absent until one did)",
        _timestamp(provider.last_sync_at),
    )


def _printer(printer: PrinterSection) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "pos_agent_printer_enabled", "1 when the agent prints receipts", value=printer.enabled
    )
    yield _labelled(
        "pos_agent_print_jobs",
        "Print jobs waiting (queued, including the one printing) and failed for good",
        "state",
        {"queued": printer.queued, "failed": printer.failed},
    )
    yield _labelled(
        "pos_agent_printer_state",
        "1 for the printer's state as last read (unknown: the backend cannot tell, or not read "
        "yet), 0 for the others",
        "state",
        {state.value: float(printer.state == state.value) for state in PrinterState},
    )


def _storage(storage: StorageSection) -> Iterator[Metric]:
    yield from _gauge(
        "pos_agent_storage_free_bytes",
        "Free bytes on the state directory's filesystem for the daemon's user",
        storage.free_bytes,
    )
    yield from _gauge(
        "pos_agent_storage_free_inodes",
        "Free inodes on the state directory's filesystem",
        storage.free_inodes,
    )
    yield GaugeMetricFamily(
        "pos_agent_storage_read_only",
        "1 when the state directory's filesystem is mounted read-only",
        value=storage.read_only,
    )
    yield GaugeMetricFamily(
        "pos_agent_storage_writes_failing",
        "1 from a write the storage refused until a later write goes through",
        value=storage.failing is not None,
    )


def _checks(checks: ChecksSection) -> Iterator[Metric]:
    yield from _gauge(
        "pos_agent_integrity_check_ok",
        "1 when the database's integrity check at the daemon's start said ok, 0 otherwise",
        _flag(checks.integrity == "ok" if checks.integrity is not None else None),
    )
    yield from _gauge(
        "pos_agent_integrity_check_timestamp_seconds",
        "When that integrity check ran",
        _timestamp(checks.integrity_checked_at),
    )
    yield from _gauge(
        "pos_agent_journal_ok",
        "1 when the journal's hash chain verified at its last check, 0 when it broke",
        _flag(checks.journal_ok),
    )
    yield from _gauge(
        "pos_agent_journal_check_timestamp_seconds",
        "When the journal's hash chain was last verified",
        _timestamp(checks.journal_checked_at),
    )


class StatusGauges:
    """A collector exporting the last `ScrapeView` given to it (nothing before the first)."""

    def __init__(self) -> None:
        self._view: ScrapeView | None = None

    def update(self, view: ScrapeView) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        if self._view is not None:
            yield from status_families(self._view)
