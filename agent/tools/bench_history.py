"""`pos-agent bench --history N`: what years of receipts on one database cost.

One run, real processes on loopback (sandbox provider + daemon, dummy printer):
1. on an empty store: `GET /v1/status`, `GET /metrics`, today's X report (`GET
   /v1/reports/day`) and online receipts (POS → agent → sandbox) — the baseline;
2. the daemon stopped, N receipts of history written with the daemon's own store code
   (`agent.tools.history`: 500 a day, accepted and printed, in big transactions);
3. the database's bytes per receipt, by table; exec to READY=1 (median of several starts);
   status, metrics and receipts again, now with the history; the daemon's RSS;
4. archiving everything the retention lets go (`retention.live_days`, whole months) while the
   daemon runs: documents per second, bytes per archived receipt, the live file afterwards,
   and status once more;
5. the calibration: the same receipts sold through the socket of a fresh daemon, printed by
   its spool (agent/tools/socket_sample.py), café mix and card sales alone, beside a history
   of the same size written here: bytes per receipt and by table, side by side. If they
   differ, the history no longer takes the daemon's path.
`issue_p50_ratio` is the issue time p50 with history over the empty store's, in the same run.
No timing is asserted anywhere: the history goals are reported as met or missed.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import offline_store as store
from agent.clock import athens_now
from agent.config import load_config
from agent.core.maintenance import archive_batch
from agent.tools.figures import (
    Goal,
    evaluate_goals,
    machine_info,
    print_rows,
    proc_status_mb,
    summary,
)
from agent.tools.history import CARD_EVERY, RECEIPTS_PER_DAY, build_history
from agent.tools.local_stack import LocalStack, StackSettings, cash_receipt, post_json
from agent.tools.socket_sample import per_receipt, socket_sample, table_bytes

GOALS: tuple[Goal, ...] = (
    ("history.status_ms.p50", "<=", 100.0, "status p50 <= 100 ms with the history"),
    ("history.metrics_ms.p50", "<=", 50.0, "/metrics p50 <= 50 ms with the history"),
    # Today's X report reads today's receipts only (the day's id range), never the history.
    ("history.x_report_ms.p50", "<=", 500.0, "today's X report p50 <= 0.5 s with the history"),
    ("startup_ready_ms", "<=", 1500.0, "exec to READY <= 1.5 s with the history"),
    ("issue_p50_ratio", "<=", 1.10, "issue p50 within 10 % of the empty store's"),
    ("rss_peak_mb", "<=", 100.0, "RSS <= 100 MB"),
    (
        "live_bytes_per_receipt_by_payment.cash",
        "<=",
        2048.0,
        "live database <= 2 KB per online cash receipt",
    ),
    (
        "live_bytes_per_receipt_by_payment.card",
        "<=",
        2000.0,
        "live database <= 2,000 bytes per card sale (signed, paid, printed)",
    ),
    (
        "live_bytes_per_receipt",
        "<=",
        1500.0,
        "live database <= 1,500 bytes per receipt, café mix (history)",
    ),
    (
        "calibration.mix.socket.bytes_per_receipt",
        "<=",
        1500.0,
        "live database <= 1,500 bytes per receipt, café mix sold through the socket",
    ),
    (
        "calibration.card.socket.bytes_per_receipt",
        "<=",
        2000.0,
        "live database <= 2,000 bytes per card sale sold through the socket",
    ),
    ("archive_bytes_per_receipt", "<=", 512.0, "archive <= 0.5 KB per receipt"),
)


# Two months of a busy till: the learned dictionaries are the ones a live register has.
KIND_SAMPLE = 30_000
# Receipts sold through the socket for the calibration, per mix (~2-4 minutes each).
SOCKET_SAMPLE = 5_000


def run_history_benchmark(
    root: Path,
    documents: int,
    *,
    reads: int = 60,
    issues: int = 150,
    startups: int = 3,
    per_day: int = RECEIPTS_PER_DAY,
    socket_receipts: int = SOCKET_SAMPLE,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {"documents": documents, "machine": machine_info()}
    stack = LocalStack(
        root,
        StackSettings(printer_backend="dummy", preview_dir=False, sync_interval_s=3600.0),
    )
    with stack:  # starts the sandbox and the daemon on an empty store
        results["startup_ready_ms_empty"] = round(stack.last_ready_ms or 0.0, 1)
        log("empty store: status, metrics, receipts")
        results["empty"] = _measure(stack, "empty", reads, issues)
        stack.stop_daemon()

        config = load_config(stack.config_path)
        log(f"writing {documents} receipts of history")
        conn = store.open_database(config.database_path, check=False)
        built = build_history(conn, config, documents, now=athens_now(), per_day=per_day, log=log)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close_database(conn)
        results["history_build_s"] = round(built.seconds, 1)
        results["history_span"] = [
            built.first_issued_at.isoformat(),
            built.last_issued_at.isoformat(),
        ]
        live = _sizes(config.database_path)
        results["live_database"] = live
        total = documents + issues
        results["live_bytes_per_receipt"] = round(live["bytes"] / total)
        results["live_bytes_per_receipt_by_payment"] = _sizes_by_payment(
            root / "kinds", config, min(KIND_SAMPLE, documents)
        )

        runs = []
        for _ in range(startups):
            runs.append(stack.start_daemon())
            if len(runs) < startups:
                stack.stop_daemon()
        results["startup_ready_ms"] = round(statistics.median(runs), 1)
        results["startup_ready_ms_runs"] = [round(r, 1) for r in runs]
        log(f"startup with history: {results['startup_ready_ms_runs']} ms")
        assert stack.daemon is not None
        results["rss_after_start_mb"] = proc_status_mb(stack.daemon.pid)["VmRSS"]
        results["history"] = _measure(stack, "history", reads, issues)
        empty_p50 = results["empty"]["issue_ms"]["p50"]
        results["issue_p50_ratio"] = round(results["history"]["issue_ms"]["p50"] / empty_p50, 3)

        log("archiving what the retention lets go, beside the running daemon")
        results["archive"] = _archive(config)
        archived = results["archive"]["documents"]
        if archived:
            results["archive_bytes_per_receipt"] = round(
                results["archive"]["file_bytes"] / archived
            )
        results["live_after_archive"] = _sizes(config.database_path)
        results["after_archive"] = _measure(stack, "after-archive", reads, 0)
        results["rss_peak_mb"] = proc_status_mb(stack.daemon.pid)["VmHWM"]
    log(f"calibration: {socket_receipts} receipts of each mix through the socket")
    results["calibration"] = {
        name: _calibration(root / "calibration" / name, config, socket_receipts, every, log)
        for name, every in (("mix", CARD_EVERY), ("card", 1))
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["goals"] = evaluate_goals(results, GOALS)
    return results


def _measure(stack: LocalStack, prefix: str, reads: int, issues: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with stack.client(timeout_s=120) as client:
        for path, key in (
            ("/v1/status", "status_ms"),
            ("/metrics", "metrics_ms"),
            ("/v1/reports/day", "x_report_ms"),
        ):
            client.get(path).raise_for_status()  # warm
            samples = []
            for _ in range(reads):
                t0 = time.perf_counter()
                response = client.get(path)
                samples.append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
            figures[key] = summary(samples)
        if issues:
            samples = []
            for index in range(issues + 5):
                body = cash_receipt(f"bench-{prefix}-{index}")
                body["delivery"] = {"print": False}
                t0 = time.perf_counter()
                response = post_json(client, "/v1/receipts", body)
                elapsed = (time.perf_counter() - t0) * 1000
                if response.status_code != 201 or response.json()["state"] != "accepted":
                    raise RuntimeError(f"receipt not accepted: {response.text[:300]}")
                if index >= 5:  # the first few warm the connection and the caches
                    samples.append(elapsed)
            figures["issue_ms"] = summary(samples)
    return figures


def _archive(config: Any) -> dict[str, Any]:
    conn = store.open_database(config.database_path, check=False)
    documents = batches = 0
    t0 = time.perf_counter()
    try:
        while (batch := archive_batch(conn, config, athens_now())) is not None:
            documents += batch.documents
            batches += 1
    finally:
        conn.close()
    seconds = time.perf_counter() - t0
    files = list(config.archive_dir.glob("*.jsonl.*")) if config.archive_dir.exists() else []
    return {
        "documents": documents,
        "batches": batches,
        "months": len(files),
        "seconds": round(seconds, 1),
        "documents_per_s": round(documents / seconds) if seconds and documents else 0,
        "file_bytes": sum(path.stat().st_size for path in files),
    }


def _sizes_by_payment(scratch: Path, config: Any, count: int) -> dict[str, int]:
    """Bytes per receipt of a history paid only in cash, and only by card (signed through the
    terminal), each in a scratch store of its own: what the mix above is made of."""
    return {
        name: _history_sample(scratch / f"{name}.sqlite3", config, count, card_every)[
            "bytes_per_receipt"
        ]
        for name, card_every in (("cash", 0), ("card", 1))
    }


def _history_sample(path: Path, config: Any, count: int, card_every: int) -> dict[str, Any]:
    """`count` receipts of history in a scratch store of their own: bytes per receipt, and by
    table (with the space unused inside the pages)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    conn = store.open_database(path, check=False)
    try:
        build_history(
            conn, config, count, now=athens_now(), card_every=card_every, log=lambda _: None
        )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close_database(conn)
    return {
        "receipts": count,
        "bytes_per_receipt": round(store.database_size_bytes(path) / count),
        "by_table": per_receipt(table_bytes(path), count),
    }


def _calibration(
    root: Path, config: Any, count: int, card_every: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """The same `count` receipts sold through the socket and written as history."""
    socket = socket_sample(root / "socket", count, card_every=card_every, log=log)
    history = _history_sample(root / "history.sqlite3", config, count, card_every)
    return {
        "socket": socket,
        "history": history,
        "history_over_socket": round(history["bytes_per_receipt"] / socket["bytes_per_receipt"], 3),
    }


def _sizes(path: Path) -> dict[str, Any]:
    """The file (with its WAL) and the bytes each table and index takes (SQLite's dbstat)."""
    conn = store.open_database(path, read_only=True)
    try:
        tables = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            )
            if row[1] > 8192
        }
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        live = sum(
            n for state, n in store.backlog_summary(conn, athens_now()).by_state.items() if n
        )
    finally:
        conn.close()
    return {
        "bytes": store.database_size_bytes(path),
        "free_bytes": free * page,
        "live_documents": live,
        "by_table": tables,
    }


def print_history_table(results: dict[str, Any]) -> None:
    empty, history, after = results["empty"], results["history"], results["after_archive"]
    archive = results["archive"]
    rows = [
        ("history", f"{results['documents']} receipts, written in {results['history_build_s']} s"),
        (
            "live database",
            f"{results['live_database']['bytes'] / 1e6:.1f} MB = "
            f"{results['live_bytes_per_receipt']} bytes per receipt "
            f"(cash only {results['live_bytes_per_receipt_by_payment']['cash']}, "
            f"card only {results['live_bytes_per_receipt_by_payment']['card']})",
        ),
        ("status (empty / history / archived)", _trio(empty, history, after, "status_ms")),
        ("/metrics (empty / history / archived)", _trio(empty, history, after, "metrics_ms")),
        (
            "issue p50 / p99 (empty → history)",
            f"{empty['issue_ms']['p50']} / {empty['issue_ms']['p99']} → "
            f"{history['issue_ms']['p50']} / {history['issue_ms']['p99']} ms "
            f"(ratio {results['issue_p50_ratio']})",
        ),
        (
            "exec to READY (empty → history)",
            f"{results['startup_ready_ms_empty']} → {results['startup_ready_ms']} ms "
            f"{results['startup_ready_ms_runs']}",
        ),
        (
            "RSS after start / peak",
            f"{results['rss_after_start_mb']} / {results['rss_peak_mb']} MB",
        ),
        (
            "archive",
            f"{archive['documents']} receipts in {archive['months']} month files, "
            f"{archive['documents_per_s']} receipts/s, "
            f"{results.get('archive_bytes_per_receipt', '-')} bytes per receipt",
        ),
        *(
            (
                f"calibration, {name} ({calibration['socket']['receipts']} receipts)",
                f"socket {calibration['socket']['bytes_per_receipt']} / history "
                f"{calibration['history']['bytes_per_receipt']} bytes per receipt",
            )
            for name, calibration in results["calibration"].items()
        ),
        (
            "live database after",
            f"{results['live_after_archive']['bytes'] / 1e6:.1f} MB for "
            f"{results['live_after_archive']['live_documents']} live receipts",
        ),
    ]
    print_rows(rows, results["goals"])
    print(f"\n  {results['seconds']} s, {os.cpu_count()} CPUs")


def _trio(empty: dict[str, Any], history: dict[str, Any], after: dict[str, Any], key: str) -> str:
    return " / ".join(f"{part[key]['p50']}" for part in (empty, history, after)) + " ms p50"


__all__ = ["print_history_table", "run_history_benchmark"]
