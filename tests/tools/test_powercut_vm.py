"""Power cuts on the VM layer (`agent/tools/powercut_vm.py`), in small: the register from our .deb
in a qemu guest, its power pulled (SIGKILL of qemu) a few times while sales run, the survivors
read from the disk image and audited after each cut (CI smoke).

Needs root (debootstrap and chroot build the guest image, cached under build/vm), qemu,
debootstrap and e2fsprogs (the Makefile installs them): skipped with the reason otherwise. The
first run builds the image (a couple of minutes); later runs reuse it while the sources are the
same.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from agent.tools.powercut_audit import ZERO_COUNTS
from agent.tools.powercut_vm_layer import passed_vm, vm_unavailable
from agent.tools.powercut_vm_qemu import key_in_console
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
    assert details["key_in_console"] == [], details["problems"]
    assert b"powercut-zygote: starting pos-agent" in console.read_bytes()  # the log checked
    assert completed.returncode == 0, completed.stdout[-3000:]


def test_a_key_in_the_guest_console_fails_the_run(tmp_path: Path) -> None:
    """The check the smoke's run makes, on consoles written here: the key sent on the serial
    line comes back when the guest echoes the line, or when something logs it."""
    key = b"0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    console = tmp_path / "console.log"
    assert key_in_console(console, key) == []  # no guest started: nothing shown
    console.write_bytes(b"powercut-zygote: ready\npowercut-zygote: starting pos-agent\n")
    assert key_in_console(console, key) == []
    echoed = b"go 1765100000.000 cG9zLWFnZW50 " + base64.b64encode(key) + b"\n"
    console.write_bytes(echoed + b"provider refused key " + key + b"\n")
    assert key_in_console(console, key) == ["the key", "the key as sent (base64)"]
    report = {count: 0 for count in ZERO_COUNTS} | {"journal_ok": True}
    clean = {"fsck_failures": 0, "database_damaged": 0, "key_in_console": []}
    assert passed_vm({**report, "details": clean})
    assert not passed_vm({**report, "details": {**clean, "key_in_console": ["the key"]}})
