"""Power cuts on the FUSE layer (`agent/tools/powercut_fs.py`): what the cuts found, each cut at
the exact call that showed it, and a short `pos-agent powercut` run (CI smoke).

Needs root, /dev/fuse and libfuse 3 (Debian's fuse3; the Makefile installs it): skipped with the
reason otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.tools.local_stack import LocalStack, StackSettings, cash_receipt, post_json
from agent.tools.powercut_control import CutFs
from printers.layout import COPY_BANNER
from tests.e2e.stack import quiet_settings, wait_for
from tests.printers.emulator import PrinterEmulator

pytestmark = pytest.mark.e2e


def _fuse_missing() -> str | None:
    if os.geteuid() != 0:
        return "power cuts on FUSE need root (mounting)"
    if not Path("/dev/fuse").exists():
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "no libfuse 3 (apt-get install fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"mfusepy cannot load libfuse: {exc}"
    return None


_MISSING = _fuse_missing()
needs_fuse = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


class GatedPrinter(PrinterEmulator):
    """Answers the first status query only when the test opens the gate: the print job is
    claimed (`printing`, committed) and its bytes not yet sent until then."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.asked = threading.Event()

    def status_byte(self, function: int) -> int:
        self.asked.set()
        self.gate.wait(timeout=30)
        return super().status_byte(function)


@pytest.fixture
def cut_fs(tmp_path: Path) -> Iterator[CutFs]:
    fs = CutFs(tmp_path / "cut.sock", tmp_path / "state", seed=1)
    fs.start()
    try:
        yield fs
    finally:
        fs.stop()


def _tickets(printed: bytes, uid: str) -> list[bool]:
    """Each ticket of `uid` on the paper: True when it says «ΑΝΤΙΓΡΑΦΟ»."""
    banner = COPY_BANNER.encode("cp1253")
    return [banner in t for t in printed.split(b"\x1dV") if uid.encode() in t]


@needs_fuse
def test_a_cut_between_the_paper_and_the_printed_commit_prints_a_copy_not_a_second_original(
    tmp_path: Path, cut_fs: CutFs
) -> None:
    """The receipt reached the paper, the power went before `printed` was on disk: after the
    restart the job is still `printing`. Printed again as an original it was twice on paper
    without «ΑΝΤΙΓΡΑΦΟ»; now the second print is a copy."""
    with GatedPrinter() as printer:
        settings: StackSettings = quiet_settings(
            printer_backend="network", printer_port=printer.port
        )
        stack = LocalStack(tmp_path, settings)
        try:
            stack.start()
            with stack.client() as till:
                body = {**cash_receipt("cut-print-1"), "delivery": {"print": True}}
                answer = post_json(till, "/v1/receipts", body).json()
            assert printer.asked.wait(timeout=30), "the printer was never asked for its status"
            assert stack.daemon is not None
            cut_fs.arm(1, torn=False, victims=[stack.daemon.pid])  # the next change: the commit
            printer.gate.set()
            stack.daemon.wait(timeout=30)
            last_cut = cut_fs.state()["last_cut"]
            assert last_cut is not None and last_cut["killed"] == [stack.daemon.pid]
            assert _tickets(printer.printed, answer["uid"]) == [False]  # the original, on paper
            cut_fs.resume()

            stack.start_daemon()
            wait_for(
                lambda: len(_tickets(printer.printed, answer["uid"])) == 2,
                timeout_s=30,
                what="the interrupted job printed again",
            )
            assert _tickets(printer.printed, answer["uid"]) == [False, True]
        finally:
            stack.stop()


@needs_fuse
def test_a_short_powercut_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """`pos-agent powercut` in small: a migration cut until done, sales of every kind with an
    offline period, cuts (some torn, some inside the start-up) and an audit after each."""
    out = tmp_path / "powercut.json"
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "agent", "powercut", "--sales", "80", "--cuts", "25"),
            *("--seed", "3", "--json", str(out), "--keep", str(tmp_path / "run")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.exists(), completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    details = report["details"]
    assert report["sales"] == 80
    assert report["fs_cuts"] >= 25, details
    for key in (
        "lost",
        "duplicates",
        "gaps",
        "wrong_marks",
        "told_but_missing",
        "changed_answers",
        "reused_numbers",
        "unknown_at_provider",
        "printed_twice",
        "refused_as_rolled_back",
    ):
        assert report[key] == 0, (key, details["problems"])
    assert report["journal_ok"] is True
    assert details["migration_cuts"] >= 1 and details["torn_cuts"] >= 1, details
    assert completed.returncode == 0, completed.stdout[-3000:]
