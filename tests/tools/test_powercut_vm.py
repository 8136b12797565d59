"""Power cuts on the VM layer (`agent/tools/powercut_vm.py`), in small: the register from our .deb
in a qemu guest, its power pulled (SIGKILL of qemu) a few times while sales run, the survivors
read from the disk image and audited after each cut (CI smoke).

Needs root (debootstrap and chroot build the guest image, cached under build/vm), qemu,
debootstrap and e2fsprogs (the Makefile installs them): skipped with the reason otherwise. The
first run builds the image (a couple of minutes); later runs reuse it while the sources are the
same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.tools.powercut_audit import ZERO_COUNTS
from agent.tools.powercut_vm_layer import vm_unavailable
from tests.tools.harness import run_report

pytestmark = pytest.mark.e2e

_MISSING = vm_unavailable()


@pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")
def test_a_register_in_a_vm_loses_nothing_told_at_a_power_cut(tmp_path: Path) -> None:
    console = tmp_path / "run" / "console.log"
    completed, report = run_report(
        "agent.tools.powercut_vm_layer",
        *("--cuts", "3", "--sales", "30", "--seed", "5", "--keep", str(tmp_path / "run")),
        out=tmp_path / "vm.json",
        timeout_s=1200,
        log=console,
    )
    details = report["details"]
    assert report["vm_cuts"] >= 3, details
    assert report["sales"] >= 30
    assert details["told"] >= 20, details
    nonzero = {key: report[key] for key in ZERO_COUNTS if report[key] != 0}
    assert nonzero == {}, (nonzero, details["problems"])
    assert report["journal_ok"] is True
    assert details["fsck_failures"] == 0 and details["database_damaged"] == 0, details
    assert completed.returncode == 0, completed.stdout[-3000:]
