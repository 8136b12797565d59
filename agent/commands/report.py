"""`pos-agent report day [--date D] [--json] [--print]` (X: the day so far, changes nothing;
`--print` also on the receipt printer),
`pos-agent report close` (Z: the daily closing), `pos-agent report show N` (a kept closing) and
`pos-agent reconcile [--date D] [--json]` (the day against the provider's list, and the
provider's open order slips against the open tables) and `pos-agent cancel-order MARK` (an 8.6
cancelling an order slip the provider holds open and no table here holds).

Each asks the daemon over its socket and prints the report as it is printed on paper (or its
JSON). Exit codes: 0 done (reconcile: nothing left for a person), 1 the daemon refused (the
message says why; reconcile: it failed or flagged documents or orders), 2 the daemon is down, 3
the config cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

from pydantic import ValidationError

from agent.commands.admin import _config, _daemon_down, _error_message
from agent.commands.common import (
    DaemonUnreachable,
    add_config_argument,
    add_socket_argument,
    call_daemon,
)
from agent.core.answers import ProviderOrderCancelAnswer
from agent.core.day_report import DayReport, OrderReconciliation, Reconciliation
from agent.core.day_slip import day_slip
from agent.json_codec import dumps
from printers.day_slip import build_day_layout, layout_text

REFUSED, UNKNOWN = 1, 3
TERMINAL_WIDTH = 48
RECONCILE_TIMEOUT_S = 600.0


def report_command(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return UNKNOWN
    if args.action == "day":
        method, path, body = "GET", "/v1/reports/day", None
        if args.print:
            method, path = "POST", "/v1/reports/day/print"
        if args.date:
            path += f"?date={args.date}"
    elif args.action == "close":
        method, path = "POST", "/v1/closings"
        body = dumps({"request_id": f"cli-close-{uuid.uuid4().hex}"})
    else:
        method, path, body = "GET", f"/v1/closings/{args.number}", None
    try:
        response = call_daemon(config.api.socket_path, method, path, body=body)
    except DaemonUnreachable as exc:
        return _daemon_down(f"report {args.action}", exc)
    if response.status_code not in (200, 201):
        print(f"pos-agent report {args.action}: {_error_message(response)}", file=sys.stderr)
        return REFUSED
    try:
        report = DayReport.model_validate_json(response.content)
    except ValidationError:
        print(f"pos-agent report {args.action}: the answer is not a day report", file=sys.stderr)
        return REFUSED
    if args.json:
        json.dump(report.model_dump(mode="json"), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        slip = day_slip(report, config.issuer.brand or config.issuer.name)
        sys.stdout.write(layout_text(build_day_layout(slip, TERMINAL_WIDTH)))
        for person in report.needs_person:
            print(f"needs a person: receipt {person.receipt_id} ({person.reason})")
    return 0


def reconcile_command(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return UNKNOWN
    body = dumps({"date": args.date} if args.date else {})
    try:
        response = call_daemon(
            config.api.socket_path, "POST", "/v1/reconcile", body=body, timeout_s=args.timeout
        )
    except DaemonUnreachable as exc:
        return _daemon_down("reconcile", exc)
    if response.status_code != 200:
        print(f"pos-agent reconcile: {_error_message(response)}", file=sys.stderr)
        return REFUSED
    result = Reconciliation.model_validate_json(response.content)
    if args.json:
        json.dump(result.model_dump(mode="json"), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    elif result.error is not None:
        print(f"reconciliation of {result.day} failed: {result.error}")
    else:
        print(
            f"{result.day}: the provider lists {result.provider_documents} document(s); "
            f"{result.matched} matched, {result.resolved} MARK(s) found, {result.resent} sent "
            f"again, {len(result.flagged)} for a person"
        )
        for problem in result.flagged:
            print(f"  needs a person: {problem}")
    orders = result.orders
    if orders is not None and not args.json:
        _print_orders(orders)
    orders_left = orders is not None and (orders.error or orders.flagged or orders.unheld)
    return REFUSED if result.error is not None or result.flagged or orders_left else 0


def _print_orders(orders: OrderReconciliation) -> None:
    if orders.error is not None:
        print(f"open order slips: could not be read: {orders.error}")
        return
    print(
        f"open order slips: the provider holds {orders.provider_open} open; {orders.matched} "
        f"matched, {orders.resolved} MARK(s) found, {orders.resent} on their way, "
        f"{len(orders.flagged) + len(orders.unheld)} for a person"
    )
    for problem in orders.flagged:
        print(f"  needs a person: {problem}")
    for order in orders.unheld:
        issued = (
            f"issued {order.issued_at:%Y-%m-%d %H:%M}" if order.issued_at else "issue time unknown"
        )
        print(
            f"  needs a person: the provider holds order slip MARK {order.mark} of table "
            f"{order.table} open ({issued}) and no open table here does; "
            f"`pos-agent cancel-order {order.mark}` cancels it"
        )


def cancel_order_command(args: argparse.Namespace) -> int:
    """An 8.6 cancelling the provider's open order slip `args.mark` (one the last
    reconciliation found that no table here holds); its request id names the MARK, so running
    it again gives back the same cancellation."""
    config = _config(args)
    if config is None:
        return UNKNOWN
    body = dumps({"request_id": f"cancel-mark-{args.mark}", "waiter": args.waiter})
    try:
        response = call_daemon(
            config.api.socket_path, "POST", f"/v1/provider-orders/{args.mark}/cancel", body=body
        )
    except DaemonUnreachable as exc:
        return _daemon_down("cancel-order", exc)
    if response.status_code not in (200, 201):
        print(f"pos-agent cancel-order: {_error_message(response)}", file=sys.stderr)
        return REFUSED
    answer = ProviderOrderCancelAnswer.model_validate_json(response.content)
    print(
        f"order slip MARK {answer.cancelled_mark} of table {answer.table}: cancellation "
        f"{answer.series}/{answer.number} (receipt {answer.receipt_id}) is {answer.state}"
        + (f", MARK {answer.mark}" if answer.mark else ": the sync sends it")
    )
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="the day's reports: `day` (X, changes nothing), `close` (Z, the daily closing), "
        "`show N` (a kept closing)",
    )
    report.add_argument("action", choices=["day", "close", "show"])
    report.add_argument("number", nargs="?", type=int, help="the closing number (show)")
    report.add_argument("--date", help="day of the X report, YYYY-MM-DD (default: today)")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument(
        "--print", action="store_true", help="day: also print the X slip on the receipt printer"
    )
    add_config_argument(report)
    add_socket_argument(report)
    report.set_defaults(handler=report_command)

    reconcile = commands.add_parser(
        "reconcile",
        help="match a day's receipts with the provider's list: find unknown MARKs, send again "
        "what it lacks, flag the rest (exit 0 clean, 1 flagged or failed, 2 daemon down)",
    )
    reconcile.add_argument("--date", help="the day, YYYY-MM-DD (default: today)")
    reconcile.add_argument("--json", action="store_true", help="print the result as JSON")
    reconcile.add_argument(
        "--timeout", type=float, default=RECONCILE_TIMEOUT_S, help="seconds to wait for it"
    )
    add_config_argument(reconcile)
    add_socket_argument(reconcile)
    reconcile.set_defaults(handler=reconcile_command)
    cancel = commands.add_parser(
        "cancel-order",
        help="cancel an order slip (8.6) the provider holds open and no table here holds "
        "(found by `pos-agent reconcile`)",
    )
    cancel.add_argument("mark", type=int, help="the order slip's MARK")
    cancel.add_argument("--waiter", default="pos-agent", help="who cancels it (default pos-agent)")
    add_config_argument(cancel)
    add_socket_argument(cancel)
    cancel.set_defaults(handler=cancel_order_command)
