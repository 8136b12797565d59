"""The daemon's maintenance run rewrites an upgraded register's old print jobs a slice at a
time (on its own connection, as beside the running daemon) and reports what each slice freed."""

from __future__ import annotations

from pathlib import Path

import offline_store as store
from agent.core.maintenance import PRINT_JOBS_SLICE, run_maintenance
from tests.fiscal.fixtures import shop_config
from tests.offline_store.factory import T0, store_with_old_print_jobs

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
