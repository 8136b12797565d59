"""`pos-agent run`: one asyncio process serving the local API, syncing and printing.

Start order: credentials → state dir + single-instance lock → database (quick_check) → provider
client → printer worker → API listeners → background ticks (sync, probe, watchdog) → READY.
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
from contextlib import ExitStack
from pathlib import Path

import uvicorn

import offline_store as store
from agent.api.app import create_app
from agent.api.listeners import (
    AlreadyRunning,
    ListenerError,
    single_instance_lock,
    systemd_listeners,
    tcp_listener,
    unix_listener,
)
from agent.api.peer_protocol import PeerCredentialsProtocol
from agent.api.routing import LocalApiApp
from agent.config import AgentConfig, ConfigError, load_config
from agent.core.clock_watch import ClockWatch
from agent.core.errors import StorageUnavailable
from agent.core.maintenance import run_maintenance
from agent.core.runtime import Runtime
from agent.core.services import Services
from agent.daemon import sd_notify
from agent.daemon.background_jobs import BackgroundJobs, Job
from agent.daemon.printing import open_printer
from agent.elise.client import EliseClient
from agent.secrets import CredentialError, check_private_file

log = logging.getLogger("pos_agent.daemon")
DRAIN_SECONDS = 8
# How often the daemon compares its wall clock with its monotonic clock (core/clock_watch.py).
CLOCK_LOOK_S = 5.0


def _listeners(config: AgentConfig, stack: ExitStack) -> list[socket.socket]:
    sockets = systemd_listeners()
    if not sockets:
        sockets = [
            unix_listener(
                config.api.socket_path, mode=config.api.socket_mode, group=config.api.socket_group
            )
        ]
        stack.callback(lambda: config.api.socket_path.unlink(missing_ok=True))
    if config.api.tcp_port is not None:
        sockets.append(tcp_listener(config.api.tcp_port))
    for sock in sockets:
        stack.callback(sock.close)
    return sockets


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
    delayed backlog at once rather than at the first interval."""
    await services.sync.resend_unsent()
    await services.sync.run()


def _server(app: LocalApiApp) -> uvicorn.Server:
    """uvicorn driven step by step (startup, main loop, shutdown) on sockets we bound."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=PeerCredentialsProtocol,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=DRAIN_SECONDS,
        )
    )
    server.config.load()
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


def _maintenance(services: Services) -> Job:
    """Journal check, packing and archiving slices (core/maintenance.py) off the event loop."""
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
        if not done.journal.ok:
            log.error("journal check failed at entry %s", done.journal.first_bad_seq)

    return run


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
    watchdog = sd_notify.watchdog_interval()
    if watchdog:
        jobs.every("watchdog", watchdog / 2, _watchdog_ping)


async def serve(config: AgentConfig) -> int:
    api_key = config.api_key()
    token = tcp_token(config)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        stack.enter_context(single_instance_lock(config.state_dir))
        conn = store.open_database(config.database_path)
        stack.callback(store.close_database, conn)
        client = EliseClient(config.provider, issuer_vat=config.issuer.vat, api_key=api_key)
        runtime = Runtime(config=config, api_key=api_key, conn=conn, client=client)
        printer = open_printer(config, runtime.clock)
        runtime.wake_printer.append(printer.notify)
        services = Services(runtime, printer_state=printer.state)
        printer.start()
        sockets = _listeners(config, stack)
        server = _server(create_app(services, token))
        jobs = BackgroundJobs()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

        await server.startup(sockets=sockets)
        _schedule(config, services, jobs)
        jobs.start("startup sync", _storage_guarded(services, lambda: _startup_sync(services)))
        jobs.start("maintenance", _storage_guarded(services, _maintenance(services)))
        sd_notify.ready()
        sd_notify.status(f"serving on {config.api.socket_path}")
        log.info("pos-agent ready (pid %s)", os.getpid())
        serving = asyncio.create_task(server.main_loop())
        await stop.wait()
        sd_notify.stopping()
        log.info("stopping: draining requests")
        server.should_exit = True
        await serving
        await server.shutdown(sockets=sockets)
        await jobs.stop()
        printer.stop()
        await client.aclose()
        log.info("stopped")
    return 0


def run_command(args: argparse.Namespace) -> int:
    # force: python-escpos calls logging.basicConfig() when imported (escpos/capabilities.py),
    # which would leave ours a no-op - no INFO lines, no timestamps in the daemon's log.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
        return asyncio.run(serve(config))
    except (
        ConfigError,
        CredentialError,
        AlreadyRunning,
        ListenerError,
        store.DatabaseDamaged,
    ) as exc:
        log.error("%s", exc)
        return 2


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run", help="run the daemon")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--verbose", action="store_true")
    parser.set_defaults(handler=run_command)
