"""What the technician's commands share: the config argument, calling the daemon, colour.

Every command talks to the running daemon over its Unix socket, the same way the POS does; none
of them writes the database, which only the daemon owns.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TextIO

import httpx

from agent.config import AgentConfig
from agent.core.status_report import Level

DEFAULT_CONFIG = Path("/etc/pos-agent/pos-agent.toml")
CONFIG_ENV = "POS_AGENT_CONFIG"
STATUS_TIMEOUT_S = 5.0


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"config file (default: ${CONFIG_ENV} or {DEFAULT_CONFIG})",
    )


def add_socket_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", type=Path, default=None, help="daemon socket")


def config_path(args: argparse.Namespace) -> Path:
    return args.config or default_config_path()


def with_socket(config: AgentConfig, socket_path: Path | None) -> AgentConfig:
    """`--socket` replaces api.socket_path for this one command."""
    if socket_path is None:
        return config
    api = config.api.model_copy(update={"socket_path": socket_path})
    return config.model_copy(update={"api": api})


class DaemonUnreachable(Exception):
    """Nothing answers on the socket (or we may not use it); `reason` says which."""

    def __init__(self, reason: str, *, permission: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permission = permission


def daemon_client(socket_path: Path, timeout_s: float) -> httpx.Client:
    transport = httpx.HTTPTransport(uds=str(socket_path))
    return httpx.Client(
        transport=transport,
        base_url="http://pos-agent",
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
        trust_env=False,
    )


def call_daemon(
    socket_path: Path,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    timeout_s: float = STATUS_TIMEOUT_S,
) -> httpx.Response:
    """One request to the daemon; any failure to get an HTTP answer is `DaemonUnreachable`."""
    try:
        present = socket_path.exists()
    except PermissionError:  # its directory (/run/pos-agent, 2750 pos-agent:pos) is closed to us
        raise DaemonUnreachable(_closed(socket_path), permission=True) from None
    if not present:
        raise DaemonUnreachable(f"no socket at {socket_path}")
    headers = {"content-type": "application/json"} if body is not None else {}
    try:
        with daemon_client(socket_path, timeout_s) as client:
            return client.request(method, path, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise DaemonUnreachable(
            f"the daemon did not answer on {socket_path} within {timeout_s:g} s ({type(exc).__name__})"
        ) from exc
    except httpx.TransportError as exc:
        cause = exc.__context__ or exc.__cause__
        if isinstance(cause, PermissionError) or "Permission denied" in str(exc):
            raise DaemonUnreachable(_closed(socket_path), permission=True) from exc
        raise DaemonUnreachable(
            f"nothing answers on {socket_path} ({exc or type(exc).__name__})"
        ) from exc


def _closed(socket_path: Path) -> str:
    return (
        f"permission denied on {socket_path}: run as root or as a member of the socket's "
        "group (pos)"
    )


def use_colour(stream: TextIO) -> bool:
    """ANSI colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_COLOURS = {Level.OK: "32", Level.WARN: "33", Level.CRITICAL: "31", Level.UNKNOWN: "35"}


def paint(text: str, level: Level, colour: bool, *, bold: bool = False) -> str:
    if not colour:
        return text
    code = _COLOURS.get(level, "0")
    return f"\033[{'1;' if bold else ''}{code}m{text}\033[0m"
