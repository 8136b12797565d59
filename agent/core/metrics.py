"""Prometheus metrics, in a registry of our own so tests and several runtimes do not collide.

Counters and the latency histogram are updated where things happen; every gauge is derived at
scrape time from the same status sections `pos-agent status` shows (`core/status_metrics.py`),
so /metrics and status cannot disagree. Every series carries the register's constant labels
(issuer `vat`, `branch` and the configured `register` name, see docs/monitoring.md).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

from agent.config import AgentConfig
from agent.core.status_metrics import StatusGauges
from agent.fiscal.uid import bare_vat


class Metrics:
    def __init__(self, constant_labels: Mapping[str, str] | None = None) -> None:
        """`constant_labels`: added to every sample at exposition (none in unit tests)."""
        self.registry = CollectorRegistry()
        self.constant_labels = dict(constant_labels or {})
        self.receipts = Counter(
            "pos_agent_receipts",
            "Documents issued, by type (11.1, 11.4, 8.4, 8.5) and outcome of the first "
            "transmission (breaker_open: went offline without a call)",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.provider_latency = Histogram(
            "pos_agent_provider_latency_seconds",
            "Provider call latency",
            ["endpoint"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8),
            registry=self.registry,
        )
        self.storage_failures = Counter(
            "pos_agent_storage_failures",
            "Requests and background runs the register's storage refused, by fault "
            "(full, read_only, busy, io_error)",
            ["fault"],
            registry=self.registry,
        )
        self.clock_steps = Counter(
            "pos_agent_clock_steps",
            "Wall-clock steps of more than 2 s the daemon saw against its monotonic clock",
            registry=self.registry,
        )
        self.footer_missing = Gauge(
            "pos_agent_provider_footer_missing",
            "Items of the provider footer (legal name, web address, licence) the printed "
            "receipts lack; anything above 0 breaks Α.1112/2025",
            registry=self.registry,
        )
        self.synced = Counter(
            "pos_agent_synced_documents",
            "Delayed documents the sync delivered, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.status = StatusGauges()
        self.registry.register(self.status)

        self.open_orders = Gauge(
            "pos_agent_open_orders",
            "Food-service order slips (8.6) not yet closed by a receipt",
            registry=self.registry,
        )
        self.oldest_open_order_age = Gauge(
            "pos_agent_oldest_open_order_age_seconds",
            "Age of the oldest open order slip not yet fully paid (the legal limit is 24 h)",
            registry=self.registry,
        )
        self.drawer_kicks = Gauge(
            "pos_agent_drawer_kicks",
            "Cash drawer kicks waiting (queued) and failed (a printer finding)",
            ["state"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(_Labelled(self.registry, self.constant_labels))


class _Labelled:
    """The registry as scraped: each sample with the register's constant labels added.

    prometheus_client has no constant labels; adding them here, rather than as a label on
    every metric, keeps each `.labels(...)` call in the code about what it counts."""

    def __init__(self, registry: CollectorRegistry, labels: dict[str, str]) -> None:
        self._registry = registry
        self._labels = labels

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            if self._labels:
                metric.samples = [
                    sample._replace(labels={**sample.labels, **self._labels})
                    for sample in metric.samples
                ]
            yield metric


def register_labels(config: AgentConfig) -> dict[str, str]:
    """The constant labels telling this register apart in a fleet: the issuer's ΑΦΜ (without
    EL), its AADE branch number and the configured register name (the hostname by default)."""
    return {
        "vat": bare_vat(config.issuer.vat),
        "branch": str(config.issuer.branch),
        "register": config.metrics.register_name or socket.gethostname(),
    }
