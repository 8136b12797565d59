"""`pos-agent status`: one screen for the field technician, and a Nagios-style exit code.

The daemon is asked over its Unix socket (`GET /v1/status`). When it does not answer, the
database is read read-only (`status_report.offline_report`) and the screen says in its first line
that the daemon is down. `--json` prints the report itself for scripts and monitoring.

Exit codes: 0 OK, 1 WARN, 2 CRITICAL, 3 UNKNOWN (config or database unreadable, socket closed to
us). The helpers here (config default, socket client, colour) are shared by the other CLI
commands (`doctor`, `sync`, `reprint`).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

import offline_store as store
from agent import __version__
from agent.clock import ATHENS, athens_now
from agent.config import AgentConfig, ConfigError, load_config
from agent.status_report import CRITICAL, LEVEL_NAMES, OK, UNKNOWN, WARN, offline_report, verdict

DEFAULT_CONFIG = Path("/etc/pos-agent/pos-agent.toml")
CONFIG_ENV = "POS_AGENT_CONFIG"
STATUS_TIMEOUT_S = 5.0


# -- shared by the CLI commands --------------------------------------------------------------------


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"config file (default: ${CONFIG_ENV} or {DEFAULT_CONFIG})",
    )


def config_path(args: argparse.Namespace) -> Path:
    return args.config or default_config_path()


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
    if not socket_path.exists():
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
            raise DaemonUnreachable(
                f"permission denied on {socket_path}: run as root or as a member of the "
                "socket's group (pos)",
                permission=True,
            ) from exc
        raise DaemonUnreachable(
            f"nothing answers on {socket_path} ({exc or type(exc).__name__})"
        ) from exc


def use_colour(stream: TextIO) -> bool:
    """ANSI colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_COLOURS = {OK: "32", WARN: "33", CRITICAL: "31", UNKNOWN: "35"}


def paint(text: str, level: int, colour: bool, *, bold: bool = False) -> str:
    if not colour:
        return text
    code = _COLOURS.get(level, "0")
    return f"\033[{'1;' if bold else ''}{code}m{text}\033[0m"


def level_of_finding(text: str) -> int:
    for level, name in LEVEL_NAMES.items():
        if text.startswith(name + ":"):
            return level
    return OK


# -- the report --------------------------------------------------------------------------------


def collect_report(config: AgentConfig, now: datetime | None = None) -> dict[str, Any]:
    """The daemon's own report, or the database's figures with the daemon marked down."""
    socket_path = config.api.socket_path
    problem: DaemonUnreachable | None = None
    try:
        response = call_daemon(socket_path, "GET", "/v1/status")
        if response.status_code == 200:
            report = response.json()
            report["source"] = "daemon"
            return report
        problem = DaemonUnreachable(
            f"the daemon answered HTTP {response.status_code} on /v1/status"
        )
    except DaemonUnreachable as exc:
        problem = exc
    except ValueError:
        problem = DaemonUnreachable("the daemon's status answer is not JSON")
    return _report_without_daemon(config, problem, now or athens_now())


def _report_without_daemon(
    config: AgentConfig, problem: DaemonUnreachable, now: datetime
) -> dict[str, Any]:
    database_error: str | None = None
    try:
        report = offline_report(config, now)
    except store.DatabaseDamaged as exc:
        database_error = str(exc)
    except (sqlite3.Error, OSError) as exc:
        database_error = f"cannot read {config.database_path}: {exc}"
    if database_error is not None:
        report = {
            "version": __version__,
            "generated_at": now.isoformat(),
            "daemon": {"running": False},
            "store_error": database_error,
        }
    elif "store" not in report:
        report["store_error"] = f"no database at {config.database_path}"
        database_error = report["store_error"]
    report["source"] = "database" if "store" in report else "none"
    report["daemon"]["reason"] = problem.reason
    if problem.permission:
        report["daemon"]["running"] = None
        report["daemon"]["note"] = "daemon state unknown: the socket is closed to this user"
    level, findings = verdict(report, config)
    if problem.permission:
        findings = [f for f in findings if "daemon is not running" not in f]
        findings.insert(0, f"UNKNOWN: {problem.reason}")
        level = max([UNKNOWN, *(level_of_finding(f) for f in findings)])
    if database_error is not None:
        findings = [f for f in findings if "database could not be read" not in f]
        findings.append(f"UNKNOWN: {database_error}")
        level = UNKNOWN
    report["level"] = LEVEL_NAMES[level]
    report["exit_code"] = level
    report["findings"] = findings
    return report


def report_exit_code(report: dict[str, Any]) -> int:
    code = report.get("exit_code")
    return code if code in LEVEL_NAMES else UNKNOWN


# -- the screen --------------------------------------------------------------------------------


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=ATHENS)


def _clock_time(moment: datetime | None) -> str:
    return moment.astimezone(ATHENS).strftime("%Y-%m-%d %H:%M:%S") if moment else "never"


def duration(seconds: float) -> str:
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _ago(value: str | None, now: datetime) -> str:
    moment = _when(value)
    if moment is None:
        return "never"
    return f"{_clock_time(moment)} ({duration((now - moment).total_seconds())} ago)"


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"


def render(report: dict[str, Any], config: AgentConfig, *, colour: bool) -> str:
    now = _when(report.get("generated_at")) or athens_now()
    level = report_exit_code(report)
    lines: list[str] = []
    title = f"pos-agent status: {LEVEL_NAMES[level]}"
    lines.append(
        paint(title, level, colour, bold=True) + f"   ({_clock_time(now)} Athens, exit {level})"
    )
    daemon = report.get("daemon", {})
    if daemon.get("running"):
        uptime = duration(daemon.get("uptime_s", 0))
        started = _clock_time(_when(daemon.get("started_at")))
        row = f"up, version {report.get('version', '?')}, pid {daemon.get('pid', '?')}, uptime {uptime} (since {started})"
        lines.append(_row("Daemon", row))
    else:
        state = "UNKNOWN" if daemon.get("running") is None else "DOWN"
        lines.append(
            _row(
                "Daemon",
                paint(
                    f"{state}: {daemon.get('reason', 'not reachable')}",
                    CRITICAL if state == "DOWN" else UNKNOWN,
                    colour,
                    bold=True,
                ),
            )
        )
        if report.get("source") == "database":
            lines.append(_row("", "figures below are read from the database directly (read-only)"))
    provider = report.get("provider")
    if provider:
        breaker = provider.get("breaker", "?")
        if breaker == "closed":
            reach = "reachable"
        else:
            reach = paint(
                f"OFFLINE, receipts issued offline: {provider.get('last_failure') or '?'}",
                WARN,
                colour,
            )
        lines.append(_row("Provider", f"{provider.get('base_url', '?')}: {reach}"))
        lines.append(
            _row(
                "",
                f"breaker {breaker}; last success {_ago(provider.get('last_success_at'), now)}",
            )
        )
        lines.append(_row("", f"last sync {_ago(provider.get('last_sync_at'), now)}"))
        alarm = provider.get("credential_alarm")
        lines.append(
            _row(
                "Credentials",
                paint(f"REFUSED by the provider (401): {alarm}", CRITICAL, colour)
                if alarm
                else "accepted (no 401 since start)",
            )
        )
    else:
        lines.append(_row("Provider", "unknown (only the daemon knows)"))
    stored = report.get("store")
    if stored is not None:
        backlog = stored["backlog"]
        by_code = backlog.get("by_code", {})
        lines.append(
            _row(
                "Backlog",
                f"{backlog['delayed']} delayed (code 1 provider: {by_code.get('1', 0)}, "
                f"code 2 AADE: {by_code.get('2', 0)}), {backlog['pending']} pending, "
                f"{backlog.get('overdue', 0)} overdue",
            )
        )
        oldest = backlog.get("oldest")
        if oldest:
            left = oldest.get("hours_left")
            left_text = "no deadline recorded"
            oldest_level = OK
            if left is not None:
                if left <= 0:
                    left_text = f"PAST DEADLINE by {duration(-left * 3600)}"
                    oldest_level = CRITICAL
                else:
                    left_text = f"{duration(left * 3600)} left"
                    if left <= config.sync.deadline_critical_hours:
                        oldest_level = CRITICAL
                    elif left <= config.sync.deadline_warning_hours:
                        oldest_level = WARN
            due = _clock_time(_when(oldest.get("due_at")))
            lines.append(
                _row(
                    "Oldest",
                    f"receipt {oldest['receipt_id']}, {duration(oldest.get('age_s', 0))} old; "
                    f"deadline {due}: " + paint(left_text, oldest_level, colour),
                )
            )
        rejected = stored.get("rejected", 0)
        lines.append(
            _row(
                "Rejected",
                paint(
                    f"{rejected} need a person (pos-agent status --json; provider portal)",
                    CRITICAL,
                    colour,
                )
                if rejected
                else "0",
            )
        )
        if stored.get("mark_unknown"):
            lines.append(_row("", f"{stored['mark_unknown']} accepted without a known MARK yet"))
    else:
        lines.append(
            _row(
                "Backlog",
                paint(report.get("store_error", "database not readable"), UNKNOWN, colour),
            )
        )
    printer = report.get("printer")
    if printer:
        if not printer.get("enabled", True):
            lines.append(_row("Printer", "disabled in the config"))
        else:
            lines.append(
                _row(
                    "Printer",
                    f"{printer.get('backend', '?')}, state {printer.get('state', '?')}; "
                    f"{printer.get('queued', 0)} queued, {printer.get('failed', 0)} failed, "
                    f"{printer.get('printed', 0)} printed",
                )
            )
    elif stored is not None:
        queue = stored.get("print_queue", {})
        lines.append(
            _row(
                "Printer",
                f"state unknown (daemon down); {queue.get('queued', 0) + queue.get('printing', 0)} "
                f"queued, {queue.get('failed', 0)} failed, {queue.get('printed', 0)} printed",
            )
        )
    clock = report.get("clock")
    if clock:
        offset = clock.get("offset_s")
        if offset is None:
            lines.append(_row("Clock", "offset unknown (no answer from the provider yet)"))
        else:
            limit = config.clock.max_offset_s
            text = f"{offset:+.1f} s vs the provider's Date header (limit ±{limit:g} s)"
            lines.append(_row("Clock", paint(text, WARN, colour) if abs(offset) > limit else text))
    if stored is not None:
        db = stored["database"]
        checked = _clock_time(_when(db.get("integrity_checked_at")))
        journal = (
            f"journal ok ({db.get('journal_entries', 0)} entries)"
            if db.get("journal_ok")
            else paint("JOURNAL CHAIN BROKEN", CRITICAL, colour)
        )
        lines.append(_row("Database", f"{db['path']}, {_size(db.get('size_bytes'))}"))
        lines.append(
            _row(
                "", f"integrity {db.get('integrity') or 'never checked'} (at {checked}); {journal}"
            )
        )
    lines.append("")
    lines.append("Findings:")
    for finding in report.get("findings", []):
        lines.append("  " + paint(finding, level_of_finding(finding), colour))
    return "\n".join(lines)


def _row(label: str, text: str) -> str:
    return f"{label:<12}{text}"


# -- the command -------------------------------------------------------------------------------


def status_command(args: argparse.Namespace) -> int:
    path = config_path(args)
    try:
        config = load_config(path)
    except ConfigError as exc:
        return _unknown(args, f"config unreadable: {exc}")
    if args.socket is not None:
        config = config.model_copy(
            update={"api": config.api.model_copy(update={"socket_path": args.socket})}
        )
    report = collect_report(config)
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(render(report, config, colour=use_colour(sys.stdout)))
    return report_exit_code(report)


def _unknown(args: argparse.Namespace, message: str) -> int:
    if args.json:
        body = {"level": "UNKNOWN", "exit_code": UNKNOWN, "findings": [f"UNKNOWN: {message}"]}
        json.dump(body, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        colour = use_colour(sys.stdout)
        print(
            paint("pos-agent status: UNKNOWN", UNKNOWN, colour, bold=True) + f"   (exit {UNKNOWN})"
        )
        print(f"  {message}")
    return UNKNOWN


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "status",
        help="the technician's one-screen report (exit 0 OK, 1 WARN, 2 CRITICAL, 3 UNKNOWN)",
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--socket", type=Path, default=None, help="daemon socket (default: api.socket_path)"
    )
    parser.set_defaults(handler=status_command)
