"""The figures the benchmarks report: the goals, percentiles, process and machine facts, and
the table `pos-agent bench` prints.

Shared by `pos-agent bench` (agent/tools/bench.py) and its history run
(agent/tools/bench_history.py); neither imports the other for them.
"""

from __future__ import annotations

import os
import platform
import statistics
from typing import Any

# -- goals -------------------------------------------------------------------------------------

# (key, comparison, limit, description)
GOALS: tuple[tuple[str, str, float, str], ...] = (
    ("overhead_ms_p50", "<=", 2.0, "agent overhead p50 <= 2 ms"),
    ("overhead_ms_p99", "<=", 8.0, "agent overhead p99 <= 8 ms"),
    ("online_receipts_per_s", ">=", 150.0, ">= 150 receipts/s with 4 POS clients"),
    ("offline_issue_ms.p99", "<=", 10.0, "offline issue p99 <= 10 ms"),
    ("sync_ratio", ">=", 0.90, "sync >= 90 % of concurrency/latency"),
    ("rss_idle_mb", "<=", 60.0, "RSS idle <= 60 MB"),
    ("rss_peak_mb", "<=", 100.0, "RSS peak <= 100 MB"),
    ("startup_ready_ms", "<=", 1500.0, "exec to READY <= 1500 ms"),
    ("scrape_ms.p50", "<=", 20.0, "/metrics scrape p50 <= 20 ms"),
    ("render_escpos_ms.p50", "<=", 15.0, "ESC/POS render p50 <= 15 ms"),
    ("render_png_ms.p50", "<=", 40.0, "PNG render p50 <= 40 ms"),
)


def _lookup(results: dict[str, Any], key: str) -> float | None:
    value: Any = results
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


Goal = tuple[str, str, float, str]


def evaluate_goals(
    results: dict[str, Any], goals: tuple[Goal, ...] = GOALS
) -> list[dict[str, Any]]:
    """Each goal (a dotted key into `results`, `<=`/`>=`, the limit) met or missed."""
    verdicts = []
    for key, op, limit, text in goals:
        value = _lookup(results, key)
        met = value is not None and (value <= limit if op == "<=" else value >= limit)
        verdicts.append(
            {"key": key, "goal": f"{op} {limit:g}", "value": value, "met": met, "text": text}
        )
    return verdicts


# -- statistics --------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return ordered[int(rank) - 1]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(samples, 50), 3),
        "p99": round(percentile(samples, 99), 3),
        "mean": round(statistics.fmean(samples), 3),
        "n": len(samples),
    }


# -- process figures ---------------------------------------------------------------------------


def proc_status_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process in MiB (Linux /proc)."""
    figures: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = round(int(value.split()[0]) / 1024, 1)
    return figures


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="ascii") as handle:
            info["mem_total_mb"] = round(int(handle.readline().split()[1]) / 1024)
    except OSError:
        pass
    return info


def loadavg() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def print_table(results: dict[str, Any]) -> None:
    rows = [
        ("online issue (agent)", ms_figures(results["online_issue_ms"])),
        ("  same, httpx as the POS", ms_figures(results["online_issue_httpx_pos_ms"])),
        ("direct to provider", ms_figures(results["direct_provider_ms"])),
        (
            "agent overhead",
            f"p50 {results['overhead_ms_p50']} / p99 {results['overhead_ms_p99']} ms",
        ),
        ("4 POS clients", f"{results['online_receipts_per_s']} receipts/s"),
        (
            "first offline receipt",
            f"{results['first_offline_ms']} ms (bound {results['first_offline_bound_ms']:g})",
        ),
        ("offline issue", ms_figures(results["offline_issue_ms"])),
        (
            "sync",
            f"{results['sync_docs_per_s']} docs/s of {results['sync_limit_docs_per_s']} "
            f"({results['sync_ratio'] * 100:.0f} %, {results['sync_backlog']} docs)",
        ),
        (
            "CPU per synced document",
            f"agent {results['sync_agent_cpu_ms_per_doc']} ms, "
            f"sandbox {results['sync_sandbox_cpu_ms_per_doc']} ms",
        ),
        (
            "sandbox answer time",
            "mean {mean_ms} / min {min_ms} / max {max_ms} ms from arrival".format(
                **results["sandbox_answer_ms"]
            ),
        ),
        (
            "bare client, same sandbox",
            f"{results['sync_direct_docs_per_s']} docs/s "
            f"(agent sync = {results['sync_vs_direct_ratio'] * 100:.0f} % of it)",
        ),
        (
            "/metrics scrape",
            f"{ms_figures(results['scrape_ms'])} ({results['scrape_documents']} documents); "
            f"{ms_figures(results['scrape_history_ms'])} ({results['scrape_history_documents']})",
        ),
        ("RSS idle / peak", f"{results['rss_idle_mb']} / {results['rss_peak_mb']} MB"),
        ("startup to READY", f"{results['startup_ready_ms']} ms"),
        (
            "render ESC/POS / PNG",
            f"{results['render_escpos_ms']['p50']} / {results['render_png_ms']['p50']} ms p50",
        ),
    ]
    print_rows(rows, results["goals"])
    print(
        f"\n  {results['seconds']} s, {results['machine']['cpu_count']} CPUs, Python {results['machine']['python']}"
    )


def print_rows(rows: list[tuple[str, str]], goals: list[dict[str, Any]]) -> None:
    """The figures as aligned name/value rows, then each goal met or missed: one look for
    every benchmark's table."""
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print()
    for goal in goals:
        mark = "met   " if goal["met"] else "MISSED"
        print(f"  [{mark}] {goal['text']}: {goal['value']}")


def ms_figures(figures: dict[str, float]) -> str:
    return f"p50 {figures['p50']} / p99 {figures['p99']} ms"
