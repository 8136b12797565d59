"""`pos-agent demo` end to end, as `make demo` runs it: exit 0, readable outputs, nothing left."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


@pytest.mark.e2e
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    output = tmp_path / "out"
    env = {**os.environ, "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "agent", "demo", "--keep", str(output)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,  # a hang guard only; the demo prints how long it took
        env=env,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "demo OK: every step behaved as expected" in out
    assert "✗" not in out and "\033[" not in out
    for step in (
        "A cash receipt",
        "A card payment",
        "ECDSA P-256 signature verifies",
        "An 8.4 POS receipt",
        "A refund to the card",
        "8.5 POS return accepted",
        "11.4 credit accepted",
        "A café table: two order slips (8.6)",
        "the provider shows both order slips closed by this receipt's MARK",
        "ESC p, pin 2",
        "IsDelayedCode 1",
        "TransmissionFailure?",
        "IsDelayedCode 2",
        "signed while AADE is down, and the signature verifies",
        "status before recovery",
        "$ pos-agent sync",
        "status after recovery",
    ):
        assert step in out, f"{step!r} missing from the demo output"
    assert "pos-agent status: WARN" in out and "pos-agent status: OK" in out

    previews = sorted((output / "previews").glob("*.png"))
    escpos = sorted((output / "escpos").glob("*.bin"))
    assert len(previews) >= 7 and len(escpos) >= 7
    for png in previews:
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width >= 384 and image.height > 400
    first = escpos[0].read_bytes()
    assert first.startswith(b"\x1b@\x1bt") and "ΑΠΟΔΕΙΞΗ".encode("cp1253") in first
    slip = next(p for p in escpos if "order-slip-1" in p.name).read_bytes()
    assert "ΔΕΛΤΙΟ ΠΑΡΑΓΓΕΛΙΑΣ ΕΣΤΙΑΣΗΣ".encode("cp1253") in slip
    assert "ΤΟ ΠΑΡΟΝ ΕΙΝΑΙ ΠΛΗΡΟΦΟΡΙΑΚΟ ΣΤΟΙΧΕΙΟ".encode("cp1253") in slip
    slip_preview = re.search(r"PNG preview\s+previews/(\S+\.png)", out)
    assert slip_preview is not None and (output / "previews" / slip_preview.group(1)).exists()
    offline = next(p for p in escpos if "code2" in p.name).read_bytes()
    assert "Απώλεια Διασύνδεσης Παρόχου".encode("cp1253") in offline

    state = re.search(r"state directory\s+(\S+)/state", out)
    assert state is not None
    assert not Path(state.group(1)).exists(), "the temporary state directory was left behind"
    assert not _processes_mentioning(state.group(1)), "a sandbox or daemon is still running"
