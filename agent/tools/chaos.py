"""`pos-agent chaos`: mixed receipts under provider faults and SIGKILLs, then exactly-once checks.

A real daemon and the sandbox provider run as processes (`agent.tools.local_stack`). Four POS clients
issue a seeded mix of cash receipts, card sales (sign, then issue with the signature) and POS
receipts 8.4, while the sandbox flips between ok, down, blackhole, aade_down, error500 and slow,
and the daemon is SIGKILLed at random moments and restarted. A client whose connection fails
retries with the SAME request_id and body, as a real till does: that is what makes "exactly
once" testable. Afterwards the faults are cleared, the backlog is synced to empty, and:

- `lost`: a sale the POS got a success answer for whose UID is not at the provider;
- `duplicates`: extra provider documents for one sale, plus provider documents no sale explains;
- `gaps`: numbers missing from the store (`offline_store.numbering_gaps`) plus numbers missing at
  the provider that the store does not account for (void, reserved or rejected rows are recorded,
  so they are not silent);
- `wrong_codes`: a provider document whose recorded IsDelayedCode differs from the agent's
  delayed_code. One case is reported apart (`ambiguous_timeouts`): the provider took the first,
  online send but answered after the till's timeout, so the agent went offline with code 1 and
  later adopted the MARK from the provider's duplicate answer; no client can tell that case
  from a lost request at the moment it has to print;
- `wrong_marks`: a document of the store holding a MARK that the provider gave to another
  document (another UID);
- `journal_ok`: the store's hash chain verifies.

With `--storage-faults` (the default) the register's own storage fails too (see
`agent/tools/chaos_storage.py`): a full disk (root), a lock held by another process, and a WAL
lost after some of the kills. Receipts that existed only in a lost WAL are reported apart as
`lost_to_rollback`: the agent detects the loss and the technician accepts it, so they are lost
by the injected destruction, not silently; numbers are never reused and no MARK is adopted for
another document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from agent.json_codec import dumps
from agent.tools.chaos_audit import Audit, Sale
from agent.tools.chaos_storage import StorageChaos, refusal_is_retryable
from agent.tools.local_stack import JSON_HEADERS, LocalStack, StackSettings, print_verdict, work_dir

POS_CLIENTS = 4
# (mode, weight); `slow` picks its delay from SLOW_DELAYS_MS, the last one beyond the read timeout.
FAULT_MODES: tuple[tuple[str, int], ...] = (
    ("ok", 30),
    ("down", 14),
    ("blackhole", 10),
    ("aade_down", 14),
    ("error500", 12),
    ("slow", 20),
)
_MODES, _WEIGHTS = zip(*FAULT_MODES, strict=True)
SLOW_DELAYS_MS = (30, 150, 400, 1500)
RETRY_PAUSE_S = (0.05, 0.25)
MAX_ATTEMPTS = 400
CLIENT_TIMEOUT_S = 30.0
RESTART_ATTEMPTS = 20
SIGN_ATTEMPTS = 3
SYNC_DEADLINE_S = 180.0


@dataclass
class Tally:
    started: int = 0
    succeeded: int = 0
    refused: int = 0
    retries: int = 0
    server_errors: int = 0
    timeouts: int = 0
    autonomous: int = 0
    signed: int = 0
    kills: int = 0
    crashes: int = 0
    storage_refusals: int = 0
    failed_starts: int = 0
    resigned: int = 0
    restart_ms: list[float] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


class Chaos:
    def __init__(
        self,
        root: Path,
        *,
        receipts: int,
        kills: int,
        seed: int,
        log: Callable[[str], None],
        storage_faults: bool = True,
    ) -> None:
        self.receipts = receipts
        self.kills = kills
        self.seed = seed
        self.log = log
        # Separate streams, so the sales stay the same whatever the timing of faults and kills.
        self.rng = random.Random(f"{seed}:faults")
        self.kill_rng = random.Random(f"{seed}:kills")
        self.pause_rng = random.Random(f"{seed}:pauses")
        self.settings = StackSettings(
            printer_backend="dummy",
            preview_dir=False,
            sync_interval_s=2.0,
            probe_interval_s=0.5,
            sync_concurrency=4,
            connect_timeout_s=0.5,
            read_timeout_s=1.0,
            total_timeout_s=1.5,
            backoff_base_s=0.1,
            backoff_max_s=1.0,
        )
        self.stack = LocalStack(root, self.settings)
        self.storage = StorageChaos(
            self.stack, random.Random(f"{seed}:storage"), log, enabled=storage_faults
        )
        self.tally = Tally()
        self.sales: list[Sale] = []
        self.done = asyncio.Event()
        self._next_sale = 0

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.storage.mount()
        try:
            try:
                self.start()
                asyncio.run(self._run())
                report = self.verify()
            finally:
                self.stack.stop()
        finally:
            self.storage.unmount()
        report["seconds"] = round(time.perf_counter() - started, 1)
        return report

    def start(self) -> None:
        """Sandbox, config, daemon; the first daemon start is tried again as a restart is: on a
        loaded machine it can miss its READY deadline before any fault was injected."""
        self.stack.start_sandbox()
        self.stack.write_config()
        asyncio.run(self._start_daemon())

    async def _run(self) -> None:
        thresholds = self._kill_thresholds()
        faults = asyncio.create_task(self.flip_faults())
        killer = asyncio.create_task(self.kill_daemon(thresholds))
        storage = asyncio.create_task(self.storage.run(self.done))
        tills = asyncio.ensure_future(asyncio.gather(*(self.pos(n) for n in range(POS_CLIENTS))))
        # A background task that fails (a restart that never succeeds) ends the run with its
        # error at once: the tills would otherwise retry against a dead daemon for minutes.
        waiting: set[asyncio.Future[Any]] = {tills, faults, killer, storage}
        while not tills.done():
            finished, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in finished - {tills}:
                tills.cancel()
                task.result()
                raise RuntimeError("a chaos task ended before the sales did")
        await tills
        self.done.set()
        await killer
        await faults
        await storage
        self.log(f"{self.tally.succeeded} sales answered, {self.tally.kills} kills; draining")
        await self.drain()

    def _kill_thresholds(self) -> list[int]:
        low, high = max(1, self.receipts * 3 // 100), max(2, self.receipts * 97 // 100)
        span = range(low, high)
        count = min(self.kills, len(span))
        return sorted(self.kill_rng.sample(span, count))

    # -- POS clients ---------------------------------------------------------------------------

    def new_sale(self, till: int) -> Sale | None:
        if self._next_sale >= self.receipts:
            return None
        self._next_sale += 1
        rng = random.Random(f"{self.seed}:sale:{self._next_sale}")
        kind = rng.choices(("cash", "card", "pos"), weights=(55, 30, 15))[0]
        lines = []
        total = Decimal("0")
        for index in range(rng.randint(1, 6)):
            price = Decimal(rng.randint(50, 2500)) / 100
            quantity = rng.randint(1, 3)
            total += price * quantity
            lines.append(
                {
                    "description": f"Είδος {index + 1} ☕",
                    "quantity": quantity,
                    "unit_price": price,
                    "vat_category": rng.choice((1, 2, 3)),
                }
            )
        sale = Sale(
            sale_id=f"s{self.seed}-{self._next_sale}",
            kind=kind,
            lines=lines,
            total=total,
            terminal_id=f"T{till}",
            transaction_id=f"tx-{self.seed}-{self._next_sale}",
        )
        self.sales.append(sale)
        self.tally.started += 1
        self.tally.kinds[kind] += 1
        return sale

    async def pos(self, till: int) -> None:
        async with self.stack.async_client(timeout_s=CLIENT_TIMEOUT_S) as client:
            while (sale := self.new_sale(till)) is not None:
                await self.sell(client, sale)

    async def call(
        self, client: httpx.AsyncClient, sale: Sale, path: str, body: dict[str, Any]
    ) -> httpx.Response | None:
        """POST until an answer that is not a connection failure or a 5xx (503 autonomous is
        an answer). The body and request_id never change between attempts."""
        content = dumps(body)
        for _ in range(MAX_ATTEMPTS):
            try:
                response = await client.post(path, content=content, headers=JSON_HEADERS)
            except httpx.TimeoutException:
                self.tally.timeouts += 1
                self.tally.problems.append(f"{sale.sale_id} {path}: client timeout (hang?)")
            except httpx.TransportError:
                self.tally.retries += 1
            else:
                self.tally.statuses[response.status_code] += 1
                autonomous = (
                    response.status_code == 503 and response.json().get("mode") == "autonomous"
                )
                if response.status_code < 500 or autonomous:
                    return response
                if refusal_is_retryable(response):
                    self.tally.storage_refusals += 1
                    await asyncio.sleep(self.pause_rng.uniform(*RETRY_PAUSE_S))
                    continue
                self.tally.server_errors += 1
                self.tally.problems.append(
                    f"{sale.sale_id} {path}: {response.status_code} {response.text[:200]}"
                )
            await asyncio.sleep(self.pause_rng.uniform(*RETRY_PAUSE_S))
        self.tally.problems.append(f"{sale.sale_id} {path}: gave up after {MAX_ATTEMPTS} tries")
        return None

    async def sell(self, client: httpx.AsyncClient, sale: Sale) -> None:
        """A signature lost with a WAL (422 unknown_signature) or whose reservation the
        technician's `rollback accept` voided (409 reservation_voided) is signed again, as a
        till would do: the refused issue changed nothing, so the same request_id goes with the
        new one."""
        for signing in range(1, SIGN_ATTEMPTS + 1):
            response = await self._issue(client, sale, 1 + (signing - 1) * SIGN_ATTEMPTS)
            if response is None:
                return
            code = (
                response.json().get("error", {}).get("code")
                if response.status_code in (409, 422)
                else None
            )
            if code in ("unknown_signature", "reservation_voided") and signing < SIGN_ATTEMPTS:
                self.tally.resigned += 1
                continue
            if response.status_code in (200, 201):
                sale.answer = response.json()
                self.tally.succeeded += 1
            else:
                self._refuse(sale, f"issue {response.status_code} {response.text[:200]}")
            return

    async def _issue(
        self, client: httpx.AsyncClient, sale: Sale, signing: int
    ) -> httpx.Response | None:
        payment = await self.payment(client, sale, signing)
        if payment is None:
            return None
        body: dict[str, Any]
        if sale.kind == "pos":
            path = "/v1/pos-receipts"
            body = {"request_id": sale.sale_id, "type": "8.4", "payments": [payment]}
        else:
            path = "/v1/receipts"
            body = {
                "request_id": sale.sale_id,
                "lines": sale.lines,
                "payments": [payment],
                "delivery": {"print": sale.printed},
            }
        return await self.call(client, sale, path, body)

    async def payment(
        self, client: httpx.AsyncClient, sale: Sale, signing: int = 1
    ) -> dict[str, Any] | None:
        """Cash as it is; a card is signed first (without a signature when the terminal goes
        autonomous). None when the sale cannot go on."""
        if sale.kind == "cash":
            return {"method": 3, "amount": sale.total}
        payment: dict[str, Any] = {
            "method": 7,
            "amount": sale.total,
            "terminal_id": sale.terminal_id,
            "transaction_id": sale.transaction_id,
        }
        response = None
        for attempt in range(signing, signing + SIGN_ATTEMPTS):
            sign: dict[str, Any] = {
                "request_id": f"{sale.sale_id}-sign" + (f"-{attempt}" if attempt > 1 else ""),
                "terminal_id": sale.terminal_id,
                "amount": sale.total,
                "document_type": "11.1" if sale.kind == "card" else "8.4",
            }
            if sale.kind == "card":
                sign["lines"] = sale.lines
            response = await self.call(client, sale, "/v1/payments/sign", sign)
            if response is None:
                return None
            # A WAL loss took the remembered answer but the reservation was issued or voided
            # since (rollback accept): the till signs the sale again under a new request_id.
            if response.status_code == 409 and "sign_request_settled" in response.text:
                self.tally.resigned += 1
                continue
            break
        if response is None:
            return None
        if response.status_code == 201:
            self.tally.signed += 1
            payment["signature_id"] = response.json()["signature_id"]
        elif response.status_code == 503:
            self.tally.autonomous += 1  # the terminal goes autonomous: no signature
        else:
            self._refuse(sale, f"sign {response.status_code} {response.text[:200]}")
            return None
        return payment

    def _refuse(self, sale: Sale, reason: str) -> None:
        self.tally.refused += 1
        self.tally.problems.append(f"{sale.sale_id}: {reason}")

    # -- faults and kills ----------------------------------------------------------------------

    async def flip_faults(self) -> None:
        async with httpx.AsyncClient(base_url=self.stack.sandbox_url, timeout=10) as admin:
            while not self.done.is_set():
                mode = self.rng.choices(_MODES, weights=_WEIGHTS)[0]
                body: dict[str, Any] = {"mode": mode}
                if mode == "slow":
                    body["delay_ms"] = self.rng.choice(SLOW_DELAYS_MS)
                    self.tally.faults[f"slow{body['delay_ms']}"] += 1
                else:
                    self.tally.faults[mode] += 1
                (await admin.post("/_sandbox/faults", json=body)).raise_for_status()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.done.wait(), self.rng.uniform(0.3, 2.0))
            (await admin.post("/_sandbox/faults", json={"mode": "ok"})).raise_for_status()

    async def kill_daemon(self, thresholds: list[int]) -> None:
        """SIGKILL when the count of answered sales passes each threshold (plus a random few
        ms, so the kill lands inside requests), then restart; also restart a crashed daemon."""
        pending = list(thresholds)
        while not self.done.is_set():
            daemon = self.stack.daemon
            if daemon is not None and daemon.poll() is not None:
                self.tally.crashes += 1
                self.tally.problems.append(f"daemon exited by itself with {daemon.returncode}")
                await self._restart()
            if pending and self.tally.succeeded >= pending[0]:
                pending.pop(0)
                await asyncio.sleep(self.kill_rng.uniform(0.0, 0.15))
                await asyncio.to_thread(self.stack.kill_daemon)
                self.tally.kills += 1
                wal_lost = await self.storage.lose_wal_now(self.tally.kills)
                await asyncio.sleep(self.kill_rng.uniform(0.0, 0.3))
                await self._restart()
                if wal_lost:
                    await self.storage.accept_rollback()
            await asyncio.sleep(0.01)

    async def _restart(self) -> None:
        self.tally.restart_ms.append(await self._start_daemon())

    async def _start_daemon(self) -> float:
        """As systemd does (Restart=on-failure, RestartSec=2, shortened here): a start that
        fails (refused by a full disk, the WAL cannot be created; or not ready in time, and
        then killed by `start_daemon`) is tried again until it succeeds. Milliseconds to
        READY=1 of the start that did."""
        attempt = 1
        while True:
            try:
                return await asyncio.to_thread(self.stack.start_daemon)
            except RuntimeError as exc:
                self.tally.failed_starts += 1
                if attempt == RESTART_ATTEMPTS:
                    raise
                attempt += 1
                self.log(f"daemon did not start ({exc}); again")
                await asyncio.sleep(0.5)

    # -- end: sync everything, then compare ----------------------------------------------------

    async def drain(self) -> None:
        self.stack.set_faults("ok")
        deadline = time.monotonic() + SYNC_DEADLINE_S
        async with self.stack.async_client(timeout_s=120) as client:
            while True:
                response = await client.post("/v1/sync")
                if response.status_code != 200:
                    self.tally.problems.append(
                        f"sync: {response.status_code} {response.text[:200]}"
                    )
                if self.stack.unsent_count() == 0:
                    return
                if time.monotonic() > deadline:
                    self.tally.problems.append(f"backlog not empty after {SYNC_DEADLINE_S} s")
                    return
                await asyncio.sleep(0.5)

    def verify(self) -> dict[str, Any]:
        import offline_store as store

        provider_docs = self.stack.provider_documents()
        conn = self.stack.open_store()
        try:
            rows = [
                dict(row)
                for row in conn.execute(
                    "SELECT id, request_id, uid, series, number, type_code, state, delayed_code,"
                    " mark, authentication_code FROM documents"
                )
            ]
            store_gaps = store.numbering_gaps(conn)
            last_numbers = store.last_numbers(conn)
            journal = store.verify_journal(conn)
        finally:
            conn.close()
        audit = Audit(rows, provider_docs, self.storage.was_lost, self.storage.codes_lost)
        answered = [sale for sale in self.sales if sale.answer is not None]
        lost, mismatched = audit.lost(answered)
        wrong_marks = audit.wrong_marks()
        extra, unknown = audit.duplicates()
        silent = audit.silent_gaps(last_numbers)
        store_gap_count = sum(len(numbers) for numbers in store_gaps.values())
        wrong_codes, ambiguous = audit.codes()
        delayed_docs = Counter(row["delayed_code"] for row in rows if row["delayed_code"])
        states = Counter(row["state"] for row in rows)
        tally = self.tally
        return {
            "receipts": len(answered),
            "kills": tally.kills,
            "lost": lost,
            "duplicates": extra + unknown,
            "gaps": store_gap_count + silent,
            "wrong_codes": wrong_codes,
            "wrong_marks": wrong_marks,
            "lost_to_rollback": audit.lost_to_rollback,
            "journal_ok": journal.ok,
            "seed": self.seed,
            "details": {
                "sales_started": tally.started,
                "sales_refused": tally.refused,
                "sales_by_kind": dict(tally.kinds),
                "answer_mismatches": mismatched,
                "provider_documents": len(provider_docs),
                "unknown_at_provider": unknown,
                "store_gaps": store_gap_count,
                "provider_silent_gaps": silent,
                "ambiguous_timeouts": ambiguous,
                "delayed_documents": {str(k): v for k, v in sorted(delayed_docs.items())},
                "store_states": dict(states),
                "open_reservations": states.get("reserved", 0),
                "journal_entries": journal.entries,
                "signed": tally.signed,
                "autonomous": tally.autonomous,
                "connection_retries": tally.retries,
                "server_errors": tally.server_errors,
                "client_timeouts": tally.timeouts,
                "daemon_crashes": tally.crashes,
                "storage_events": dict(self.storage.events),
                "storage_refusals": tally.storage_refusals,
                "failed_starts": tally.failed_starts,
                "signed_again_after_wal_loss": tally.resigned,
                "storage_skipped": self.storage.skipped,
                "numbers_lost_with_wal": {
                    series: [list(span) for span in spans]
                    for series, spans in self.storage.lost_numbers.items()
                },
                "rolled_back_at_provider": audit.rolled_back_at_provider,
                "restart_ready_ms_max": round(max(tally.restart_ms, default=0.0), 1),
                "fault_flips": dict(tally.faults),
                "answer_statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
                "problems": (tally.problems + audit.problems)[:50],
            },
        }


def passed(report: dict[str, Any]) -> bool:
    details = report["details"]
    return (
        report["lost"]
        == report["duplicates"]
        == report["gaps"]
        == report["wrong_codes"]
        == report["wrong_marks"]
        == 0
        and report["journal_ok"]
        and details["answer_mismatches"] == 0
        and details["server_errors"] == 0
        and details["client_timeouts"] == 0
        and details["daemon_crashes"] == 0
        and details["sales_refused"] == 0
    )


def run_chaos(
    root: Path,
    *,
    receipts: int,
    kills: int,
    seed: int,
    log: Callable[[str], None] = print,
    storage_faults: bool = True,
) -> dict[str, Any]:
    return Chaos(
        root, receipts=receipts, kills=kills, seed=seed, log=log, storage_faults=storage_faults
    ).run()


def chaos_command(args: argparse.Namespace) -> int:
    def log(message: str) -> None:
        print(f"chaos: {message}", file=sys.stderr, flush=True)

    with work_dir(args.keep, "pos-agent-chaos-") as root:
        report = run_chaos(
            root,
            receipts=args.receipts,
            kills=args.kills,
            seed=args.seed,
            log=log,
            storage_faults=args.storage_faults,
        )
    return print_verdict(report, passed(report), args.json)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "chaos", help="mixed receipts under provider faults and SIGKILLs; exactly-once checks"
    )
    parser.add_argument("--receipts", type=int, default=2000, help="sales to ring up")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the daemon")
    parser.add_argument("--seed", type=int, default=7, help="seed for sales, faults and kills")
    parser.add_argument(
        "--storage-faults",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also fill the disk (root), hold the database lock, lose the WAL on some kills",
    )
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (logs, DB)")
    parser.set_defaults(handler=chaos_command)
