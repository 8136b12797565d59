"""Run one of the agent's tools as the technician does (`python -m …`) and read its JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_report(
    module: str, *args: str, out: Path, timeout_s: float, log: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`python -m module args… --json out`; the report it wrote, or a failure showing the tool's
    output (and the tail of `log`, e.g. a guest's console) when it wrote none."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
    assert out.exists(), completed.stdout[-3000:] + completed.stderr[-3000:] + tail
    return completed, json.loads(out.read_text(encoding="utf-8"))
