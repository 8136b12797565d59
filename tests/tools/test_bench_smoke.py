"""`pos-agent bench --quick` runs end to end and writes every figure (CI smoke).

No timing is asserted: CI machines vary. The figures and their goals are read from the JSON the
full run writes (docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.tools.figures import GOALS

pytestmark = pytest.mark.e2e

# Latency samples, each summarised as p50 / p99 / mean / n.
SUMMARIES = (
    "online_issue_ms",
    "online_issue_httpx_pos_ms",
    "direct_provider_ms",
    "online_concurrent_ms",
    "offline_issue_ms",
    "render_escpos_ms",
    "render_png_ms",
    "scrape_ms",
    "scrape_history_ms",
)
FIGURES = (
    "overhead_ms_p50",
    "overhead_ms_p99",
    "overhead_httpx_pos_ms_p50",
    "overhead_httpx_pos_ms_p99",
    "online_receipts_per_s",
    "first_offline_ms",
    "first_offline_bound_ms",
    "backlog_issue_per_s",
    "sync_backlog",
    "sync_seconds",
    "sync_docs_per_s",
    "sync_limit_docs_per_s",
    "sync_ratio",
    "sync_direct_docs_per_s",
    "sync_vs_direct_ratio",
    "sync_concurrency",
    "sync_agent_cpu_ms_per_doc",
    "sync_sandbox_cpu_ms_per_doc",
    "sync_delay_ms",
    "sandbox_answer_ms.count",
    "sandbox_answer_ms.mean_ms",
    "sandbox_answer_ms.min_ms",
    "sandbox_answer_ms.max_ms",
    "rss_idle_mb",
    "rss_peak_mb",
    "startup_ready_ms",
    "scrape_documents",
    "scrape_history_documents",
    "scrape_bytes",
    "machine.cpu_count",
    "seconds",
)
NUMERIC_KEYS = FIGURES + tuple(
    f"{name}.{part}" for name in SUMMARIES for part in ("p50", "p99", "mean", "n")
)


def _get(results: dict, key: str) -> object:
    value: object = results
    for part in key.split("."):
        assert isinstance(value, dict) and part in value, f"missing {key}"
        value = value[part]
    return value


def test_quick_bench_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, "-m", "agent", "bench", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["mode"] == "quick"
    for key in NUMERIC_KEYS:
        value = _get(results, key)
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert value == value, key  # not NaN
    assert isinstance(results["machine"]["python"], str)
    assert results["startup_ready_ms_runs"], "no startup measured"
    assert [goal["key"] for goal in results["goals"]] == [key for key, *_ in GOALS]
    for goal in results["goals"]:
        # A goal's value is None when its figure is missing; met or missed is only reported.
        assert isinstance(goal["value"], float), goal
        assert isinstance(goal["met"], bool)
    # The sandbox answered every synced document, and never before its configured latency.
    answers = results["sandbox_answer_ms"]
    assert answers["count"] >= results["sync_backlog"]
    assert answers["min_ms"] >= results["sync_delay_ms"]
    assert "agent overhead" in completed.stdout
    assert results["scrape_history_documents"] > results["scrape_documents"]
    assert "/metrics scrape" in completed.stdout


def test_history_bench_writes_every_figure(tmp_path: Path) -> None:
    """`pos-agent bench --history N` with a small N: every figure of the history run, each goal
    reported, the card-paid receipt costing more than the cash one (it holds a reservation, a
    signature and the answer a replay gets), the history archived beside the daemon, and the
    calibration's receipts sold through the socket beside the same receipts as history."""
    from agent.tools.bench_history import GOALS as HISTORY_GOALS
    from agent.tools.bench_history import run_history_benchmark

    # 1,500 receipts at 10 a day go back five months: the older three are archived.
    results = run_history_benchmark(
        tmp_path,
        1500,
        reads=3,
        issues=6,
        startups=1,
        per_day=10,
        socket_receipts=12,
        log=lambda _: None,
    )
    for key in (
        "live_bytes_per_receipt",
        "live_bytes_per_receipt_by_payment.cash",
        "live_bytes_per_receipt_by_payment.card",
        "history.status_ms.p50",
        "history.metrics_ms.p50",
        "history.x_report_ms.p50",
        "history.issue_ms.p50",
        "after_archive.status_ms.p50",
        "startup_ready_ms",
        "issue_p50_ratio",
        "rss_after_start_mb",
        "rss_peak_mb",
        "archive.documents",
        "archive_bytes_per_receipt",
        "calibration.mix.socket.bytes_per_receipt",
        "calibration.mix.history.bytes_per_receipt",
        "calibration.card.socket.by_table.payment_signatures.bytes",
        "calibration.card.history.by_table.payment_signatures.bytes",
        "calibration.card.history_over_socket",
    ):
        value = _get(results, key)
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
    kinds = results["live_bytes_per_receipt_by_payment"]
    assert kinds["card"] > kinds["cash"]
    assert kinds["cash"] < results["live_bytes_per_receipt"] * 1.5
    assert 0 < results["archive"]["documents"] < 1500
    assert (
        results["live_after_archive"]["live_documents"] < results["live_database"]["live_documents"]
    )
    assert [goal["key"] for goal in results["goals"]] == [key for key, *_ in HISTORY_GOALS]
