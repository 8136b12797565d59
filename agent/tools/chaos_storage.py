"""The register's own storage faults for `pos-agent chaos`: a full disk, a database lock held by
another process, and a WAL lost after a SIGKILL.

- `full` (root only: the state directory is a small tmpfs mounted for the run): the filesystem is
  filled to the last byte for a moment, then freed. The till gets 503 `storage_unavailable` and
  retries the same request_id.
- `busy`: a second SQLite connection holds the write lock (a backup tool, a technician's
  `sqlite3` shell), by turns for a moment the agent waits out itself (the till sees nothing)
  and for longer than its retry budget (`BUSY_RETRY_BUDGET_S`): the till gets 503
  `storage_busy` and retries.
- `wal_loss`: on some of the harness's kills, the database goes back to a consistent copy taken
  at an earlier kill and its `-wal` and `-shm` files are deleted before the restart (a restore of
  only the main file, a lost WAL). Deleting the WAL alone is not used: a SIGKILL in the middle
  of a checkpoint leaves the main file half-updated without it, which the agent rightly refuses
  to open as damaged (and no harness can go on from). The daemon finds itself behind its
  high-water mark and refuses the rolled-back series; the harness then acts as the technician
  who found no newer copy (`POST /v1/rollback/accept`), and records which numbers were lost so
  the audit can tell them apart: receipts the provider holds are not lost, offline receipts that
  existed only in the lost WAL are (`lost_to_rollback`), and no number may be reused and no MARK
  adopted for another document.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from agent.api.routing import BUSY_RETRY_BUDGET_S
from agent.tools.local_stack import LocalStack
from offline_store.upgrade import consistent_copy

TMPFS_BYTES = 256 * 1024 * 1024
HOLD_S = (0.2, 1.2)  # a full disk; a short busy lock
LONG_BUSY_S = (BUSY_RETRY_BUDGET_S + 0.3, BUSY_RETRY_BUDGET_S + 1.5)
PAUSE_S = (0.5, 2.5)
WAL_LOSS_EVERY = 3  # one kill in three also loses the WAL
ACCEPT_ATTEMPTS = 300


@dataclass
class StorageChaos:
    stack: LocalStack
    rng: random.Random
    log: Callable[[str], None]
    enabled: bool = True
    events: Counter[str] = field(default_factory=Counter)
    # series → (first, last) numbers the technician accepted as lost, over all WAL losses
    lost_numbers: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    # UIDs whose IsDelayedCode changed in a lost part (sent offline there; the older copy
    # still had them unsent): the provider keeps the lost part's code.
    codes_lost: set[str] = field(default_factory=set)
    _tmpfs: bool = False
    # Held for a full-disk or busy episode: putting the older copy back is the technician's
    # step, done on a disk with space (a copy cut short by ENOSPC is no WAL loss, it is a broken
    # file) and with no other program holding the database open (a connection kept across the
    # swap would go on with the deleted WAL's shared memory beside the daemon's new one).
    _episode: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def kinds(self) -> list[str]:
        return ["busy", "full"] if self._tmpfs else ["busy"]

    def mount(self) -> None:
        """Before the stack starts: a small tmpfs for the state directory, when root."""
        if not self.enabled:
            return
        if os.geteuid() != 0:
            self.skipped.append("full: mounting a tmpfs for the state directory needs root")
            return
        state = self.stack.state_dir
        state.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(state)], check=True
        )
        self._tmpfs = True

    def unmount(self) -> None:
        if self._tmpfs:
            subprocess.run(["umount", "-l", str(self.stack.state_dir)], check=False)
            self._tmpfs = False

    async def run(self, done: asyncio.Event) -> None:
        if not self.enabled:
            return
        while not done.is_set():
            kind = self.rng.choice(self.kinds)
            long_busy = kind == "busy" and self.events[kind] % 2 == 0
            hold = self.rng.uniform(*(LONG_BUSY_S if long_busy else HOLD_S))
            self.events[kind] += 1
            if kind == "full":
                await self._full(hold)
            else:
                await self._busy(hold)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.rng.uniform(*PAUSE_S))

    async def lose_wal_now(self, kill_number: int) -> bool:
        """Called between a kill and the restart: every WAL_LOSS_EVERY-th kill goes back to the
        copy taken at an earlier kill and loses the WAL; the others take a fresh copy."""
        if not self.enabled:
            return False
        async with self._episode:
            return self._lose_wal(kill_number)

    def _lose_wal(self, kill_number: int) -> bool:
        database = self.stack.database_path
        if kill_number % WAL_LOSS_EVERY or not self._copy.exists():
            if database.exists():
                consistent_copy(database, self._copy)
            return False
        lost_codes = _delayed_codes(database)
        kept_codes = _delayed_codes(self._copy, whole=True)
        shutil.copyfile(self._copy, database)
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        self.codes_lost.update(
            uid for uid, code in lost_codes.items() if kept_codes.get(uid, code) != code
        )
        self.events["wal_loss"] += 1
        return True

    @property
    def _copy(self) -> Path:
        return self.stack.root / "older-copy.sqlite3"

    async def accept_rollback(self) -> None:
        """After the restart: the technician's `pos-agent rollback accept`, when it is needed."""
        async with self.stack.async_client(timeout_s=30) as client:
            for _ in range(ACCEPT_ATTEMPTS):  # a full disk or a held lock refuses it for a while
                response = await client.post("/v1/rollback/accept", content=b"{}")
                if not refusal_is_retryable(response):
                    break
                await asyncio.sleep(0.2)
        if response.status_code == 409:  # the loss took nothing the mark had seen
            return
        response.raise_for_status()
        accepted = response.json()
        for series, numbers in accepted["lost_numbers"].items():
            span = (int(numbers["from"]), int(numbers["to"]))
            self.lost_numbers.setdefault(series, []).append(span)
            self.log(f"WAL lost: series {series} numbers {span[0]}-{span[1]} accepted as lost")
        for series, numbers in accepted["voided_reservations"].items():
            for number in numbers:
                self.lost_numbers.setdefault(series, []).append((number, number))
            self.log(f"WAL lost: series {series} open reservations {numbers} voided")

    def was_lost(self, series: str, number: int) -> bool:
        return any(first <= number <= last for first, last in self.lost_numbers.get(series, []))

    async def _full(self, hold: float) -> None:
        filler = self.stack.state_dir / "chaos-filler"
        async with self._episode:
            await asyncio.to_thread(_fill, filler)
            try:
                await asyncio.sleep(hold)
            finally:
                filler.unlink(missing_ok=True)

    async def _busy(self, hold: float) -> None:
        path = self.stack.database_path
        if not path.exists():
            return
        async with self._episode:
            conn = await asyncio.to_thread(_lock, path)
            if conn is None:
                return
            try:
                await asyncio.sleep(hold)
            finally:
                await asyncio.to_thread(_unlock, conn)


def _delayed_codes(database: Path, *, whole: bool = False) -> dict[str, int]:
    """Each document's IsDelayedCode; `whole`: a file with no WAL of its own (the copy)."""
    options = "mode=ro&immutable=1" if whole else "mode=ro"
    conn = sqlite3.connect(f"{database.resolve().as_uri()}?{options}", uri=True)
    try:
        return {
            str(uid): int(code)
            for uid, code in conn.execute("SELECT uid, delayed_code FROM documents")
        }
    finally:
        conn.close()


def _fill(filler: Path) -> None:
    stat = os.statvfs(filler.parent)
    with filler.open("wb") as out, contextlib.suppress(OSError):
        out.write(b"\0" * (stat.f_bavail * stat.f_frsize))


def _lock(path: Path) -> sqlite3.Connection | None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0, check_same_thread=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error:
        conn.close()
        return None
    return conn


def _unlock(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")
    conn.close()


def refusal_is_retryable(response: httpx.Response) -> bool:
    """What a till retries at once with the same request_id: the register's storage refused,
    or the series waits for the technician after a WAL loss."""
    if response.status_code != 503:
        return False
    with contextlib.suppress(ValueError):
        code = response.json().get("error", {}).get("code")
        return code in ("storage_unavailable", "storage_busy", "database_rolled_back")
    return False
