"""`pos-agent bench`: measured performance of a real daemon against the real sandbox provider.

Everything runs as separate processes on loopback (`agent.tools.local_stack`): the POS side talks to
the daemon over its Unix socket, the daemon talks HTTP to the sandbox. Measured:

- `online_issue_ms`: a 10-line cash receipt through the agent, and `direct_provider_ms`: the
  very same provider payload (read back from the agent's store, with a fresh series/number per
  post) sent straight to the sandbox with httpx, interleaved one for one in the same run; the
  difference is the agent's overhead (`overhead_ms_p50`/`p99`).
- `online_receipts_per_s` with 4 concurrent POS clients.
- `first_offline_ms` (sandbox blackholes, first receipt runs into the timeouts) and
  `offline_issue_ms` after it (breaker open, no network call).
- `sync_docs_per_s`: a backlog issued while the sandbox is down, drained with the sandbox
  answering after 20 ms; `sync_limit_docs_per_s` = sync.concurrency / 0.020 s is the ceiling.
- `scrape_ms`: `GET /metrics` on the metrics-only listener (what a fleet's Prometheus pays),
  on a nearly empty store after warm-up, and `scrape_history_ms` at the end, when the store
  holds every document of the run (`scrape_history_documents`): flat means it does not grow.
- `rss_idle_mb`/`rss_peak_mb` of the daemon (VmRSS after warm-up, VmHWM at the end),
  `startup_ready_ms` (exec to READY=1 over NOTIFY_SOCKET), and the printers' render times for
  a 30-line receipt with QR.

`--quick` runs reduced counts (CI smoke, well under a minute); the full run stays under 10 min
on a 2-core machine. No timing is asserted here: the goals are reported as met or missed.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

import offline_store as store
from agent.json_codec import dumps, loads
from agent.tools.figures import (
    evaluate_goals,
    loadavg,
    machine_info,
    ms_figures,
    print_table,
    proc_status_mb,
    process_cpu_s,
    summary,
)
from agent.tools.lean_http import LeanUnixClient
from agent.tools.local_stack import (
    JSON_HEADERS,
    LocalStack,
    StackSettings,
    free_tcp_port,
    work_dir,
    write_report,
)

if TYPE_CHECKING:
    from printers.receipt import PrintableReceipt

T = TypeVar("T")
SLOW_DELAY_MS = 20
POS_CLIENTS = 4
RECEIPT_LINES = 10
_NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


@dataclass(frozen=True)
class Plan:
    online: int = 1000
    throughput_per_client: int = 250
    offline: int = 500
    backlog: int = 10_000
    startups: int = 3
    renders: int = 50
    warmup: int = 30
    scrapes: int = 200

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            online=100,
            throughput_per_client=40,
            offline=50,
            backlog=300,
            startups=1,
            renders=10,
            warmup=10,
            scrapes=50,
        )


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    """Await `call`; its result and the milliseconds it took (nothing else inside the clock)."""
    t0 = time.perf_counter()
    result = await call
    return result, (time.perf_counter() - t0) * 1000


# -- request bodies ----------------------------------------------------------------------------


def bench_receipt(request_id: str) -> bytes:
    """A cash receipt of RECEIPT_LINES lines (gross prices, VAT categories 1 and 2), encoded
    before any clock starts."""
    items = []
    total = Decimal("0")
    for index in range(RECEIPT_LINES):
        price = Decimal("1.10") + Decimal(index % 7) * Decimal("0.35")
        quantity = 1 + index % 3
        total += price * quantity
        items.append(
            {
                "description": f"Είδος {index + 1} — καφές/σνακ",
                "quantity": quantity,
                "unit_price": price,
                "vat_category": 1 if index % 2 else 2,
            }
        )
    body = {
        "request_id": request_id,
        "lines": items,
        "payments": [{"method": 3, "amount": total}],
        "delivery": {"print": False},
    }
    return dumps(body)


def renumbered(template: dict[str, Any], series: str, number: int) -> dict[str, Any]:
    """The agent's provider payload under another series/number (a new UID for the sandbox)."""
    distribution = {
        **template.get("DistributionDetails", {}),
        "InternalDocumentId": f"{series.lower()}-{number}",
    }
    return {
        **template,
        "Series": series,
        "Number": str(number),
        "DistributionDetails": distribution,
    }


def _check_accepted(status: int, content: bytes) -> None:
    if status != 201 or loads(content).get("state") != "accepted":
        raise RuntimeError(f"online receipt not accepted: {content[:300]!r}")


# -- phases ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, root: Path, plan: Plan, log: Callable[[str], None]) -> None:
        self.root = root
        self.plan = plan
        self.log = log
        self.settings = StackSettings(
            printer_backend="dummy",
            preview_dir=False,
            sync_interval_s=3600.0,
            probe_interval_s=0.5,
            sync_concurrency=4,
            connect_timeout_s=1.0,
            read_timeout_s=2.0,
            total_timeout_s=3.0,
            backoff_base_s=0.05,
            backoff_max_s=0.5,
            metrics_listen=f"127.0.0.1:{free_tcp_port()}",
        )
        self.stack = LocalStack(root, self.settings)
        self.results: dict[str, Any] = {}
        self._counter = 0
        self._template: dict[str, Any] = {}

    def next_receipt(self, prefix: str) -> bytes:
        """A fresh bench receipt; request ids are unique across the whole run."""
        self._counter += 1
        return bench_receipt(f"{prefix}-{self._counter}")

    @property
    def pid(self) -> int:
        assert self.stack.daemon is not None
        return self.stack.daemon.pid

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        with self.stack:
            self.phase_startup()
            asyncio.run(self.async_phases())
            self.results["rss_peak_mb"] = proc_status_mb(self.pid)["VmHWM"]
        self.phase_render()
        self.results["seconds"] = round(time.perf_counter() - started, 1)
        return self.results

    def phase_startup(self) -> None:
        runs = [self.stack.last_ready_ms or 0.0]
        for _ in range(self.plan.startups - 1):
            self.stack.stop_daemon()
            runs.append(self.stack.start_daemon())
        self.results["startup_ready_ms"] = round(statistics.median(runs), 1)
        self.results["startup_ready_ms_runs"] = [round(r, 1) for r in runs]
        self.log(f"startup: {self.results['startup_ready_ms_runs']} ms")

    async def async_phases(self) -> None:
        async with self.stack.async_client(timeout_s=600) as client:
            await self.phase_warmup(client)
            await self.phase_scrape("scrape")
            await self.phase_online(client)
            await self.phase_throughput()
            await self.phase_offline()
            await self.phase_sync(client)
            await self.phase_scrape("scrape_history")

    def pos(self) -> LeanUnixClient:
        """One till on the daemon's socket (see `agent.tools.lean_http` for why not httpx)."""
        return LeanUnixClient(str(self.stack.socket_path))

    def provider(self) -> httpx.AsyncClient:
        """A bare httpx client straight to the sandbox with the API key: the baseline the
        agent's figures are compared with."""
        key = self.stack.api_key_file.read_text(encoding="utf-8").strip()
        headers = {"APIKey": key, "Content-Type": "application/json", "Accept": "application/json"}
        transport = httpx.AsyncHTTPTransport(retries=0, socket_options=_NO_DELAY)
        return httpx.AsyncClient(
            base_url=self.stack.sandbox_url,
            transport=transport,
            headers=headers,
            timeout=30,
            trust_env=False,
        )

    async def phase_warmup(self, client: httpx.AsyncClient) -> None:
        for _ in range(self.plan.warmup):
            body = self.next_receipt("warm")
            response = await client.post("/v1/receipts", content=body, headers=JSON_HEADERS)
            response.raise_for_status()
        await asyncio.sleep(1.0)
        self.results["rss_idle_mb"] = proc_status_mb(self.pid)["VmRSS"]
        self.log(f"idle RSS: {self.results['rss_idle_mb']} MB")

    async def phase_scrape(self, key: str) -> None:
        """Scrapes one after another on a keep-alive connection to the metrics-only listener,
        as Prometheus makes them; each builds the status view and renders every series."""
        conn = self.stack.open_store()
        try:
            documents = int(conn.execute("SELECT max(id) FROM documents").fetchone()[0] or 0)
        finally:
            conn.close()
        times = []
        url = f"http://{self.settings.metrics_listen}"
        async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as scraper:
            for _ in range(self.plan.scrapes):
                response, ms = await timed(scraper.get("/metrics"))
                response.raise_for_status()
                times.append(ms)
        self.results[f"{key}_ms"] = summary(times)
        self.results[f"{key}_documents"] = documents
        self.results["scrape_bytes"] = len(response.content)
        self.log(f"{key}: {ms_figures(self.results[f'{key}_ms'])} with {documents} documents")

    def accepted_payload(self) -> dict[str, Any]:
        """The provider payload of the last receipt the agent sent, as the direct posts' model."""
        conn = self.stack.open_store()
        try:
            accepted = store.list_documents(conn, state=store.DocumentState.ACCEPTED, limit=20)
        finally:
            conn.close()
        for doc in accepted:
            if doc.kind == store.DocumentKind.RECEIPT and doc.payload is not None:
                return dict(loads(doc.payload))
        raise RuntimeError("no accepted receipt to take the provider payload from")

    async def phase_online(self, client: httpx.AsyncClient) -> None:
        """Agent and direct posts interleaved, so both see the same machine. The POS is the lean
        client (`agent.tools.lean_http`); the same receipt through an httpx POS is reported beside it."""
        self._template = self.accepted_payload()
        agent_ms: list[float] = []
        httpx_pos_ms: list[float] = []
        direct_ms: list[float] = []
        async with self.provider() as provider, self.pos() as pos:
            for number in range(1, self.plan.online + 1):
                body = self.next_receipt("online")
                answer, ms = await timed(pos.post("/v1/receipts", body))
                agent_ms.append(ms)
                _check_accepted(answer.status_code, answer.content)
                body = self.next_receipt("online-httpx")
                response, ms = await timed(
                    client.post("/v1/receipts", content=body, headers=JSON_HEADERS)
                )
                httpx_pos_ms.append(ms)
                _check_accepted(response.status_code, response.content)
                content = dumps(renumbered(self._template, "BENCH", number))
                direct, ms = await timed(provider.post("/Invoice/json", content=content))
                direct_ms.append(ms)
                if direct.status_code != 201:
                    raise RuntimeError(f"direct post refused: {direct.status_code} {direct.text}")
        online, with_httpx, baseline = summary(agent_ms), summary(httpx_pos_ms), summary(direct_ms)
        self.results["online_issue_ms"] = online
        self.results["online_issue_httpx_pos_ms"] = with_httpx
        self.results["direct_provider_ms"] = baseline
        for name, figures in (("overhead_ms", online), ("overhead_httpx_pos_ms", with_httpx)):
            for q in ("p50", "p99"):
                self.results[f"{name}_{q}"] = round(figures[q] - baseline[q], 3)
        self.log(
            f"online: agent p50 {online['p50']} ms p99 {online['p99']} ms "
            f"(httpx POS p50 {with_httpx['p50']} ms); "
            f"direct p50 {baseline['p50']} ms p99 {baseline['p99']} ms"
        )

    async def phase_throughput(self) -> None:
        per_client = self.plan.throughput_per_client

        async def till(number: int) -> list[float]:
            times = []
            async with self.pos() as pos:
                for _ in range(per_client):
                    body = self.next_receipt(f"pos{number}")
                    response, ms = await timed(pos.post("/v1/receipts", body))
                    times.append(ms)
                    if response.status_code != 201:
                        raise RuntimeError(f"throughput receipt failed: {response.text[:300]}")
            return times

        t0 = time.perf_counter()
        latencies = await asyncio.gather(*(till(n) for n in range(POS_CLIENTS)))
        elapsed = time.perf_counter() - t0
        total = per_client * POS_CLIENTS
        self.results["online_receipts_per_s"] = round(total / elapsed, 1)
        self.results["online_concurrent_ms"] = summary([t for ts in latencies for t in ts])
        self.log(f"throughput: {self.results['online_receipts_per_s']} receipts/s")

    async def phase_offline(self) -> None:
        self.stack.set_faults("blackhole")
        async with self.pos() as pos:
            response, first = await timed(pos.post("/v1/receipts", self.next_receipt("off")))
            body = response.json()
            if response.status_code != 201 or body.get("delayed_code") != 1:
                raise RuntimeError(f"first offline receipt: {response.status_code} {body}")
            times = []
            for _ in range(self.plan.offline):
                response, ms = await timed(pos.post("/v1/receipts", self.next_receipt("off")))
                times.append(ms)
                if response.status_code != 201 or not response.json().get("offline"):
                    raise RuntimeError(f"offline receipt: {response.status_code} {response.text}")
        bound_ms = self.settings.total_timeout_s * 1000
        self.results["first_offline_ms"] = round(first, 1)
        self.results["first_offline_bound_ms"] = bound_ms
        self.results["offline_issue_ms"] = summary(times)
        self.log(
            f"offline: first {first:.0f} ms (bound {bound_ms:.0f}),"
            f" then p50 {self.results['offline_issue_ms']['p50']} ms"
            f" p99 {self.results['offline_issue_ms']['p99']} ms"
        )

    async def phase_sync(self, client: httpx.AsyncClient) -> None:
        """Issue the backlog with the provider down (4 clients), then drain it at 20 ms a call."""
        self.stack.set_faults("down")
        issue_s = await self.issue_backlog()
        backlog = self.stack.unsent_count()
        self.log(f"backlog: {backlog} documents issued offline in {issue_s:.1f} s")
        self.results["backlog_issue_per_s"] = round(self.plan.backlog / issue_s, 1)
        # Due times are a fraction of a second away; let all of them pass before the clock runs.
        await asyncio.sleep(self.settings.backoff_max_s + 0.1)
        concurrency = self.settings.sync_concurrency
        assert self.stack.sandbox is not None
        sandbox_pid = self.stack.sandbox.pid
        cpu_before = (process_cpu_s(self.pid), process_cpu_s(sandbox_pid))
        t0 = time.perf_counter()
        self.stack.set_faults("slow", delay_ms=SLOW_DELAY_MS)
        await self.drain(client)
        elapsed = time.perf_counter() - t0
        agent_cpu = process_cpu_s(self.pid) - cpu_before[0]
        sandbox_cpu = process_cpu_s(sandbox_pid) - cpu_before[1]
        # The provider's side of each exchange, measured by the sandbox from the request's arrival.
        self.results["sandbox_answer_ms"] = self.stack.sandbox_health()["delayed_answers"]
        direct_rate = await self.direct_ceiling(concurrency, min(backlog, 2000))
        self.stack.set_faults("ok")
        rate = backlog / elapsed
        limit = concurrency / (SLOW_DELAY_MS / 1000)
        self.results["sync_backlog"] = backlog
        self.results["sync_seconds"] = round(elapsed, 2)
        self.results["sync_docs_per_s"] = round(rate, 1)
        self.results["sync_limit_docs_per_s"] = round(limit, 1)
        self.results["sync_ratio"] = round(rate / limit, 3)
        self.results["sync_direct_docs_per_s"] = round(direct_rate, 1)
        self.results["sync_vs_direct_ratio"] = round(rate / direct_rate, 3)
        self.results["sync_concurrency"] = concurrency
        # Where the time above the 20 ms goes: CPU per document on the 2 shared cores.
        self.results["sync_agent_cpu_ms_per_doc"] = round(agent_cpu / backlog * 1000, 2)
        self.results["sync_sandbox_cpu_ms_per_doc"] = round(sandbox_cpu / backlog * 1000, 2)
        self.results["sync_delay_ms"] = SLOW_DELAY_MS
        self.log(
            f"sync: {backlog} documents in {elapsed:.1f} s = {rate:.0f}/s (limit {limit:.0f}/s)"
        )

    async def issue_backlog(self) -> float:
        """Ring up `plan.backlog` receipts from 4 httpx tills; returns the seconds it took."""

        async def till(count: int) -> None:
            async with self.stack.async_client(timeout_s=60) as pos:
                for _ in range(count):
                    body = self.next_receipt("backlog")
                    response = await pos.post("/v1/receipts", content=body, headers=JSON_HEADERS)
                    if response.status_code != 201:
                        raise RuntimeError(f"backlog receipt failed: {response.text[:300]}")

        share, rest = divmod(self.plan.backlog, POS_CLIENTS)
        t0 = time.perf_counter()
        await asyncio.gather(*(till(share + (n < rest)) for n in range(POS_CLIENTS)))
        return time.perf_counter() - t0

    async def drain(self, client: httpx.AsyncClient) -> None:
        """`POST /v1/sync` until the store has nothing unsent (each call syncs what is due)."""
        for _ in range(101):
            response = await client.post("/v1/sync")
            response.raise_for_status()
            left = self.stack.unsent_count()
            if not left:
                return
        raise RuntimeError(f"sync did not drain the backlog: {left} left")

    async def direct_ceiling(self, concurrency: int, count: int) -> float:
        """What a bare httpx client reaches against the same slow sandbox at the same
        concurrency: the achievable ceiling, since the sandbox's own work and the HTTP round
        trip come on top of the 20 ms the formula counts."""
        numbers = iter(range(1, count + 1))
        async with self.provider() as provider:

            async def worker() -> None:
                for number in numbers:
                    document = renumbered(self._template, "CEIL", number)
                    answer = await provider.post("/Invoice/json", content=dumps(document))
                    if answer.status_code != 201:
                        raise RuntimeError(f"direct post refused: {answer.status_code}")

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return count / (time.perf_counter() - t0)

    def phase_render(self) -> None:
        from printers.escpos_render import render_escpos
        from printers.layout import build_layout
        from printers.png_render import render_png
        from printers.profile import PrinterProfile

        receipt = thirty_line_receipt()
        profile = PrinterProfile()
        escpos: list[float] = []
        png: list[float] = []
        render_escpos(build_layout(receipt, 48), profile)  # first call loads fonts/code pages
        render_png(build_layout(receipt, 48))
        for _ in range(self.plan.renders):
            t0 = time.perf_counter()
            render_escpos(build_layout(receipt, 48), profile)
            escpos.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            render_png(build_layout(receipt, 48))
            png.append((time.perf_counter() - t0) * 1000)
        self.results["render_escpos_ms"] = summary(escpos)
        self.results["render_png_ms"] = summary(png)
        self.log(
            f"render: ESC/POS p50 {self.results['render_escpos_ms']['p50']} ms,"
            f" PNG p50 {self.results['render_png_ms']['p50']} ms"
        )


def thirty_line_receipt() -> PrintableReceipt:
    """The printers' sample cash receipt stretched to 30 lines (layout includes the QR)."""
    from printers.receipt import ReceiptLine, Totals, VatBreakdown
    from printers.samples import sample_cash_receipt

    base = sample_cash_receipt()
    lines = []
    for index in range(30):
        price = Decimal("1.20") + Decimal(index) * Decimal("0.10")
        lines.append(
            ReceiptLine(
                description=f"Είδος {index + 1}: Ελληνικός καφές διπλός με γάλα",
                quantity=Decimal(1),
                unit_price=price,
                total=price,
                vat_percent=Decimal("24"),
                vat_category=1,
                unit="τεμ.",
            )
        )
    gross = sum((line.total for line in lines), Decimal("0"))
    net = (gross / Decimal("1.24")).quantize(Decimal("0.01"))
    vat = gross - net
    return replace(
        base,
        lines=tuple(lines),
        vat_analysis=(VatBreakdown(1, Decimal("24"), net, vat, gross),),
        totals=Totals(net=net, vat=vat, gross=gross),
        payments=(replace(base.payments[0], amount=gross),),
    )


def run_benchmark(root: Path, *, quick: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    plan = Plan.quick() if quick else Plan()
    results: dict[str, Any] = {"mode": "quick" if quick else "full", "plan": asdict(plan)}
    results["machine"] = machine_info()
    results["machine"]["loadavg_before"] = loadavg()
    results.update(Bench(root, plan, log).run())
    # Other work on the machine skews every figure; the load shows whether it was quiet.
    results["machine"]["loadavg_after"] = loadavg()
    results["goals"] = evaluate_goals(results)
    return results


def bench_command(args: argparse.Namespace) -> int:
    def log(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    if args.history is not None:
        from agent.tools.bench_history import print_history_table, run_history_benchmark

        with work_dir(args.keep, "pos-agent-bench-history-") as root:
            results = run_history_benchmark(root, args.history, log=log)
        print_history_table(results)
    else:
        with work_dir(args.keep, "pos-agent-bench-") as root:
            results = run_benchmark(root, quick=args.quick, log=log)
        print_table(results)
    if args.json is not None:
        write_report(args.json, results)
        print(f"  written to {args.json}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench", help="measure latency, throughput, offline, sync, memory, startup, rendering"
    )
    parser.add_argument("--quick", action="store_true", help="reduced counts (< 60 s, for CI)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (logs, DB)")
    parser.add_argument(
        "--history",
        type=int,
        metavar="N",
        help="instead: cost of N receipts of history (status, metrics, start, issue, sizes, "
        "archive; see agent/tools/bench_history.py)",
    )
    parser.set_defaults(handler=bench_command)
