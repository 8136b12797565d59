"""The VM layer of `pos-agent powercut`: the register in a qemu guest, its power pulled from the
host (SIGKILL of qemu) at random moments while sales run.

What the guest flushed is in its disk image, what it had not is gone: the plainest power cut
there is, with the real kernel, ext4 and its journal, SQLite and the agent from our .deb
(`agent/tools/powercut_vm_image.py`). The till and the sandbox provider stay on the host (they
are other machines in a shop: their memory survives the register's cut):
- the till talks TCP to a port qemu forwards to socat in the guest, which relays to the agent's
  Unix socket; every answer it read is in its ledger on the host;
- the guest reaches the provider and the printer emulator on the host through qemu's user
  networking (10.0.2.2).

A cut: the timer kills qemu at a random moment after the register answered (one start in
STARTUP_CUT_EVERY is cut during the agent's own start-up and recovery), while the till rings up
sales of every kind and the provider goes down for offline periods. After each cut, on the
host: `e2fsck -fy` on the state disk (the journal replay a mount does, and a check that nothing
else needed repair), `debugfs rdump` of the state directory, and the same audit as the FUSE
layer (`agent/tools/powercut_audit.py`) on that copy; then the guest starts again on what
survived (warm, from a template: `agent/tools/powercut_vm_qemu.py` says why that is a cold
start for the disk).
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import offline_store as store
from agent.core.status_report import rolled_back
from agent.tools.local_stack import (
    DATABASE_NAME,
    LocalStack,
    StackSettings,
)
from agent.tools.powercut_audit import EndCheck, Findings, audit_cut, audit_end
from agent.tools.powercut_processes import median
from agent.tools.powercut_till import Till
from agent.tools.powercut_vm_image import GUEST_RUN, GUEST_STATE, GuestImage
from agent.tools.powercut_vm_qemu import Qemu, key_in_console

BOOT_TIMEOUT_S = 180.0
CUT_AFTER_S = (0.2, 8.0)  # a cut lands this long after the register answered
STARTUP_CUT_EVERY = 4
OFFLINE_EVERY = 40  # sales between offline periods
OFFLINE_FOR = 10
DRAIN_TRIES = 90
HOST = "10.0.2.2"  # the host, seen from qemu's user network
DEFAULT_ACCEL = "tcg,thread=multi"  # this machine's /dev/kvm cannot boot a stock kernel


@dataclass
class VmTally:
    vm_cuts: int = 0
    startup_cuts: int = 0
    boots: int = 0
    fsck_exits: Counter[int] = field(default_factory=Counter)  # 0 clean, 1 mended, 4+ not
    fsck_failures: int = 0
    refused_as_rolled_back: int = 0
    database_damaged: int = 0
    key_in_console: list[str] = field(default_factory=list)
    boot_s: list[float] = field(default_factory=list)
    cycle_s: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class VmPowercut:
    def __init__(
        self,
        root: Path,
        image: GuestImage,
        *,
        cuts: int,
        sales: int,
        seed: int,
        accel: str,
        log: Callable[[str], None],
    ) -> None:
        self.root = root
        self.cuts = cuts
        self.sales = sales
        self.seed = seed
        self.log = log
        self.rng = random.Random(f"{seed}:vm-cuts")
        self.stack = LocalStack(
            root / "host",
            StackSettings(
                printer_backend="network",
                preview_dir=False,
                sync_interval_s=1.0,
                probe_interval_s=0.5,
                connect_timeout_s=1.0,
                read_timeout_s=3.0,
                total_timeout_s=4.0,
                backoff_base_s=0.1,
                backoff_max_s=1.0,
                food_service=True,
                cash_drawer="pin2",
            ),
        )
        self.qemu = Qemu(image, root, accel)
        self.findings = Findings()
        self.tally = VmTally()
        self.till = Till(self._client, seed, self._outage, self._rolled_back)
        self.voided: set[str] = set()
        self._timer: threading.Timer | None = None
        self._cut_fired = threading.Event()
        self._http: httpx.Client | None = None
        self._printer: subprocess.Popen[bytes] | None = None
        self._cycle_started = time.perf_counter()
        self._guest_config = b""

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            self.stack.settings.printer_port = self._start_printer()
            self.stack.start_sandbox()
            self._write_guest_config()
            self.qemu.make_template()
            self.qemu.new_state_disk()
            self._boot(startup_cut=False)
            self._sell()
            self._disarm()
            end = self._drain_and_check()
        finally:
            self._stop()
        self._check_console()
        return self._report(end, time.perf_counter() - started)

    def _check_console(self) -> None:
        """The API key must never reach the guest's console, whatever the guest printed in
        every boot of the run (the console log is appended to by each start)."""
        key = self.stack.api_key_file.read_bytes()
        self.tally.key_in_console = key_in_console(self.qemu.console, key)

    def _sell(self) -> None:
        index = 0
        while index < self.sales or self.tally.vm_cuts < self.cuts:
            if index % OFFLINE_EVERY == OFFLINE_EVERY - OFFLINE_FOR:
                self.stack.set_faults("down")
            elif index % OFFLINE_EVERY == 0:
                self.stack.set_faults("ok")
            if self._timer is None and self.tally.vm_cuts < self.cuts:
                self._arm(self.rng.uniform(*CUT_AFTER_S))
            self.till.sell(index)
            index += 1
            if index % 50 == 0:
                self.log(
                    f"vm: {index} sales, {self.tally.vm_cuts} cuts, "
                    f"findings so far: {self._finding_count()}"
                )

    def _finding_count(self) -> int:
        return self.findings.count + self.tally.refused_as_rolled_back

    # -- cuts and boots ------------------------------------------------------------------------

    def _arm(self, after_s: float) -> None:
        self._cut_fired.clear()
        self._timer = threading.Timer(after_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self._cut_fired.set()
        self.qemu.cut()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _outage(self) -> None:
        """The till found no register: the cut (restart, audit), or a guest not answering
        for a moment (try again), or one that powered off by itself (a finding)."""
        if self.qemu.alive() and not self._cut_fired.is_set():
            time.sleep(0.2)
            return
        if not self._cut_fired.is_set():
            self.tally.problems.append(f"the guest stopped without a cut (see {self.qemu.console})")
        self._recover()

    def _recover(self) -> None:
        """Count the cut, read and audit what survived, boot again (one boot in
        STARTUP_CUT_EVERY is itself cut, inside the agent's start-up)."""
        while True:
            self.qemu.wait_dead()
            self._disarm()
            self.tally.vm_cuts += 1
            self.tally.cycle_s.append(time.perf_counter() - self._cycle_started)
            self._audit(f"vm cut {self.tally.vm_cuts}")
            startup_cut = (
                self.tally.vm_cuts < self.cuts and self.rng.randrange(STARTUP_CUT_EVERY) == 0
            )
            if self._boot(startup_cut=startup_cut):
                return
            self.tally.startup_cuts += 1

    def _boot(self, *, startup_cut: bool) -> bool:
        """Power on and wait until the agent answers; False when a start-up cut came first."""
        started = time.perf_counter()
        self._cycle_started = started
        self.qemu.start(self._guest_config, self.stack.api_key_file.read_bytes())
        self.tally.boots += 1
        if startup_cut:
            typical = median([s * 1000 for s in self.tally.boot_s]) / 1000 or 10.0
            self._arm(self.rng.uniform(0.4 * typical, 1.1 * typical))
        client = self._client()
        deadline = started + BOOT_TIMEOUT_S
        while time.perf_counter() < deadline:
            if not self.qemu.alive():
                if self._cut_fired.is_set():
                    return False
                raise RuntimeError(f"the guest powered off during boot; see {self.qemu.console}")
            try:
                if client.get("/v1/health", timeout=5).status_code < 500:
                    self.tally.boot_s.append(time.perf_counter() - started)
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the agent did not answer after {BOOT_TIMEOUT_S} s booting")

    def _audit(self, label: str, *, settled: bool = False) -> None:
        fsck = self.qemu.survived(self.root / "survived")
        state = self.root / "survived" / "state"
        self.tally.fsck_exits[fsck] += 1
        if fsck >= 4:
            self.tally.fsck_failures += 1
            self.findings.note(f"{label}: e2fsck could not repair the disk (exit {fsck})")
        database = state / DATABASE_NAME
        for shm in state.glob("*-shm"):  # the guest's wal-index: rebuilt from the WAL here
            shm.unlink()
        with closing(sqlite3.connect(database, isolation_level=None)) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                self.tally.database_damaged += 1
                self.findings.journal_broken += 1
                self.findings.note(f"{label}: the database is damaged: {check}")
                return
        with closing(store.open_database(database, read_only=True)) as conn:
            behind = rolled_back(conn, state)
            if behind is not None:
                self.tally.refused_as_rolled_back += 1
                self.findings.note(f"{label}: the database is behind its high-water mark: {behind}")
            audit_cut(
                conn,
                state / "archive",
                self.till.ledger,
                self.stack.provider_documents,
                self.findings,
                label,
                settled=settled,
            )

    def _rolled_back(self) -> None:
        """The technician's `rollback accept` (counted as a finding by the audit before)."""
        response = self._client().post("/v1/rollback/accept", content=b"{}")
        if response.status_code != 409:
            response.raise_for_status()

    # -- the end -------------------------------------------------------------------------------

    def _drain_and_check(self) -> EndCheck:
        """The provider back, the backlog sent and the paper printed; then the plug is pulled
        once more and the survivors audited as settled."""
        self.stack.set_faults("ok")
        for _ in range(DRAIN_TRIES):
            self.till.call("/v1/sync", None)
            status = self.till.call("/v1/status", None, method="GET").json()
            backlog = status.get("store", {}).get("backlog", {})
            queued = (status.get("printer") or {}).get("queued", 0)
            if not backlog.get("pending") and not backlog.get("delayed") and not queued:
                break
            time.sleep(1.0)
        else:
            self.tally.problems.append(f"backlog not sent after {DRAIN_TRIES} tries")
        self.qemu.cut()
        self.qemu.wait_dead()
        self._audit("the end", settled=True)
        paper = self.root / "paper.bin"
        with closing(store.open_database(self._survived_db(), read_only=True)) as conn:
            for doc in store.list_documents(conn, state=store.DocumentState.VOID, limit=10**6):
                self.voided.add(doc.uid)
        return audit_end(
            self.till.ledger,
            self.stack.provider_documents(),
            paper.read_bytes() if paper.exists() else b"",
            self.voided,
        )

    def _survived_db(self) -> Path:
        return self.root / "survived" / "state" / DATABASE_NAME

    # -- the host side -------------------------------------------------------------------------

    def _write_guest_config(self) -> None:
        """The stack's config with the guest's paths and the host as 10.0.2.2, handed to the
        guest with the key at each start (the serial line)."""
        text = self.stack.write_config().read_text()
        text = text.replace(str(self.stack.state_dir), GUEST_STATE)
        text = text.replace(str(self.stack.root), GUEST_RUN).replace("127.0.0.1", HOST)
        self._guest_config = text.encode()

    def _start_printer(self) -> int:
        ready = self.root / "printer.port"
        ready.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "agent.tools.powercut_printer",
            str(self.root / "paper.bin"),
        ]
        self._printer = subprocess.Popen([*command, "--ready", str(ready)])
        deadline = time.monotonic() + 20
        while not ready.exists() or not ready.read_text():
            if self._printer.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the printer emulator did not start")
            time.sleep(0.02)
        return int(ready.read_text())

    def _client(self) -> httpx.Client:
        if self._http is None or self._http.base_url.port != self.qemu.port:
            if self._http is not None:
                self._http.close()
            self._http = httpx.Client(base_url=f"http://127.0.0.1:{self.qemu.port}", timeout=60)
        return self._http

    def _stop(self) -> None:
        self._disarm()
        self.qemu.cut()
        self.qemu.wait_dead()
        if self._http is not None:
            self._http.close()
        self.stack.stop()
        if self._printer is not None:
            self._printer.terminate()
            self._printer.wait()

    def _report(self, end: EndCheck, seconds: float) -> dict[str, Any]:
        f, t = self.findings, self.tally
        problems = f.problems + end.problems + t.problems + self.till.problems
        if t.key_in_console:
            leaked = ", ".join(t.key_in_console)
            problems.insert(
                0, f"the API key is in the guest's console ({leaked}): {self.qemu.console}"
            )
        return {
            "vm_cuts": t.vm_cuts,
            "sales": self.till.sales,
            "lost": end.lost,
            "duplicates": end.duplicates,
            "gaps": f.gaps,
            "wrong_marks": f.wrong_marks,
            "told_but_missing": f.told_but_missing,
            "journal_ok": f.journal_broken == 0,
            "changed_answers": f.changed_answers,
            "reused_numbers": f.reused_numbers,
            "unknown_at_provider": f.unknown_at_provider,
            "printed_twice": end.printed_twice,
            "refused_as_rolled_back": t.refused_as_rolled_back,
            "seconds": round(seconds, 1),
            "details": {
                "told": len(self.till.ledger.told),
                "startup_cuts": t.startup_cuts,
                "boots": t.boots,
                "boot_s_median": round(median(t.boot_s), 1),
                "seconds_per_cut_median": round(median(t.cycle_s), 1),
                "e2fsck_exits": {str(k): v for k, v in sorted(t.fsck_exits.items())},
                "fsck_failures": t.fsck_failures,
                "database_damaged": t.database_damaged,
                "key_in_console": t.key_in_console,
                "told_marks_back_to_unsent": f.marks_to_resend,
                "copies_printed": end.copies,
                "answer_statuses": {str(k): v for k, v in sorted(self.till.statuses.items())},
                "problems": problems[:80],
            },
        }
