"""The storage guard: a refused write becomes `StorageUnavailable` and an alarm that only a later
successful write clears; anything else passes through untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.core.errors import OutcomeNotRecorded, StorageUnavailable
from agent.core.metrics import Metrics
from agent.core.storage_health import StorageHealth
from tests.offline_store.factory import T0


def locked(tmp_path: Path) -> sqlite3.Connection:
    """A second connection that finds the database locked by a first one."""
    holder = sqlite3.connect(tmp_path / "db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return sqlite3.connect(tmp_path / "db", isolation_level=None, timeout=0)


def test_a_refused_write_raises_counts_and_alarms_until_a_write_succeeds(tmp_path: Path) -> None:
    metrics = Metrics()
    health = StorageHealth(lambda: T0, metrics)
    conn = locked(tmp_path)

    with pytest.raises(StorageUnavailable) as refused, health.guard(writes=True):
        conn.execute("BEGIN IMMEDIATE")

    assert refused.value.detail == {"retryable": True, "storage": "busy"}
    assert health.failures == 1 and health.failing is not None
    assert health.failing.fault == "busy" and health.failing.at == T0
    assert b'pos_agent_storage_failures_total{fault="busy"} 1.0' in metrics.exposition()
    with health.guard(writes=False):
        pass  # a read that works says nothing about writes
    assert health.failing is not None
    with health.guard(writes=True):
        pass
    assert health.failing is None and health.failures == 1


def test_a_use_cases_own_storage_error_is_noted_as_it_is() -> None:
    health = StorageHealth(lambda: T0, Metrics())
    with pytest.raises(OutcomeNotRecorded), health.guard(writes=True):
        raise OutcomeNotRecorded("full", "database or disk is full", receipt_id=7, name="A/7")
    assert health.failing is not None and health.failing.fault == "full"


def test_other_errors_pass_through_and_alarm_nothing(tmp_path: Path) -> None:
    health = StorageHealth(lambda: T0, Metrics())
    conn = sqlite3.connect(tmp_path / "db")
    with pytest.raises(sqlite3.OperationalError), health.guard(writes=True):
        conn.execute("SELECT * FROM missing")
    with pytest.raises(ValueError), health.guard(writes=True):
        raise ValueError("a bug")
    assert health.failures == 0 and health.failing is None
