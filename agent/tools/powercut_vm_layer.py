"""The VM layer of `pos-agent powercut` as a process of its own beside the FUSE layer: the
guest image (built or reused), the run (`agent/tools/powercut_vm.py`), its report merged into
the FUSE layer's. `python -m agent.tools.powercut_vm_layer` runs the VM layer alone.

A process, not a thread: the FUSE run forks its daemons and must stay single-threaded, and
qemu's vCPU threads take the second core while the FUSE layer keeps the first.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.tools.local_stack import print_verdict, work_dir
from agent.tools.powercut_audit import ZERO_COUNTS, passed
from agent.tools.powercut_vm import DEFAULT_ACCEL, VmPowercut
from agent.tools.powercut_vm_image import guest_image, missing_tools

REPO = Path(__file__).resolve().parents[2]
SUMMED = ("sales", *ZERO_COUNTS)


def vm_unavailable() -> str | None:
    """Why the VM layer cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "the VM layer needs root (debootstrap and chroot build the guest)"
    missing = missing_tools()
    if missing:
        return f"the VM layer needs {', '.join(missing)} (make system-packages)"
    if not (REPO / "packaging/deb/build").exists():
        return "the VM layer builds the guest from the sources' packaging/deb (not found)"
    return None


def run_vm_layer(
    root: Path, *, cuts: int, sales: int, seed: int, accel: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """Build (or reuse) the guest image under build/vm, then the run."""
    started = time.perf_counter()
    image = guest_image(REPO, REPO / "build", log)
    built_s = time.perf_counter() - started
    report = VmPowercut(root, image, cuts=cuts, sales=sales, seed=seed, accel=accel, log=log).run()
    report["details"]["image_s"] = round(built_s, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    """`python -m agent.tools.powercut_vm`: the VM layer alone (`pos-agent powercut` runs it
    beside the FUSE layer)."""
    parser = argparse.ArgumentParser(prog="powercut-vm")
    parser.add_argument("--cuts", type=int, default=50)
    parser.add_argument("--sales", type=int, default=200, help="at least this many sales")
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--accel", default=DEFAULT_ACCEL, help="qemu -accel (kvm where it works)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"powercut: {message}", file=sys.stderr, flush=True)

    # Stopped by `pos-agent powercut` (its run failed): unwind, so qemu and the sandbox stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    reason = vm_unavailable()
    if reason is not None:
        print(f"powercut: {reason}", file=sys.stderr)
        return 2
    with work_dir(args.keep, "pos-agent-powercut-vm-") as root:
        report = run_vm_layer(
            root, cuts=args.cuts, sales=args.sales, seed=args.seed, accel=args.accel, log=log
        )
    return print_verdict(report, passed_vm(report), args.json)


def passed_vm(report: dict[str, Any]) -> bool:
    details = report["details"]
    return passed({**report, "details": {**details, "daemon_crashes": 0}}) and not (
        details["fsck_failures"] or details["database_damaged"] or details["key_in_console"]
    )


class VmLayer:
    """The VM layer as a process of its own beside the FUSE layer of `pos-agent powercut`
    (qemu's vCPU threads and the FUSE run share the machine); its report is merged into the
    run's at the end."""

    def __init__(self, root: Path, *, cuts: int, sales: int, seed: int, accel: str) -> None:
        self.report_path = root / "vm-report.json"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent.tools.powercut_vm_layer",
                *("--cuts", str(cuts), "--sales", str(sales), "--seed", str(seed)),
                *("--accel", accel, "--json", str(self.report_path), "--keep", str(root / "vm")),
            ],
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def merged(self, fuse: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Wait for the VM run; the two reports as one (counts summed, journal_ok of both) and
        whether the VM layer passed (False when it did not finish)."""
        code = self.process.wait()
        if not self.report_path.exists():
            fuse["details"]["problems"].insert(0, f"the VM layer exited {code} without a report")
            return fuse, False
        vm = json.loads(self.report_path.read_text())
        merged = {**fuse, "vm_cuts": vm["vm_cuts"]}
        for key in SUMMED:
            merged[key] = fuse[key] + vm[key]
        merged["journal_ok"] = bool(fuse["journal_ok"] and vm["journal_ok"])
        merged["seconds"] = max(fuse["seconds"], vm["seconds"] + vm["details"]["image_s"])
        details = {**fuse["details"], "vm": {**vm["details"], "seconds": vm["seconds"]}}
        details["problems"] = [*fuse["details"]["problems"], *vm["details"]["problems"]]
        merged["details"] = details
        return merged, passed_vm(vm)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vm-cuts", type=int, default=0, help="also cut a register in a qemu guest N times"
    )
    parser.add_argument(
        "--vm-sales", type=int, default=200, help="at least this many sales in the guest"
    )
    parser.add_argument("--vm-accel", default=DEFAULT_ACCEL, help="qemu -accel for the guest")


@contextmanager
def beside(root: Path, args: argparse.Namespace) -> Iterator[VmLayer | NoVmLayer]:
    """The VM layer running beside the FUSE one for the `with` block (nothing with --vm-cuts
    0); stopped if the block fails."""
    if not args.vm_cuts:
        yield NoVmLayer()
        return
    layer = VmLayer(
        root, cuts=args.vm_cuts, sales=args.vm_sales, seed=args.seed, accel=args.vm_accel
    )
    try:
        yield layer
    finally:
        layer.stop()


class NoVmLayer:
    def merged(self, fuse: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        return fuse, True


if __name__ == "__main__":
    sys.exit(main())
