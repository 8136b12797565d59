"""`pos-agent sync` (send the backlog now), `pos-agent reprint ID` (a copy, «ΑΝΤΙΓΡΑΦΟ») and
`pos-agent rollback accept` (the newer database is lost for good: record its numbers as void).

Each asks the daemon over its socket; none touches the database, which only the daemon writes.

`sync` exit codes: 0 nothing is left waiting (delayed or pending), 1 something is (or a document
was rejected in this run and needs a person), 2 the daemon is down. `reprint`: 0 queued, 1 the
daemon refused (unknown receipt), 2 the daemon is down. Both: 3 the config cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

from pydantic import ValidationError

from agent.commands.common import (
    DaemonUnreachable,
    add_config_argument,
    add_socket_argument,
    call_daemon,
    config_path,
    paint,
    use_colour,
    with_socket,
)
from agent.config import AgentConfig, ConfigError, load_config
from agent.core.status_report import Backlog, Level, StatusReport
from agent.core.sync_report import SyncedDocument, SyncReport
from agent.json_codec import dumps

SYNC_TIMEOUT_S = 600.0
DOWN = 2


def _config(args: argparse.Namespace) -> AgentConfig | None:
    try:
        config = load_config(config_path(args))
    except ConfigError as exc:
        print(f"pos-agent {args.command}: {exc}", file=sys.stderr)
        return None
    return with_socket(config, args.socket)


def _daemon_down(command: str, exc: DaemonUnreachable) -> int:
    print(
        f"pos-agent {command}: the daemon is down or unreachable: {exc.reason}\n"
        "  check it with: systemctl status pos-agent ; pos-agent status",
        file=sys.stderr,
    )
    return DOWN


def _error_message(response: Any) -> str:
    try:
        error = response.json().get("error", {})
        return f"{error.get('code', 'error')}: {error.get('message', response.text)}"
    except ValueError:
        return response.text[:300]


def _backlog(config: AgentConfig) -> Backlog | None:
    response = call_daemon(config.api.socket_path, "GET", "/v1/status")
    if response.status_code != 200:
        return None
    try:
        stored = StatusReport.model_validate_json(response.content).store
    except ValidationError:
        return None
    return stored.backlog if stored is not None else None


def sync_command(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return int(Level.UNKNOWN)
    try:
        before = _backlog(config)
        if before is not None and not args.json:
            print(
                f"backlog before: {before.delayed} delayed, {before.pending} pending; "
                "sending now (oldest first)...",
                flush=True,
            )
        response = call_daemon(config.api.socket_path, "POST", "/v1/sync", timeout_s=args.timeout)
        if response.status_code != 200:
            print(
                f"pos-agent sync: the daemon refused: {_error_message(response)}", file=sys.stderr
            )
            return int(Level.WARN)
        report = SyncReport.model_validate_json(response.content)
        after = _backlog(config)
    except DaemonUnreachable as exc:
        return _daemon_down("sync", exc)
    except ValidationError:
        print("pos-agent sync: the daemon's sync answer is not a sync report", file=sys.stderr)
        return int(Level.WARN)
    left = (after.delayed + after.pending) if after else None
    exit_code = Level.OK if left == 0 and not report.rejected else Level.WARN
    if args.json:
        body = {
            "sync": report.model_dump(mode="json"),
            "backlog_after": after.model_dump(mode="json") if after else None,
            "exit_code": int(exit_code),
        }
        json.dump(body, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_sync(report, after, exit_code, use_colour(sys.stdout))
    return int(exit_code)


def _print_sync(report: SyncReport, after: Backlog | None, exit_code: Level, colour: bool) -> None:
    """One line per document sent, the run's totals, then what is still waiting."""
    for doc in report.documents:
        print(_document_line(doc, colour))
    stopped = " (stopped early: the provider became unreachable)"
    print(
        f"sync: {report.attempted} sent, {report.accepted} accepted, "
        f"{report.still_delayed} still delayed, {report.rejected} rejected"
        + (stopped if report.stopped_early else "")
    )
    if after is None:
        return
    summary = f"backlog now: {after.delayed} delayed, {after.pending} pending"
    if after.oldest is not None and after.oldest.hours_left is not None:
        summary += f"; oldest due in {after.oldest.hours_left:.1f} h"
    print(paint(summary, exit_code, colour))
    if after.delayed + after.pending and not report.attempted:
        print(
            "  (nothing could be sent now, most likely because the provider is still "
            "unreachable; the daemon keeps retrying on its own, see pos-agent status)"
        )


def _document_line(doc: SyncedDocument, colour: bool) -> str:
    name = f"{doc.series}/{doc.number} (receipt {doc.receipt_id})"
    error = doc.last_error or "?"
    if doc.state == "accepted":
        outcome = paint(f"accepted, MARK {doc.mark or 'unknown yet'}", Level.OK, colour)
    elif doc.state == "rejected":
        outcome = paint(f"REJECTED, needs a person: {error}", Level.CRITICAL, colour)
    else:
        outcome = paint(f"still {doc.state}: {error}", Level.WARN, colour)
    return f"  {name:<30} -> {outcome}"


def reprint_command(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return int(Level.UNKNOWN)
    request_id = f"cli-reprint-{uuid.uuid4().hex}"
    try:
        response = call_daemon(
            config.api.socket_path,
            "POST",
            f"/v1/receipts/{args.receipt_id}/print",
            body=dumps({"request_id": request_id}),
        )
    except DaemonUnreachable as exc:
        return _daemon_down("reprint", exc)
    if response.status_code not in (200, 201):
        print(
            f"pos-agent reprint: receipt {args.receipt_id}: {_error_message(response)}",
            file=sys.stderr,
        )
        return int(Level.WARN)
    body = response.json()
    print(
        f"receipt {body.get('receipt_id')}: print job {body.get('print_job_id')} queued "
        f"as a copy (ΑΝΤΙΓΡΑΦΟ); state {body.get('state')}"
    )
    return int(Level.OK)


def rollback_command(args: argparse.Namespace) -> int:
    """Only after the procedure in status: the newer database was looked for and is lost."""
    config = _config(args)
    if config is None:
        return int(Level.UNKNOWN)
    try:
        response = call_daemon(config.api.socket_path, "POST", "/v1/rollback/accept", body=b"{}")
    except DaemonUnreachable as exc:
        return _daemon_down("rollback accept", exc)
    if response.status_code != 200:
        print(f"pos-agent rollback accept: {_error_message(response)}", file=sys.stderr)
        return int(Level.WARN)
    body = response.json()
    for series, numbers in sorted(body["lost_numbers"].items()):
        print(
            f"series {series}: numbers {numbers['from']}-{numbers['to']} recorded as void here "
            "(the provider holds those receipts; see its portal); issuing resumes"
        )
    for series, numbers in sorted(body.get("voided_reservations", {}).items()):
        listed = ", ".join(str(n) for n in numbers)
        print(
            f"series {series}: open card reservations {listed} recorded as void (they may have "
            "been issued in the lost part; the provider's portal tells)"
        )
    if body.get("journal"):
        print(f"journal: {body['journal']} (recorded in the journal)")
    return int(Level.OK)


def register(commands: argparse._SubParsersAction) -> None:
    sync = commands.add_parser(
        "sync",
        help="send the offline backlog now and show the outcome per document "
        "(exit 0 nothing left, 1 something left, 2 daemon down)",
    )
    add_config_argument(sync)
    add_socket_argument(sync)
    sync.add_argument("--json", action="store_true", help="print the sync report as JSON")
    sync.add_argument(
        "--timeout", type=float, default=SYNC_TIMEOUT_S, help="seconds to wait for the sync"
    )
    sync.set_defaults(handler=sync_command)

    reprint = commands.add_parser("reprint", help="print a copy (ΑΝΤΙΓΡΑΦΟ) of a receipt")
    reprint.add_argument("receipt_id", type=int, metavar="ID", help="the receipt id")
    add_config_argument(reprint)
    add_socket_argument(reprint)
    reprint.set_defaults(handler=reprint_command)

    rollback = commands.add_parser(
        "rollback",
        help="after the database went back in time and the newer copy is lost for good: "
        "record the missing numbers as void and issue again",
    )
    rollback.add_argument("action", choices=["accept"], help="accept the rollback")
    add_config_argument(rollback)
    add_socket_argument(rollback)
    rollback.set_defaults(handler=rollback_command)
