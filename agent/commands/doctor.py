"""`pos-agent doctor`: check the installation one item at a time, each with a fix hint.

Every check prints one line, `[ OK ]`, `[WARN]` or `[FAIL]`, then the name, what was found, and
what to do. Nothing is changed, nothing fiscal is sent: the provider check is the daemon's own
harmless probe (`/PosTransactions/validate` with an input nobody signed), and the printer only
prints with `--print-test`. Exit 0 all OK, 1 warnings, 2 failures.
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import os
import pwd
import sqlite3
import stat
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import offline_store as store
from agent.clock import ATHENS
from agent.commands.checks import Check, fail, ok, warn, whoami
from agent.commands.common import (
    DaemonUnreachable,
    add_config_argument,
    call_daemon,
    config_path,
    paint,
    use_colour,
)
from agent.commands.doctor_printer import check_printer
from agent.config import AgentConfig, ConfigError, load_config
from agent.core.day_findings import last_reconciliation, mark_unknown_finding, unheld_finding
from agent.core.held_returns import stranded_finding, stranded_returns
from agent.core.status_report import (
    ROLLBACK_PROCEDURE,
    Level,
    footer_findings,
    rolled_back,
    storage_findings,
    storage_section,
)
from agent.secrets import CREDENTIAL_NAME, ApiKey, CredentialError, check_private_file
from agent.web_config import WebConfig, load_web_config
from offline_store.database import damage_message

SYSTEMD_CREDENTIAL_SOURCE = Path("/etc/pos-agent") / CREDENTIAL_NAME


def _owner(st: os.stat_result) -> str:
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{user}:{group}"


# -- the checks ---------------------------------------------------------------------------------


def check_credentials(config: AgentConfig) -> tuple[Check, ApiKey | None]:
    name = "credentials"
    credentials_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    systemd_credential = Path(credentials_dir) / CREDENTIAL_NAME if credentials_dir else None
    if systemd_credential is not None and systemd_credential.exists():
        candidate = systemd_credential
        source = f"systemd credential {candidate}"
    elif config.provider.api_key_file is not None:
        candidate = config.provider.api_key_file
        source = f"provider.api_key_file {candidate}"
    elif SYSTEMD_CREDENTIAL_SOURCE.exists():
        candidate = SYSTEMD_CREDENTIAL_SOURCE
        source = f"LoadCredential source {candidate}"
    else:
        return (
            fail(
                name,
                "no API key: provider.api_key_file is not set and no systemd credential "
                f"'{CREDENTIAL_NAME}' is present",
                f"put the key in {SYSTEMD_CREDENTIAL_SOURCE} (chmod 600) for LoadCredential=, "
                "or set provider.api_key_file",
            ),
            None,
        )
    try:
        check_private_file(candidate)
        st = candidate.stat()
        key = ApiKey(candidate.read_text(encoding="utf-8"))
    except CredentialError as exc:
        return fail(name, str(exc), f"chmod 600 {candidate}; chown it to the service user"), None
    except PermissionError:
        return (
            warn(
                name,
                f"{source}: cannot be read by {whoami()} (mode is private, good)",
                "run doctor as root or as the service user (sudo pos-agent doctor) to check "
                "the key and the provider login",
            ),
            None,
        )
    parent = candidate.parent.stat()
    if parent.st_mode & stat.S_IWOTH:
        return (
            fail(
                name, f"{candidate.parent} is writable by everyone", f"chmod o-w {candidate.parent}"
            ),
            key,
        )
    return ok(name, f"{source}: mode {stat.S_IMODE(st.st_mode):04o}, owner {_owner(st)}"), key


def check_footer(config: AgentConfig) -> Check:
    """The same rule as status: a receipt without the provider footer is not compliant."""
    footer = config.provider.footer
    if footer_findings(config):
        return fail(
            "provider footer",
            "; ".join(footer.problems()),
            "fill [provider.footer] legal_name, web_address and licence with what the provider "
            "gives at onboarding (Α.1112/2025 art. 7 par. 5), then restart the agent",
        )
    return ok("provider footer", " / ".join(footer.lines()))


def check_socket(config: AgentConfig) -> Check:
    name = "socket"
    path = config.api.socket_path
    try:
        st = path.stat()
    except FileNotFoundError:
        return fail(
            name,
            f"{path} does not exist: the daemon is not running and socket activation is off",
            "systemctl enable --now pos-agent.socket pos-agent.service; then "
            "journalctl -u pos-agent",
        )
    except PermissionError:
        return warn(
            name,
            f"{path}: its directory is closed to {whoami()}",
            "run doctor as root, or add the POS user to group pos",
        )
    if not stat.S_ISSOCK(st.st_mode):
        return fail(name, f"{path} exists but is not a socket", f"remove {path} and restart")
    mode = stat.S_IMODE(st.st_mode)
    problems: list[str] = []
    if mode & 0o007:
        problems.append(f"mode {mode:04o} lets every local user issue receipts")
    expected_group = config.api.socket_group
    if expected_group:
        try:
            gid = grp.getgrnam(expected_group).gr_gid
        except KeyError:
            problems.append(f"group {expected_group!r} does not exist")
        else:
            if st.st_gid != gid:
                problems.append(f"group is {_owner(st).split(':')[1]}, not {expected_group}")
    detail = f"{path}: mode {mode:04o}, owner {_owner(st)}"
    if problems:
        return fail(
            name,
            detail + "; " + "; ".join(problems),
            f"set SocketMode=0660 SocketGroup={expected_group or 'pos'} (pos-agent.socket) or "
            "api.socket_mode/socket_group, then restart",
        )
    try:
        response = call_daemon(path, "GET", "/v1/health", timeout_s=3.0)
    except DaemonUnreachable as exc:
        if exc.permission:
            return warn(
                name,
                detail + f"; {whoami()} may not connect",
                "fine if the POS user is in the socket's group; run doctor as root to test it",
            )
        return fail(
            name,
            detail + f"; nobody answers: {exc.reason}",
            "systemctl restart pos-agent; journalctl -u pos-agent -n 50",
        )
    if response.status_code != 200:
        return fail(
            name,
            detail + f"; the daemon answered HTTP {response.status_code}",
            "journalctl -u pos-agent -n 50",
        )
    health = response.json()
    return ok(name, detail + f"; daemon {health.get('version', '?')} answers")


def check_state_dir(config: AgentConfig) -> Check:
    name = "state directory"
    path = config.state_dir
    try:
        st = path.stat()
    except FileNotFoundError:
        return fail(
            name,
            f"{path} does not exist",
            "systemd creates it (StateDirectory=pos-agent); start the service once, or mkdir "
            "it owned by the service user",
        )
    except PermissionError:
        return warn(name, f"{path} cannot be examined by {whoami()}", "run doctor as root")
    if not stat.S_ISDIR(st.st_mode):
        return fail(name, f"{path} is not a directory", "point state_dir at a directory")
    detail = f"{path}: mode {stat.S_IMODE(st.st_mode):04o}, owner {_owner(st)}"
    if st.st_mode & stat.S_IWOTH:
        return fail(name, detail + ", writable by everyone", f"chmod 0750 {path}")
    if os.access(path, os.W_OK | os.X_OK):
        return ok(name, detail + f", writable by {whoami()}")
    if st.st_uid != os.geteuid():
        return warn(
            name,
            detail + f", not writable by {whoami()}",
            "fine if the daemon runs as the owner; run doctor as that user to be sure",
        )
    return fail(name, detail + ", not writable by its owner", f"chmod u+rwx {path}")


def check_storage(config: AgentConfig) -> Check:
    """Free space and inodes on the state filesystem, by the same rule `status` uses."""
    name = "storage"
    storage = storage_section(config.state_dir)
    if storage.free_bytes is None:
        return warn(name, f"{config.state_dir} cannot be examined", "run doctor as root")
    detail = (
        f"{storage.free_bytes // (1024 * 1024)} MiB and {storage.free_inodes} inodes free on "
        f"{config.state_dir}"
    )
    findings = storage_findings(storage, config.database_path)
    if not findings:
        return ok(name, detail)
    level = max(found for found, _ in findings)
    hint = "; ".join(text for _, text in findings)
    return (fail if level >= Level.CRITICAL else warn)(name, detail, hint)


def check_database(config: AgentConfig) -> Check:
    name = "database"
    path = config.database_path
    if not path.exists():
        return warn(
            name,
            f"{path} does not exist yet",
            "it is created on the daemon's first start; if receipts were issued here, "
            "look for a moved or deleted state directory",
        )
    try:
        conn = store.open_database(path, read_only=True)
    except store.DatabaseDamaged as exc:
        return fail(name, "damaged", str(exc))
    except store.SchemaTooNew as exc:
        return fail(name, "written by a newer pos-agent", str(exc))
    except (sqlite3.Error, OSError) as exc:
        if isinstance(exc, PermissionError) or "unable to open" in str(exc):
            return warn(name, f"{path} cannot be read by {whoami()}", "run doctor as root")
        return fail(name, f"{path}: {exc}", "journalctl -u pos-agent; contact support")
    try:
        result = "; ".join(str(row[0]) for row in conn.execute("PRAGMA quick_check"))
        last = store.last_integrity_check(conn)
        journal = store.verify_history(conn, config.archive_dir)
        behind = rolled_back(conn, config.state_dir)
        altered = store.altered_payloads(conn, states=None, archive_dir=config.archive_dir)
        unknown = store.mark_unknown_ids(conn)
        unknown_count = store.backlog_summary(conn, datetime.now(ATHENS)).mark_unknown
        stranded = stranded_returns(conn)
    except sqlite3.DatabaseError as exc:
        return fail(name, f"{path}: {exc}", damage_message(path, str(exc)))
    finally:
        conn.close()
    size = store.database_size_bytes(path)
    last_text = f"{last[1]} at {last[0].astimezone(ATHENS):%Y-%m-%d %H:%M}" if last else "never"
    detail = (
        f"{path}: quick_check {result}, last check at start {last_text}, "
        f"journal {'ok' if journal.ok else 'BROKEN: ' + str(journal.problem)} "
        f"({journal.journal_entries} entries, {journal.batches} archive batches), "
        f"{size / 1024:.0f} KiB"
    )
    if result != "ok":
        return fail(name, detail, damage_message(path, result))
    if not journal.ok:
        return fail(
            name,
            detail,
            "the hash chain of the journal does not verify: keep a copy of the file and contact "
            "support; do not delete it",
        )
    if behind is not None:
        return fail(name, f"{detail}; went back in time: {behind}", ROLLBACK_PROCEDURE)
    if altered:
        return fail(
            name,
            f"{detail}; payloads altered since frozen: receipt(s) "
            f"{', '.join(str(i) for i in altered)}",
            "unsent ones are never sent; keep a copy of the database, check dmesg for a failing "
            "SD card or eMMC, and contact support",
        )
    if any(held.why == "rejected" for held in stranded):
        return fail(name, detail, "; ".join(stranded_finding(held) for held in stranded))
    if stranded:
        return warn(name, detail, "; ".join(stranded_finding(held) for held in stranded))
    if unknown:
        return warn(name, detail, mark_unknown_finding(unknown_count, unknown))
    return ok(name, detail)


def check_open_orders(config: AgentConfig) -> list[Check]:
    """A food-service register: the order slips the provider held open and no table here held
    at the last look (`pos-agent reconcile`, or the hourly check); FAIL near or past the limit."""
    name = "provider orders"
    if not config.terminal.food_service or not config.database_path.exists():
        return []
    try:
        conn = store.open_database(config.database_path, read_only=True)
    except (store.StoreError, sqlite3.Error, OSError):
        return []  # the database check says why
    try:
        result = last_reconciliation(conn)
    finally:
        conn.close()
    if result is None or result.orders is None:
        return [ok(name, "not looked at yet (pos-agent reconcile)")]
    orders = result.orders
    at = (orders.checked_at or result.checked_at).astimezone(ATHENS)
    detail = (
        f"checked {at:%Y-%m-%d %H:%M}: {orders.provider_open} open at the provider, "
        f"{len(orders.unheld)} on no table here"
    )
    if orders.error is not None:
        return [
            warn(name, detail, f"the provider's open order slips were not read: {orders.error}")
        ]
    found = [unheld_finding(order, config.tables, datetime.now(ATHENS)) for order in orders.unheld]
    texts = [item.text for item in found] + orders.flagged
    if any(item.critical for item in found):
        return [fail(name, detail, "; ".join(texts))]
    if texts:
        return [warn(name, detail, "; ".join(texts))]
    return [ok(name, detail)]


async def _probe(config: AgentConfig, key: ApiKey) -> tuple[object, float | None]:
    from agent.elise.client import PROBE_INPUT, EliseClient

    client = EliseClient(config.provider, issuer_vat=config.issuer.vat, api_key=key)
    try:
        outcome = await client.validate_signature(PROBE_INPUT, "")
        return outcome, client.clock_offset_s
    finally:
        await client.aclose()


def check_provider(config: AgentConfig, key: ApiKey | None) -> list[Check]:
    from agent.elise.outcomes import Rejected, SignatureValidation, Unauthorized, Unreachable

    name = "provider"
    base = config.provider.base_url
    if key is None:
        return [
            warn(name, f"{base}: not checked (no readable API key)", "fix the credentials first"),
            warn(
                "clock", "not checked (needs an answer from the provider)", "fix the provider first"
            ),
        ]
    outcome, offset = asyncio.run(_probe(config, key))
    if isinstance(outcome, SignatureValidation | Rejected):
        provider = ok(
            name, f"{base}: reachable, credentials accepted ({config.provider.auth} auth)"
        )
    elif isinstance(outcome, Unauthorized):
        provider = fail(
            name,
            f"{base}: the provider refused the credentials (401): {outcome.message}",
            "check the API key and that it belongs to issuer.vat "
            f"{config.issuer.vat}; ask the provider for a new key if needed",
        )
    elif isinstance(outcome, Unreachable):
        provider = fail(
            name,
            f"{base}: unreachable: {outcome.reason}",
            "check the network, DNS and provider.base_url; receipts are issued offline "
            "meanwhile and must be sent by the end of the next day",
        )
    else:
        provider = warn(name, f"{base}: unexpected answer {type(outcome).__name__}", "retry later")
    limit = config.clock.max_offset_s
    if offset is None:
        clock = warn(
            "clock",
            "no Date header from the provider, offset unknown",
            "check that NTP runs: timedatectl status",
        )
    elif abs(offset) > limit:
        clock = fail(
            "clock",
            f"system clock is {abs(offset):.0f} s {'behind' if offset > 0 else 'ahead of'} the "
            f"provider (limit {limit:g} s)",
            "enable NTP: timedatectl set-ntp true; check with timedatectl status",
        )
    else:
        clock = ok("clock", f"offset {offset:+.1f} s vs the provider's Date (limit ±{limit:g} s)")
    return [provider, clock]


def check_metrics(config: AgentConfig) -> list[Check]:
    """The metrics-only listener's web config (a bad one stops the daemon at start); nothing
    when neither `metrics.listen` nor `metrics.web_config_file` is set."""
    metrics = config.metrics
    if metrics.listen is None and metrics.web_config_file is None:
        return []
    where = metrics.listen or "pos-agent-metrics.socket"
    try:
        web = load_web_config(metrics.web_config_file) if metrics.web_config_file else WebConfig()
    except ConfigError as exc:
        return [
            fail(
                "metrics",
                str(exc),
                "fix it (docs/monitoring.md); the agent does not start meanwhile",
            )
        ]
    tls = "TLS" if web.tls_server_config else "plain HTTP"
    users = len(web.basic_auth_users)
    detail = f"listener {where}: {tls}, basic auth {f'{users} user(s)' if users else 'off'}"
    address = metrics.address
    if (
        address is not None
        and not address[0].startswith("127.")
        and not (web.tls_server_config or users)
    ):
        return [
            warn(
                "metrics",
                detail,
                "anyone who reaches the port reads the register's figures: allow only the "
                "scraper (pos-agent-metrics.socket, IPAddressAllow=) or add a web config",
            )
        ]
    return [ok("metrics", detail)]


def run_checks(config: AgentConfig, *, print_test: bool) -> list[Check]:
    credentials, key = check_credentials(config)
    checks = [ok("config", "loads and validates"), credentials]
    steps: list[Callable[[], Check | list[Check]]] = [
        lambda: check_footer(config),
        lambda: check_socket(config),
        lambda: check_state_dir(config),
        lambda: check_storage(config),
        lambda: check_database(config),
        lambda: check_open_orders(config),
        lambda: check_provider(config, key),
        lambda: check_printer(config, print_test=print_test),
        lambda: check_metrics(config),
    ]
    for step in steps:
        result = step()
        checks.extend(result if isinstance(result, list) else [result])
    return checks


def doctor_command(args: argparse.Namespace) -> int:
    colour = use_colour(sys.stdout)
    path = config_path(args)
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(
            fail(
                "config", str(exc), f"fix the named key in {path} and run pos-agent doctor again"
            ).line(colour)
        )
        return Level.CRITICAL
    checks = run_checks(config, print_test=args.print_test)
    checks[0] = ok("config", f"{path} loads and validates")
    for check in checks:
        print(check.line(colour))
    worst = max(check.level for check in checks)
    failures = sum(1 for c in checks if c.level == Level.CRITICAL)
    warnings = sum(1 for c in checks if c.level == Level.WARN)
    summary = f"{len(checks)} checks: {failures} failed, {warnings} warnings"
    print(paint(summary, worst, colour, bold=True))
    return worst


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "doctor", help="check the installation, one line per check with a fix (exit 0/1/2)"
    )
    add_config_argument(parser)
    parser.add_argument(
        "--print-test", action="store_true", help="also print a short Greek test slip"
    )
    parser.set_defaults(handler=doctor_command)
