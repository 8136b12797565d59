"""`pos-agent bench --quick` runs end to end and writes every figure (CI smoke).

No timing is asserted: CI machines vary. The figures and their goals are read from the JSON the
full run writes (README, "Performance and reliability")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

NUMERIC_KEYS = (
    "online_issue_ms.p50",
    "online_issue_ms.p99",
    "direct_provider_ms.p50",
    "direct_provider_ms.p99",
    "overhead_ms_p50",
    "overhead_ms_p99",
    "online_receipts_per_s",
    "first_offline_ms",
    "offline_issue_ms.p50",
    "offline_issue_ms.p99",
    "sync_docs_per_s",
    "sync_limit_docs_per_s",
    "rss_idle_mb",
    "rss_peak_mb",
    "startup_ready_ms",
    "render_escpos_ms.p50",
    "render_png_ms.p50",
    "machine.cpu_count",
    "seconds",
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
    assert {goal["key"] for goal in results["goals"]} >= {
        "overhead_ms_p50",
        "online_receipts_per_s",
        "sync_ratio",
        "rss_peak_mb",
        "startup_ready_ms",
    }
    for goal in results["goals"]:
        assert isinstance(goal["met"], bool)
    assert "agent overhead" in completed.stdout
