"""`pos-agent run`: one asyncio process serving the local API, syncing and printing.

Start order: credentials → state dir + single-instance lock → schema upgrade (backup, migrate a
copy, swap; `upgrade.py`) → database (quick_check) → provider client → printer worker → API listeners → background ticks (sync, probe, watchdog) → READY.
Stop order on SIGTERM: STOPPING, stop accepting, drain in-flight requests, stop the ticks and
cancel the running sync/probe, stop the printer worker, close the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import uvicorn

import offline_store as store
from agent.api.app import create_app
from agent.api.listeners import (
    AlreadyRunning,
    ListenerError,
    network_listener,
    single_instance_lock,
    systemd_listeners,
    tcp_listener,
    unix_listener,
)
from agent.api.metrics_app import MetricsOnlyApp
from agent.api.peer_protocol import (
    ConnectionLimits,
    PeerCredentialsProtocol,
    effective_max_connections,
)
from agent.api.routing import LocalApiApp
from agent.config import AgentConfig, ConfigError, load_config
from agent.core.clock_watch import ClockWatch
from agent.core.errors import StorageUnavailable
from agent.core.maintenance import FIRST_DICTIONARY_LOOK_S, FirstDictionary, run_maintenance
from agent.core.metrics import Metrics, register_labels
from agent.core.runtime import Runtime
from agent.core.services import Services
from agent.daemon import sd_notify
from agent.daemon.background_jobs import BackgroundJobs, Job
from agent.daemon.log_format import configure_logging
from agent.daemon.loop_errors import RateLimitedLoopErrors
from agent.daemon.printing import open_printer
from agent.daemon.upgrade import bring_up_to_date, describe
from agent.elise.client import EliseClient
from agent.secrets import CredentialError, check_private_file
from agent.web_config import BasicAuth, WebConfig, load_web_config, server_context

log = logging.getLogger("pos_agent.daemon")
DRAIN_SECONDS = 8
# How often the daemon compares its wall clock with its monotonic clock (core/clock_watch.py).
CLOCK_LOOK_S = 5.0
# How often the daily closing's time (`closing.auto_at`) is looked at.
AUTO_CLOSING_LOOK_S = 30.0


@dataclass
class Listeners:
    api: list[socket.socket]
    metrics: list[socket.socket]


def _listeners(config: AgentConfig, stack: ExitStack) -> Listeners:
    """The API's sockets and the metrics listener's, from systemd or bound here. The metrics
    listener exists only when asked for: `metrics.listen`, or pos-agent-metrics.socket."""
    passed = systemd_listeners()
    api = passed.api
    if not api:
        api = [
            unix_listener(
                config.api.socket_path, mode=config.api.socket_mode, group=config.api.socket_group
            )
        ]
        stack.callback(lambda: config.api.socket_path.unlink(missing_ok=True))
    if config.api.tcp_port is not None:
        api.append(tcp_listener(config.api.tcp_port))
    metrics = passed.metrics
    address = config.metrics.address
    if not metrics and address is not None:
        metrics = [network_listener(*address, key="metrics.listen")]
    for sock in (*api, *metrics):
        stack.callback(sock.close)
    return Listeners(api, metrics)


def web_config(config: AgentConfig) -> WebConfig:
    """The metrics listener's TLS and basic auth; none without `metrics.web_config_file`."""
    path = config.metrics.web_config_file
    return WebConfig() if path is None else load_web_config(path)


def tcp_token(config: AgentConfig) -> bytes | None:
    """The bearer token TCP callers must send; an empty one would match a request without any."""
    if config.api.tcp_port is None:
        return None
    path = config.api.tcp_token_file
    if path is None:
        raise ConfigError("api.tcp_port needs api.tcp_token_file (a bearer token, mode 0600)")
    check_private_file(path, what="api.tcp_token_file")
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ConfigError(f"api.tcp_token_file {path} is empty; put a long random token in it")
    return token.encode()


async def _watchdog_ping() -> None:
    """A coroutine, so it runs on the event loop: a hung loop stops the pings and systemd
    restarts the agent (a plain function would ping from a worker thread regardless)."""
    sd_notify.watchdog()


def _look_at_clock(watch: ClockWatch) -> Job:
    async def look() -> None:
        watch.look()

    return look


async def _startup_sync(services: Services) -> None:
    """On start: re-send every `pending` row (its fate is unknown after a crash), then the
    delayed backlog at once rather than at the first interval, then a closing a stop cut short
    between its record and its slip (its reconciliation, then the slip)."""
    await services.sync.resend_unsent()
    await services.sync.run()
    await services.closings.finish_held()


def _server(app: LocalApiApp, config: AgentConfig) -> uvicorn.Server:
    """uvicorn driven step by step (startup, main loop, shutdown) on sockets we bound."""
    limits = ConnectionLimits(
        max_connections=effective_max_connections(config.api.max_connections),
        header_timeout_s=config.api.header_timeout_s,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=PeerCredentialsProtocol.with_limits(limits),
            lifespan="off",
            log_config=None,
            access_log=False,
            # Nothing stands in front of these listeners. uvicorn's default would take the
            # client from X-Forwarded-For for loopback callers: a TCP caller could name itself
            # a Unix socket peer, which needs no token (tests/e2e/test_tcp_listener.py).
            proxy_headers=False,
            timeout_graceful_shutdown=DRAIN_SECONDS,
        )
    )
    server.config.load()
    server.lifespan = server.config.lifespan_class(server.config)
    return server


def _metrics_server(services: Services, web: WebConfig) -> uvicorn.Server:
    """A second uvicorn server on the metrics listener, with TLS when the web config says."""
    auth = BasicAuth(web.basic_auth_users) if web.basic_auth_users else None
    server = uvicorn.Server(
        uvicorn.Config(
            MetricsOnlyApp(services.scrape, auth),
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,  # as the local API's: the connection says who calls
            limit_concurrency=16,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=DRAIN_SECONDS,
        )
    )
    server.config.load()
    tls = web.tls_server_config
    # Set after load(): uvicorn builds its own context from file names only and cannot say
    # minimum version or client certificates the way the web config does.
    server.config.ssl = (
        server_context(tls, where="metrics.web_config_file") if tls is not None else None
    )
    server.lifespan = server.config.lifespan_class(server.config)
    return server


def _storage_guarded(services: Services, job: Job) -> Job:
    """A background run the storage refused counts in `status` like a refused receipt, and is
    one warning line (the guard's), not a traceback every tick; the next tick tries again."""
    health = services.runtime.storage

    async def run() -> None:
        with contextlib.suppress(StorageUnavailable), health.guard(writes=False):
            await job()

    return run


def _auto_close(services: Services) -> Job:
    async def run() -> None:
        answer = await services.closings.auto_close()
        if answer is not None and answer.created:
            log.info("daily closing Z %s made at closing.auto_at", answer.body.number)

    return run


def _maintenance(services: Services) -> Job:
    """Journal check, dictionary, packing and archiving slices (core/maintenance.py) off the
    event loop."""
    rt = services.runtime

    async def run() -> None:
        done = await asyncio.to_thread(run_maintenance, rt.config, rt.clock())
        if done.archived is not None:
            log.info(
                "archived %s document(s) of %s to %s",
                done.archived.documents,
                done.archived.month,
                done.archived.file,
            )
        _log_learned(done.learned)
        if not done.journal.ok:
            log.error("journal check failed at entry %s", done.journal.first_bad_seq)
        if done.print_jobs is not None and done.print_jobs.rows:
            log.info(
                "compacted %s print job(s) written before the upgrade: %s kB freed "
                "(%.1f MB in all%s)",
                done.print_jobs.rows,
                done.print_jobs.freed_bytes // 1024,
                done.print_jobs.total_freed_bytes / 1e6,
                ", done" if done.print_jobs.done else "",
            )

    return run


def _first_dictionary(services: Services) -> Job:
    """A new register's packing dictionaries, learned seconds after its first receipts
    (core/maintenance.py `FirstDictionary`): the look is two index reads on the loop, the
    learning off it."""
    rt = services.runtime
    first = FirstDictionary(rt.config, rt.conn)

    async def run() -> None:
        if not first.due():
            return
        _log_learned(await asyncio.to_thread(first.learn, rt.clock()))

    return run


def _log_learned(learned: store.LearnedDictionary | None) -> None:
    if learned is not None:
        log.info(
            "learned packing dictionary %s from %s receipt(s) (%s bytes)",
            learned.id,
            learned.documents,
            learned.bytes,
        )


def _schedule(config: AgentConfig, services: Services, jobs: BackgroundJobs) -> None:
    """The backlog sync, the provider probe and, under systemd, the watchdog ping, ticked on the
    monotonic clock (a wall-clock step must not stop the watchdog pings or the sync)."""
    sync, probe = services.sync.run, services.sync.probe_and_sync
    jobs.every(
        "sync",
        config.sync.interval_s,
        _storage_guarded(services, sync),
        jitter_s=config.sync.jitter_s,
    )
    jobs.every("probe", config.sync.probe_interval_s, _storage_guarded(services, probe))
    jobs.every("clock", CLOCK_LOOK_S, _look_at_clock(services.runtime.clock_watch))
    jobs.every(
        "maintenance",
        config.retention.maintenance_interval_s,
        _storage_guarded(services, _maintenance(services)),
    )
    jobs.every(
        "first dictionary",
        FIRST_DICTIONARY_LOOK_S,
        _storage_guarded(services, _first_dictionary(services)),
    )
    if config.closing.auto_at is not None:
        jobs.every(
            "closing", AUTO_CLOSING_LOOK_S, _storage_guarded(services, _auto_close(services))
        )
    if config.terminal.food_service and config.closing.open_orders_check_s > 0:
        check = services.reconcile.check_open_orders
        jobs.every(
            "open orders", config.closing.open_orders_check_s, _storage_guarded(services, check)
        )
    watchdog = sd_notify.watchdog_interval()
    if watchdog:
        jobs.every("watchdog", watchdog / 2, _watchdog_ping)


async def serve(config: AgentConfig) -> int:
    api_key = config.api_key()
    token = tcp_token(config)
    web = web_config(config)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        stack.enter_context(single_instance_lock(config.state_dir))
        upgraded = bring_up_to_date(config.database_path)
        if upgraded is not None:
            log.info("%s", describe(config.database_path, upgraded))
        conn = store.open_database(
            config.database_path, busy_timeout_ms=store.DAEMON_BUSY_TIMEOUT_MS
        )
        stack.callback(store.close_database, conn)
        client = EliseClient(config.provider, issuer_vat=config.issuer.vat, api_key=api_key)
        runtime = Runtime(
            config=config,
            api_key=api_key,
            conn=conn,
            client=client,
            metrics=Metrics(register_labels(config)),
        )
        runtime.rollback_guard.check()
        stack.callback(runtime.rollback_guard.close)
        printer = open_printer(config, runtime.clock, runtime.storage.note_failure)
        runtime.printer.connect(printer.notify, printer.print_slip)
        services = Services(runtime, printer_state=printer.state)
        printer.start()
        listeners = _listeners(config, stack)
        servers = [(_server(create_app(services, token), config), listeners.api)]
        if listeners.metrics:
            servers.append((_metrics_server(services, web), listeners.metrics))
        jobs = BackgroundJobs()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        RateLimitedLoopErrors(time.monotonic).install(loop)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

        for server, sockets in servers:
            await server.startup(sockets=sockets)
        _schedule(config, services, jobs)
        jobs.start("startup sync", _storage_guarded(services, lambda: _startup_sync(services)))
        jobs.start("maintenance", _storage_guarded(services, _maintenance(services)))
        sd_notify.ready()
        sd_notify.status(f"serving on {config.api.socket_path}")
        log.info("pos-agent ready (pid %s)", os.getpid())
        serving = [asyncio.create_task(server.main_loop()) for server, _ in servers]
        await stop.wait()
        sd_notify.stopping()
        log.info("stopping: draining requests")
        for server, _ in servers:
            server.should_exit = True
        await asyncio.gather(*serving)
        for server, sockets in servers:
            await server.shutdown(sockets=sockets)
        await jobs.stop()
        printer.stop()
        await client.aclose()
        log.info("stopped")
    return 0


def run_command(args: argparse.Namespace) -> int:
    configure_logging(verbose=args.verbose, stream=sys.stderr)
    try:
        config = load_config(args.config)
        return asyncio.run(serve(config))
    except (
        ConfigError,
        CredentialError,
        AlreadyRunning,
        ListenerError,
        store.StoreError,
    ) as exc:
        log.error("%s", exc)
        return 2


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run", help="run the daemon")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--verbose", action="store_true")
    parser.set_defaults(handler=run_command)
