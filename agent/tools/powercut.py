"""`pos-agent powercut`: the register loses power mid-sale, hundreds of times; nothing told to a
till may be lost.

SIGKILL (`pos-agent chaos`) loses nothing the kernel already holds. Here the register's state
directory sits on the power-cut filesystem (`agent/tools/powercut_fs.py`): what was not synced
is gone at a cut, as after a pulled plug. The sandbox provider runs beside it, on the ordinary
disk: it is another company's server and keeps what it was sent.

A run (all choices seeded: `--seed` reproduces the sales, the cut points and the torn sectors):
1. a database at the previous schema, and `pos-agent migrate` cut at random points until it
   finishes: the file is always whole, at the old schema or the new;
2. a seeded mix of sales through the real socket (`agent/tools/powercut_till.py`): cash, card
   with a reservation, POS receipts, order slips and table closes, drawer kicks, reprints;
   offline periods with the provider down; the monthly archive (a maintenance run dated after
   the retention, a process of its own on the same files);
3. the filesystem is armed to cut at a random count of changing calls (a write, fsync, create,
   rename… of any of the register's processes: inside commits, sync rounds, high-water mark
   writes, archive appends), one cut in `--torn-every` torn (unsynced sectors reach the disk at
   random), some inside the daemon's start-up itself;
4. after each cut the daemon is started on what survived and audited
   (`agent/tools/powercut_audit.py`) before the next cut is armed; a daemon that finds its
   database behind its high-water mark refuses exactly as for a lost WAL, which is counted and
   accepted as the technician would (`pos-agent rollback accept`);
5. at the end the provider comes back, the backlog is sent, and the end audit runs.

Restarts are forks of this process (the agent's modules are already imported, so a restart
takes ~0.1 s instead of a Python start-up): the daemon runs its real `pos-agent run` code in a
fresh process on the files that survived. The harness therefore stays single-threaded.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx

import offline_store as store
from agent.clock import athens_now
from agent.core.status_report import rolled_back
from agent.tools import powercut_vm_layer
from agent.tools.local_stack import LocalStack, StackSettings, print_verdict, work_dir
from agent.tools.powercut_audit import EndCheck, Findings, Tally, audit_end, passed, undrained
from agent.tools.powercut_auditor import Auditor
from agent.tools.powercut_control import CutFs
from agent.tools.powercut_printer import start_printer
from agent.tools.powercut_processes import alive, fork, fork_daemon, median, reap, run_cli
from agent.tools.powercut_till import Till
from offline_store.migrations import MIGRATIONS, apply_migrations

READY_TIMEOUT_S = 60.0
OFFLINE_EVERY = 150  # sales between offline periods
OFFLINE_FOR = 25  # sales in an offline period
ARCHIVE_EVERY = 200
ARCHIVE_OPS = 400  # changing calls of an archive run (with the maintenance around it)
ARCHIVE_TRIES = 3  # cut tries, then one to the end
STARTUP_CUT_EVERY = 10  # one restart in ten is itself cut
EXTRA_SALES_FACTOR = 2  # sales may go on to twice --sales (and one a cut) for the cuts to come
FULL_AUDIT_EVERY = 100  # the whole audit, beside the one of what changed (powercut_auditor)
DRAIN_DEADLINE_S = 120.0
MIGRATION_TRIES = 12
MIGRATION_OPS = 140  # a whole `pos-agent migrate` of a small file: ~140 changing calls
PRELOADED = (
    "agent.cli",
    "agent.daemon.main",
    "agent.daemon.upgrade",
    "agent.core.maintenance",
    "concurrent.futures.thread",
    "uvicorn.lifespan.off",
    "uvicorn.protocols.websockets.auto",
)


class Powercut:
    def __init__(
        self,
        root: Path,
        *,
        sales: int,
        cuts: int,
        seed: int,
        torn_every: int,
        log: Callable[[str], None],
        migration: bool = True,
        full_audit_every: int = FULL_AUDIT_EVERY,
    ) -> None:
        self.root = root
        self.sales = sales
        self.cuts = cuts
        self.seed = seed
        self.torn_every = max(1, torn_every)
        self.log = log
        self.migration = migration
        self.rng = random.Random(f"{seed}:cuts")
        self.stack = LocalStack(
            root,
            StackSettings(
                printer_backend="network",
                preview_dir=False,
                sync_interval_s=1.0,
                probe_interval_s=0.3,
                connect_timeout_s=0.5,
                read_timeout_s=1.0,
                total_timeout_s=1.5,
                backoff_base_s=0.05,
                backoff_max_s=0.5,
                food_service=True,
                cash_drawer="pin2",
            ),
        )
        self.fs = CutFs(root / "powercut.sock", self.stack.state_dir, seed)
        self.daemon: int | None = None
        self.findings = Findings()
        self.tally = Tally()
        self.till = Till(self._client, seed, self._outage, self._rolled_back)
        self.auditor = Auditor(
            self.stack.state_dir / "archive",
            self.till.ledger,
            self._provider_after,
            self.findings,
            full_every=full_audit_every,
        )
        self.voided: set[str] = set()
        self.ops_per_sale = 40.0
        self._armed = False
        self._http: httpx.Client | None = None
        self._sandbox: httpx.Client | None = None
        self._printer: subprocess.Popen[bytes] | None = None
        self._started = time.perf_counter()
        self._reported = 0

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = self._started = time.perf_counter()
        (self.root / "cache").mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(self.root / "cache"))
        for module in PRELOADED:  # imported once here, so every forked restart starts warm
            importlib.import_module(module)
        self.fs.start()
        try:
            self._printer, port = start_printer(self.paper, self.root / "printer.port")
            self.stack.settings.printer_port = port
            self.stack.start_sandbox()
            self.stack.write_config()
            if self.migration:
                self._migration()
            self._recover(first=True)
            self._sell()
            self._disarm()
            end = self._drain_and_check()
        finally:
            self._stop()
        return self._report(end, time.perf_counter() - started)

    def _sell(self) -> None:
        """`--sales` sales, then more until `--cuts` cuts are done: a run's cuts are a count,
        not what a time or a machine's load allowed."""
        for index in itertools.count():
            if index >= self.sales and self.tally.fs_cuts >= self.cuts:
                return
            if index >= EXTRA_SALES_FACTOR * self.sales + self.cuts:
                self.tally.problems.append(f"{self.tally.fs_cuts} of {self.cuts} cuts came")
                return
            if index % OFFLINE_EVERY == OFFLINE_EVERY - OFFLINE_FOR:
                self._set_faults("down")
            elif index % OFFLINE_EVERY == 0:
                self._set_faults("ok")
            if index and index % ARCHIVE_EVERY == 0:
                self._archive()
            before = self.fs.state()["changing_ops"]
            self.tally.kinds[self.till.sell(index)] += 1
            spent = self.fs.state()["changing_ops"] - before
            if spent > 0 and not self._cut_happened():
                self.ops_per_sale = 0.9 * self.ops_per_sale + 0.1 * spent
            if self.tally.fs_cuts < self.cuts and not self._armed:
                # Spread the cuts still to come over the sales still to come (less the half
                # sale a cut leaves uncounted: the next cut is armed once its sale is done).
                left = max(1, self.sales - index - 1) / (self.cuts - self.tally.fs_cuts)
                self._arm(int(2 * self.ops_per_sale * min(max(0.5, left - 0.5), self.sales)))
            if index % 100 == 99:
                for problem in self.findings.problems[self._reported :]:
                    self.log(f"  {problem}")
                self._reported = len(self.findings.problems)
                self.log(
                    f"{time.perf_counter() - self._started:.0f} s: {index + 1} sales, "
                    f"{self.tally.fs_cuts} cuts "
                    f"({self.tally.torn_cuts} torn), findings so far: {self._finding_count()}"
                )

    def _finding_count(self) -> int:
        return self.findings.count + self.tally.refused_as_rolled_back

    # -- cuts and restarts ---------------------------------------------------------------------

    def _arm(self, span: int) -> None:
        torn = (self.tally.fs_cuts + 1) % self.torn_every == 0
        after = self.rng.randint(1, max(2, span))
        self.fs.arm(after, torn=torn, victims=self._victims())
        self._armed = True

    def _disarm(self) -> None:
        self.fs.disarm()
        self._armed = False

    def _victims(self) -> list[int]:
        return [self.daemon] if self.daemon is not None else []

    def _cut_happened(self) -> bool:
        return bool(self.fs.state()["frozen"])

    def _outage(self) -> None:
        """The till found no register: a cut (the filesystem is frozen), or a daemon that died
        by itself (a finding). Either way: restart on what survived, audit, arm again."""
        if not self._cut_happened():
            if self.daemon is not None and alive(self.daemon):
                time.sleep(0.02)  # the listener was not there for a moment; try again
                return
            self.tally.daemon_crashes += 1
            self.tally.problems.append("the daemon exited without a cut (see daemon.log)")
            self.fs.cut(torn=False, victims=[])
        self._recover()

    def _count_cut(self) -> None:
        last = self.fs.state()["last_cut"]
        self.tally.fs_cuts += 1
        self.tally.torn_cuts += bool(last["torn"])
        self.tally.lost_bytes += int(last["lost_bytes"])
        self.tally.lost_names += int(last["lost_names"])
        self.tally.cut_ops[str(last["at_op"])] += 1
        self._armed = False

    def _recover(self, *, first: bool = False) -> None:
        """Reap what the cut killed, power on, start the daemon (one start in
        STARTUP_CUT_EVERY is itself cut), audit, then arm the next cut."""
        while True:
            if self.daemon is not None:
                reap(self.daemon)
                self.daemon = None
            if self._cut_happened():
                self._count_cut()
                self.fs.resume()
            startup_cut = (
                not first
                and self.tally.fs_cuts < self.cuts
                and self.rng.randrange(STARTUP_CUT_EVERY) == 0
            )
            try:
                self._start_daemon(startup_cut)
            except RuntimeError as exc:
                if self._cut_happened():
                    self.tally.startup_cuts += 1
                    continue
                self.tally.failed_starts += 1
                raise RuntimeError(f"the daemon did not start after a cut: {exc}") from exc
            if startup_cut:
                self._disarm()
            if self._cut_happened():  # the start-up cut landed just after READY
                self.tally.startup_cuts += 1
                continue
            break
        self._audit()

    def _start_daemon(self, startup_cut: bool) -> None:
        started = time.perf_counter()
        notify_path = self.root / "notify.sock"
        notify_path.unlink(missing_ok=True)
        with closing(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)) as notify:
            notify.bind(str(notify_path))
            notify.settimeout(0.2)
            self.daemon = fork_daemon(self.stack, notify_path)
            if startup_cut:
                self.fs.arm(self.rng.randint(1, 60), torn=False, victims=[self.daemon])
            deadline = started + READY_TIMEOUT_S
            while time.perf_counter() < deadline:
                if not alive(self.daemon):
                    raise RuntimeError("the daemon exited during start-up; see daemon.log")
                try:
                    message = notify.recv(4096).decode()
                except TimeoutError:
                    continue
                if "READY=1" in message.split("\n"):
                    self.tally.restart_ms.append((time.perf_counter() - started) * 1000)
                    return
        raise RuntimeError(f"the daemon was not ready after {READY_TIMEOUT_S} s")

    def _audit(self, *, settled: bool = False) -> None:
        started = time.perf_counter()
        label = f"cut {self.tally.fs_cuts}"
        with closing(self.stack.open_store()) as conn:
            behind = rolled_back(conn, self.stack.state_dir)  # the daemon refuses such a start
            if behind is not None:
                self.tally.refused_as_rolled_back += 1
                self.findings.note(f"{label}: the database is behind its high-water mark: {behind}")
                self._rolled_back()
            self.auditor.audit(conn, label, settled=settled)
        self.tally.audit_ms.append((time.perf_counter() - started) * 1000)

    def _rolled_back(self) -> None:
        """The technician's `rollback accept`; the UIDs it voided are not counted as lost."""
        response = self._client().post("/v1/rollback/accept", content=b"{}")
        if response.status_code == 409:
            return
        response.raise_for_status()
        self.auditor.forget()
        with closing(self.stack.open_store()) as conn:
            for doc in store.list_documents(conn, state=store.DocumentState.VOID, limit=10**6):
                self.voided.add(doc.uid)

    # -- the phases around the sales -----------------------------------------------------------

    def _migration(self) -> None:
        """The previous schema, then `pos-agent migrate` cut until it finishes; after each cut
        the file must open whole at the old schema or the new one."""
        database = self.stack.database_path
        with closing(sqlite3.connect(database, isolation_level=None)) as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            apply_migrations(conn, MIGRATIONS[:-1])
        latest = MIGRATIONS[-1].version
        for attempt in range(MIGRATION_TRIES + 1):
            before = self.fs.state()["changing_ops"]
            pid = fork(lambda: run_cli(["migrate", "--config", str(self.stack.config_path)]))
            if attempt < MIGRATION_TRIES:  # the last try runs to the end
                self.fs.arm(self.rng.randint(1, MIGRATION_OPS), torn=False, victims=[pid])
            code = reap(pid)
            if self._cut_happened():
                self.fs.resume()
                self.tally.migration_cuts += 1
                version = self._check_database_whole(database)
                if version not in (latest - 1, latest):
                    self.findings.note(f"migration cut: schema {version}")
                continue
            self._disarm()
            if code != 0:
                raise RuntimeError(f"pos-agent migrate exited {code}")
            spent = self.fs.state()["changing_ops"] - before
            self.log(f"migrated after {self.tally.migration_cuts} cuts ({spent} calls to finish)")
            return

    def _check_database_whole(self, database: Path) -> int:
        with closing(sqlite3.connect(database, isolation_level=None)) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                self.findings.journal_broken += 1
                self.findings.note(f"database damaged after a cut: {check}")
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def _archive(self) -> None:
        """The monthly archive as the daemon's quiet hour runs it, dated past the retention
        so today's accepted, printed receipts move; a process of its own, cut like the rest."""
        from agent.config import load_config

        config = load_config(self.stack.config_path)
        # Whole months move: a date whose retention ends in the next month archives today's.
        now = athens_now() + timedelta(days=config.retention.live_days + 32)

        def archive() -> int:
            from agent.core.maintenance import run_maintenance

            run_maintenance(config, now, archive=True)
            return 0

        for attempt in range(ARCHIVE_TRIES + 1):
            if self._cut_happened():  # the sales' cut came in the daemon's background work
                self._recover()
            if attempt == ARCHIVE_TRIES or self.tally.fs_cuts >= self.cuts:
                self._disarm()  # the last try runs to the end
            pid = fork(archive, registered=partial(self._archive_victim, attempt=attempt))
            code = reap(pid)
            if self._cut_happened():
                self.tally.archive_cuts += 1
                self._recover()
                continue
            self.fs.victims_also(self._victims())
            self.tally.archive_runs += 1
            if code != 0:
                self.tally.problems.append(f"the archive run exited {code}")
            return

    def _archive_victim(self, pid: int, attempt: int) -> None:
        """The archive run among the cut's victims (a cut already armed by the sales, or one
        of its own), before it makes its first call."""
        if self._armed or attempt == ARCHIVE_TRIES:
            self.fs.victims_also([*self._victims(), pid])
        else:
            self.fs.arm(
                self.rng.randint(1, ARCHIVE_OPS), torn=False, victims=[*self._victims(), pid]
            )
            self._armed = True

    def _drain_and_check(self) -> EndCheck:
        self._set_faults("ok")
        deadline = time.monotonic() + DRAIN_DEADLINE_S
        while time.monotonic() < deadline:
            self.till.call("/v1/sync", None)
            with closing(self.stack.open_store()) as conn:
                left = conn.execute(
                    "SELECT COUNT(*) FROM documents WHERE state IN ('pending', 'delayed')"
                ).fetchone()[0]
            if left == 0:
                break
            time.sleep(0.3)
        else:
            self.tally.problems.append(f"backlog not sent after {DRAIN_DEADLINE_S} s")
            with closing(self.stack.open_store()) as conn:
                self.tally.problems += undrained(conn, self.stack.state_dir, self.root)
        self._audit(settled=True)
        printer = self.paper
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self._printing_left():
            time.sleep(0.3)
        return audit_end(
            self.till.ledger,
            self.auditor.provider_documents(),
            printer.read_bytes() if printer.exists() else b"",
            self.voided,
        )

    def _printing_left(self) -> bool:
        with closing(self.stack.open_store()) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM print_jobs WHERE state IN ('queued', 'printing')"
            ).fetchone()
        return bool(row[0])

    @property
    def paper(self) -> Path:
        return self.root / "paper.bin"

    def _stop(self) -> None:
        if self.daemon is not None and alive(self.daemon):
            os.kill(self.daemon, signal.SIGTERM)
            reap(self.daemon, timeout_s=15)
        self.daemon = None
        for client in (self._http, self._sandbox):
            if client is not None:
                client.close()
        self.stack.stop()
        self.fs.stop()
        if self._printer is not None:
            self._printer.terminate()
            self._printer.wait()

    def _client(self) -> httpx.Client:
        """One client for the whole run (making one loads the CA bundle: ~80 ms)."""
        if self._http is None:
            self._http = self.stack.client(timeout_s=30)
        return self._http

    def _provider(self) -> httpx.Client:
        if self._sandbox is None:
            self._sandbox = httpx.Client(base_url=self.stack.sandbox_url, timeout=30)
        return self._sandbox

    def _set_faults(self, mode: str) -> None:
        self._provider().post("/_sandbox/faults", json={"mode": mode}).raise_for_status()

    def _provider_after(self, mark: int) -> list[dict[str, Any]]:
        """The provider's documents accepted after `mark` (all of them after 0)."""
        response = self._provider().get("/_sandbox/documents", params={"after_mark": mark})
        response.raise_for_status()
        body = response.json()
        documents: list[dict[str, Any]] = body["documents"] if isinstance(body, dict) else body
        return documents

    def _report(self, end: EndCheck, seconds: float) -> dict[str, Any]:
        f, t = self.findings, self.tally
        return {
            "vm_cuts": 0,
            "fs_cuts": t.fs_cuts + t.migration_cuts,
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
            "seed": self.seed,
            "seconds": round(seconds, 1),
            "details": {
                "told": len(self.till.ledger.told),
                "sales_by_kind": dict(t.kinds),
                "refused_sales": len(self.till.ledger.refused),
                "cuts_while_selling": t.fs_cuts,
                "torn_cuts": t.torn_cuts,
                "startup_cuts": t.startup_cuts,
                "migration_cuts": t.migration_cuts,
                "archive_cuts": t.archive_cuts,
                "archive_runs": t.archive_runs,
                "cut_inside": dict(t.cut_ops),
                "unsynced_bytes_dropped": t.lost_bytes,
                "unsynced_names_dropped": t.lost_names,
                "copies_printed": end.copies,
                "told_marks_back_to_unsent": f.marks_to_resend,
                "daemon_crashes": t.daemon_crashes,
                "failed_starts": t.failed_starts,
                "fuse_seconds": round(seconds, 1),  # kept when the VM layer's report is merged
                "restart_ready_ms_median": median(t.restart_ms),
                "audit_ms_median": median(t.audit_ms),
                "audits": self.auditor.audits,
                "whole_audits": self.auditor.full_audits,
                "answer_statuses": {str(k): v for k, v in sorted(self.till.statuses.items())},
                "problems": (f.problems + end.problems + t.problems + self.till.problems)[:80],
            },
        }


def powercut_command(args: argparse.Namespace) -> int:
    def log(message: str) -> None:
        print(f"powercut: {message}", file=sys.stderr, flush=True)

    if os.geteuid() != 0 or not Path("/dev/fuse").exists():
        print("pos-agent powercut needs root and /dev/fuse (FUSE)", file=sys.stderr)
        return 2
    if args.vm_cuts and (reason := powercut_vm_layer.vm_unavailable()) is not None:
        print(f"pos-agent powercut: {reason} (or --vm-cuts 0)", file=sys.stderr)
        return 2
    with (
        work_dir(args.keep, "pos-agent-powercut-") as root,
        powercut_vm_layer.beside(root, args) as vm,  # the register in qemu, --vm-cuts
    ):
        report = Powercut(
            root,
            sales=args.sales,
            cuts=args.cuts,
            seed=args.seed,
            torn_every=args.torn_every,
            log=log,
            migration=args.migration,
            full_audit_every=args.whole_audit_every,
        ).run()
        report, vm_passed = vm.merged(report)
    return print_verdict(report, passed(report) and vm_passed, args.json)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "powercut", help="power cuts on a filesystem that forgets unsynced writes (root, FUSE)"
    )
    parser.add_argument("--sales", type=int, default=2000, help="sales to ring up")
    parser.add_argument("--cuts", type=int, default=1000, help="power cuts")
    parser.add_argument("--seed", type=int, default=24, help="seed for sales and cut points")
    parser.add_argument("--torn-every", type=int, default=4, help="one cut in N is torn")
    parser.add_argument(
        "--migration",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start from the previous schema and cut pos-agent migrate",
    )
    parser.add_argument(
        "--whole-audit-every",
        type=int,
        default=FULL_AUDIT_EVERY,
        help="every Nth audit reads everything, not only what changed (1: every audit)",
    )
    powercut_vm_layer.add_arguments(parser)
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it")
    parser.set_defaults(handler=powercut_command)
