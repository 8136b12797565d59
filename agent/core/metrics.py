"""Prometheus metrics, in a registry of our own so tests and several runtimes do not collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.receipts = Counter(
            "pos_agent_receipts",
            "Documents issued, by outcome of the first transmission (breaker_open: went offline without a call)",
            ["outcome"],
            registry=self.registry,
        )
        self.backlog = Gauge(
            "pos_agent_backlog_documents",
            "Documents not yet accepted by the provider, by delayed code",
            ["delayed_code"],
            registry=self.registry,
        )
        self.oldest_delayed_age = Gauge(
            "pos_agent_oldest_delayed_age_seconds",
            "Age of the oldest delayed document",
            registry=self.registry,
        )
        self.provider_latency = Histogram(
            "pos_agent_provider_latency_seconds",
            "Provider call latency",
            ["endpoint"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8),
            registry=self.registry,
        )
        self.breaker_open = Gauge(
            "pos_agent_breaker_open", "1 while receipts go offline at once", registry=self.registry
        )
        self.storage_failures = Counter(
            "pos_agent_storage_failures",
            "Requests and background runs the register's storage refused, by fault "
            "(full, read_only, busy, io_error)",
            ["fault"],
            registry=self.registry,
        )
        self.storage_free_bytes = Gauge(
            "pos_agent_storage_free_bytes",
            "Free bytes on the state directory's filesystem",
            registry=self.registry,
        )
        self.clock_steps = Counter(
            "pos_agent_clock_steps",
            "Wall-clock steps of more than 2 s the daemon saw against its monotonic clock",
            registry=self.registry,
        )
        self.synced = Counter(
            "pos_agent_synced_documents",
            "Delayed documents the sync delivered, by outcome",
            ["outcome"],
            registry=self.registry,
        )

        self.open_orders = Gauge(
            "pos_agent_open_orders",
            "Food-service order slips (8.6) not yet closed by a receipt",
            registry=self.registry,
        )
        self.oldest_open_order_age = Gauge(
            "pos_agent_oldest_open_order_age_seconds",
            "Age of the oldest open order slip (the legal limit is 24 h)",
            registry=self.registry,
        )
        self.drawer_kicks = Gauge(
            "pos_agent_drawer_kicks",
            "Cash drawer kicks waiting (queued) and failed (a printer finding)",
            ["state"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
