"""/metrics and `status` from the same sections: what one says, the other exports."""

from __future__ import annotations

import asyncio
import errno
import socket
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import offline_store as store
from agent import __version__
from agent.core.day_report import UnheldOrder
from agent.core.errors import StorageUnavailable
from agent.core.maintenance import run_maintenance
from agent.core.metrics import Metrics, register_labels
from agent.core.provider_health import note_outcome
from agent.core.runtime import Runtime
from agent.core.services import Services
from agent.core.status_metrics import unheld_oldest
from agent.elise.client import EliseClient
from agent.elise.outcomes import Unauthorized, Unreachable
from agent.secrets import ApiKey
from tests.fiscal.fixtures import shop_config
from tests.offline_store.factory import T0, builder, issue

LABELS = {"vat": "094019245", "branch": "3", "register": "till-2"}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def services(tmp_path: Path, clock: Clock) -> Iterator[Services]:
    config = shop_config(state_dir=str(tmp_path), metrics={"register_name": "till-2"})
    config = config.model_copy(update={"issuer": config.issuer.model_copy(update={"branch": 3})})
    conn = store.open_database(config.database_path, now=T0)
    key = ApiKey("k" * 32)
    client = EliseClient(config.provider, issuer_vat=config.issuer.vat, api_key=key)
    runtime = Runtime(
        config=config,
        api_key=key,
        conn=conn,
        client=client,
        clock=clock,
        metrics=Metrics(register_labels(config)),
        started_at=T0,
    )
    yield Services(runtime, printer_state=lambda: "paper_out")
    asyncio.run(client.aclose())
    conn.close()


def samples(services: Services) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by name and its own labels (the constant ones checked)."""
    found = {}
    for family in text_string_to_metric_families(services.scrape().decode()):
        for sample in family.samples:
            own = {k: v for k, v in sample.labels.items() if k not in LABELS}
            assert {k: sample.labels[k] for k in LABELS} == LABELS, sample
            found[(sample.name, frozenset(own.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def delay(
    conn: sqlite3.Connection, request_id: str, *, code: int, issued: datetime, due: datetime
) -> int:
    with store.transaction(conn):
        doc = store.insert_document(conn, "A", builder(request_id, issued_at=issued), now=issued)
        store.mark_delayed(
            conn, doc.id, code=code, due_at=due, next_attempt_at=None, error="down", now=issued
        )
    return doc.id


def test_an_empty_register_exports_what_status_shows(services: Services) -> None:
    found = samples(services)
    assert value(found, "pos_agent_build_info", version=__version__) == 1
    for state, code in (("pending", "0"), ("delayed", "1"), ("delayed", "2")):
        assert value(found, "pos_agent_backlog_documents", state=state, delayed_code=code) == 0
    # Nothing delayed, no provider answer yet: those figures are absent, not a made-up 0.
    names = {name for name, _ in found}
    assert "pos_agent_oldest_delayed_deadline_seconds" not in names
    assert "pos_agent_clock_offset_seconds" not in names
    assert "pos_agent_build_timestamp_seconds" not in names  # a source checkout, not a package
    assert "pos_agent_provider_last_success_timestamp_seconds" not in names
    assert value(found, "pos_agent_breaker_open") == 0
    assert value(found, "pos_agent_breaker_since_timestamp_seconds") == T0.timestamp()
    assert value(found, "pos_agent_integrity_check_ok") == 1
    assert value(found, "pos_agent_printer_state", state="paper_out") == 1
    assert value(found, "pos_agent_printer_state", state="ok") == 0


def test_backlog_deadline_and_faults_agree_with_status(services: Services, clock: Clock) -> None:
    rt = services.runtime
    conn = rt.conn
    delay(conn, "old", code=1, issued=T0, due=T0 + timedelta(hours=38))
    delay(conn, "aade", code=2, issued=T0 + timedelta(hours=1), due=T0 + timedelta(hours=38))
    late = delay(conn, "late", code=1, issued=T0 - timedelta(days=3), due=T0 - timedelta(hours=1))
    rejected = issue(conn, "bad")
    with store.transaction(conn):
        store.mark_rejected(conn, rejected.id, error="400", now=T0)
        job = store.enqueue_print(conn, late, "{}", copy=False, now=T0)
        store.enqueue_print(conn, late, "{}", copy=True, now=T0)
        store.fail_print(conn, job, reason="paper", now=T0)
    clock.now = T0 + timedelta(hours=30)
    note_outcome(rt, Unreachable("connect failed"), rt.breaker.generation)

    report = asyncio.run(services.status())
    found = samples(services)
    assert report.store is not None and report.provider is not None
    backlog = report.store.backlog
    assert value(found, "pos_agent_backlog_documents", state="delayed", delayed_code="1") == 2
    assert value(found, "pos_agent_backlog_documents", state="delayed", delayed_code="2") == 1
    assert backlog.by_code == {"1": 2, "2": 1}
    assert value(found, "pos_agent_overdue_documents") == backlog.overdue == 1
    assert backlog.oldest is not None and backlog.oldest.hours_left is not None
    left = value(found, "pos_agent_oldest_delayed_deadline_seconds")
    assert left == -31 * 3600  # the overdue one is the oldest: 31 h past its deadline
    assert backlog.oldest.hours_left == -31.0
    assert (
        value(found, "pos_agent_oldest_delayed_deadline_timestamp_seconds")
        == (T0 - timedelta(hours=1)).timestamp()
    )
    assert value(found, "pos_agent_oldest_delayed_age_seconds") == backlog.oldest.age_s
    assert value(found, "pos_agent_rejected_documents") == report.store.rejected == 1
    assert value(found, "pos_agent_print_jobs", state="failed") == report.printer.failed == 1
    assert value(found, "pos_agent_print_jobs", state="queued") == report.printer.queued == 1
    # The breaker opened now, and status says since when.
    assert value(found, "pos_agent_breaker_open") == 1
    assert report.provider.breaker_since == clock.now
    assert value(found, "pos_agent_breaker_since_timestamp_seconds") == clock.now.timestamp()
    # The maintenance job's journal slice: its result is exported with its time.
    run_maintenance(services.runtime.config, clock.now, archive=False)
    found = samples(services)
    assert value(found, "pos_agent_journal_ok") == 1
    assert value(found, "pos_agent_journal_check_timestamp_seconds") == clock.now.timestamp()


def test_credentials_refused_and_writes_failing_are_exported(services: Services) -> None:
    rt = services.runtime
    note_outcome(rt, Unauthorized("401: key revoked"), rt.breaker.generation)
    with pytest.raises(StorageUnavailable), rt.storage.guard(writes=True):
        raise OSError(errno.ENOSPC, "No space left on device")
    found = samples(services)
    report = asyncio.run(services.status())
    assert report.provider is not None and report.provider.credential_alarm
    assert value(found, "pos_agent_credentials_refused") == 1
    assert report.storage is not None and report.storage.failing is not None
    assert value(found, "pos_agent_storage_writes_failing") == 1
    assert value(found, "pos_agent_storage_failures_total", fault="full") == 1
    with rt.storage.guard(writes=True):
        pass  # a write that goes through clears it, in status and in /metrics
    assert value(samples(services), "pos_agent_storage_writes_failing") == 0


def test_no_constant_labels_without_a_register(tmp_path: Path) -> None:
    metrics = Metrics()
    metrics.clock_steps.inc()
    assert b"pos_agent_clock_steps_total 1.0" in metrics.exposition()


def test_register_name_defaults_to_the_hostname(tmp_path: Path) -> None:
    labels = register_labels(shop_config(state_dir=str(tmp_path)))
    assert labels == {"vat": "094019245", "branch": "0", "register": socket.gethostname()}


def test_the_background_journal_check_exports_a_broken_chain(services: Services) -> None:
    """Without anybody running `status`: the maintenance job's slice verifies the chain, and an
    entry tampered with since the last check (triggers dropped, as a hand edit would) shows as
    pos_agent_journal_ok 0. (The check resumes from its checkpoint, so an edit further back is
    found by `doctor`'s walk of the whole history.)"""
    conn = services.runtime.conn
    for number in range(3):
        issue(conn, f"j-{number}")
    assert "pos_agent_journal_ok" not in {name for name, _ in samples(services)}
    run_maintenance(services.runtime.config, T0, archive=False)
    assert value(samples(services), "pos_agent_journal_ok") == 1
    issue(conn, "j-after-the-check")
    with store.transaction(conn):
        conn.execute("DROP TRIGGER journal_no_update")
        conn.execute(
            "UPDATE journal SET event = 'forged' WHERE seq = (SELECT max(seq) FROM journal)"
        )
    run_maintenance(services.runtime.config, T0, archive=False)
    found = samples(services)
    assert value(found, "pos_agent_journal_ok") == 0
    assert value(found, "pos_agent_journal_check_timestamp_seconds") == T0.timestamp()


def test_an_unheld_order_slip_without_its_issue_time_counts_as_the_oldest() -> None:
    def slip(issued_at: datetime | None) -> UnheldOrder:
        return UnheldOrder(
            mark=400001, table="12", issued_at=issued_at, total=None, known_here=None
        )

    assert unheld_oldest([]) is None
    assert (
        unheld_oldest([slip(T0), slip(T0 - timedelta(hours=3))])
        == (T0 - timedelta(hours=3)).timestamp()
    )
    assert unheld_oldest([slip(T0), slip(None)]) == 0.0
