"""The daemon's maintenance run rewrites an upgraded register's old print jobs a slice at a
time (on its own connection, as beside the running daemon) and reports what each slice freed;
a new register learns its packing dictionaries seconds after its first receipts."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

import offline_store as store
from agent.core.maintenance import PRINT_JOBS_SLICE, FirstDictionary, run_maintenance
from offline_store.dictionaries import LEARNED_EVENT, MIN_DOCUMENTS, SAMPLE_BYTES, current_packing
from tests.fiscal.fixtures import shop_config
from tests.offline_store.factory import T0, issue_cafe, store_with_old_print_jobs

LAYOUT = '{"lines":"' + "Φρέντο εσπρέσο 2 x 3.20 " * 50 + '"}'


def test_maintenance_compacts_old_print_jobs_in_slices(tmp_path: Path) -> None:
    config = shop_config(state_dir=str(tmp_path))
    config.database_path.parent.mkdir(parents=True, exist_ok=True)
    jobs = PRINT_JOBS_SLICE + 500
    store_with_old_print_jobs(config.database_path, jobs, LAYOUT)
    store.close_database(store.open_database(config.database_path, now=T0))  # the upgrade
    size_before = config.database_path.stat().st_size

    first = run_maintenance(config, T0, archive=False).print_jobs
    second = run_maintenance(config, T0, archive=False).print_jobs
    third = run_maintenance(config, T0, archive=False).print_jobs

    assert first is not None and second is not None and third is not None
    assert (first.rows, first.done) == (PRINT_JOBS_SLICE, False)
    assert (second.rows, second.done) == (500, True)
    assert (third.rows, third.freed_bytes) == (0, 0)
    assert first.freed_bytes > 0 and second.total_freed_bytes > first.freed_bytes
    conn = store.open_database(config.database_path, read_only=True)
    try:
        assert store.print_queue_summary(conn) == {
            "queued": 1,
            "printing": 0,
            "printed": jobs - 2,
            "failed": 1,
        }
        assert store.print_layout(conn, jobs) == LAYOUT
    finally:
        conn.close()
    store.close_database(store.open_database(config.database_path, now=T0))  # checkpoint
    assert config.database_path.stat().st_size <= size_before - second.total_freed_bytes // 2


def test_a_new_register_learns_its_dictionaries_seconds_after_its_first_receipts(
    tmp_path: Path,
) -> None:
    """The daemon looks every second (FIRST_DICTIONARY_LOOK_S) on its own connection and learns
    in a worker, on a connection of its own, only after new receipts: a short dictionary from
    the first few, the full one once they fill the sample, then nothing more to look at."""
    config = shop_config(state_dir=str(tmp_path))
    config.database_path.parent.mkdir(parents=True, exist_ok=True)
    daemon = store.open_database(config.database_path, now=T0)
    first = FirstDictionary(config, daemon)
    assert not first.due()  # an empty store
    issue_cafe(daemon, 0, MIN_DOCUMENTS - 1)
    assert first.due() and first.learn(T0) is None  # too few to learn from
    assert not first.due()  # nothing new since
    issue_cafe(daemon, MIN_DOCUMENTS - 1, 1)
    assert first.due()
    short = first.learn(T0 + timedelta(seconds=1))
    assert short is not None and short.bytes < SAMPLE_BYTES
    assert current_packing(daemon).dictionary_id == short.id
    sold, at, full = MIN_DOCUMENTS, T0 + timedelta(seconds=1), None
    while full is None and sold < 60:
        issue_cafe(daemon, sold, 3)
        sold, at = sold + 3, at + timedelta(seconds=1)
        assert first.due()
        full = first.learn(at)
    assert full is not None and full.bytes == SAMPLE_BYTES
    assert not first.due() and first.settled
    # The maintenance run a minute after the start has nothing left to learn.
    assert run_maintenance(config, T0 + timedelta(minutes=1), archive=False).learned is None
    issue_cafe(daemon, sold, 5)
    daemon.close()
    assert not first.due()  # settled: no read at all (the connection is closed)
    conn = store.open_database(config.database_path, read_only=True)
    try:
        events = conn.execute("SELECT count(*) FROM journal WHERE event = ?", (LEARNED_EVENT,))
        assert events.fetchone()[0] == 2
        assert store.verify_journal(conn).ok
        assert store.altered_payloads(conn, states=None) == []
    finally:
        conn.close()


def test_a_register_that_already_has_a_full_dictionary_looks_once(tmp_path: Path) -> None:
    config = shop_config(state_dir=str(tmp_path))
    config.database_path.parent.mkdir(parents=True, exist_ok=True)
    daemon = store.open_database(config.database_path, now=T0)
    issue_cafe(daemon, 0, 40)
    assert run_maintenance(config, T0, archive=False).learned is not None
    first = FirstDictionary(config, daemon)
    assert not first.due() and first.settled
    daemon.close()
    with pytest.raises(sqlite3.ProgrammingError):
        daemon.execute("SELECT 1")
    assert not first.due()
