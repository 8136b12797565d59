"""The provider's open order slips (8.6) against the register's open tables, end to end: the real
daemon, the sandbox's open-orders list (pages of two) and the technician's commands.

- The provider holds open an 8.6 this register lost track of (posted to the provider with the
  register's key but not through it, 21 h ago, as a store restored from a backup leaves it):
  `pos-agent reconcile` flags it naming table, MARK and deadline, the register's own open order
  is matched, `status` and `doctor` are CRITICAL (within 4 h of the 24 h limit) and
  `/metrics` counts it;
  `pos-agent cancel-order MARK` issues the 8.6 cancellation, the provider's pool is empty of it
  and `status` is OK again.
- The provider's list leaves out an order the register holds open (accepted): flagged; an order
  not yet at the provider is resent, not flagged.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from agent.cli import main
from agent.commands.doctor import check_open_orders
from agent.commands.status import render
from agent.config import load_config
from agent.core.answers import ClosingAnswer, OrderAnswer, ProviderOrderCancelAnswer
from agent.core.day_report import OrderReconciliation, Reconciliation
from agent.core.status_report import Level, StatusReport
from agent.json_codec import dumps, loads
from tests.e2e.stack import E2EStack, e2e_stack, parsed, sample_value

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack(food_service=True, sandbox_page_size=2)


def status(stack: E2EStack) -> StatusReport:
    return parsed(stack.get("/v1/status"), StatusReport, 200)


def place(stack: E2EStack, request_id: str, table: str) -> OrderAnswer:
    line = {"description": "Μουσακάς", "quantity": "1", "unit_price": "12.00", "vat_category": 2}
    body = {"request_id": request_id, "table": table, "waiter": "Νίκος", "lines": [line]}
    return parsed(stack.post("/v1/orders", body), OrderAnswer)


def reconcile_orders(stack: E2EStack) -> OrderReconciliation:
    """`POST /v1/reconcile`: today's reconciliation, its open order slips part."""
    orders = parsed(stack.post("/v1/reconcile", {}), Reconciliation, 200).orders
    assert orders is not None
    return orders


def post_beside_the_register(stack: E2EStack, receipt_id: int) -> int:
    """An 8.6 of table 12 the provider accepts from this issuer but this register never stored:
    the register's own frozen order with another number, dated 21 h back, or just before
    today's midnight when that is longer (so it is in no list of today's documents)."""
    document = loads(stack.stored(receipt_id).payload or b"")
    now = stack.stored(receipt_id).issued_at
    since_midnight = now - now.replace(hour=0, minute=0, second=0, microsecond=0)
    issued = now - max(timedelta(hours=21), since_midnight + timedelta(minutes=5))
    document["Number"] = str(900000 + receipt_id)
    document["DateIssued"] = issued.strftime("%Y-%m-%dT%H:%M:%S")
    document["tableId"] = "12"
    document["DistributionDetails"]["InternalDocumentId"] = f"8.6_lost_{receipt_id}"
    answer = httpx.post(
        f"{stack.stack.sandbox_url}/invoice/json",
        content=dumps(document),
        headers={"APIKey": stack.api_key(), "content-type": "application/json"},
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["mark"])


def sandbox_order_state(stack: E2EStack, mark: int) -> str:
    with stack.stack.provider() as client:
        orders = client.get("/_sandbox/orders").json()["orders"]
    [found] = [order["state"] for order in orders if order["mark"] == mark]
    return str(found)


def test_an_order_the_register_lost_is_flagged_critical_until_cancelled(
    stack: E2EStack, capsys: pytest.CaptureFixture[str]
) -> None:
    held = place(stack, "keep-1", "4")
    lost_mark = post_beside_the_register(stack, held.receipt_id)

    config = str(stack.stack.config_path)
    assert main(["reconcile", "--config", config]) == 1
    out = capsys.readouterr().out
    assert "the provider holds 2 open; 1 matched" in out, out
    assert f"MARK {lost_mark} of table 12" in out and f"cancel-order {lost_mark}" in out

    warned = status(stack)
    [finding] = [f for f in warned.findings if f"MARK {lost_mark}" in f]
    assert finding.startswith("CRITICAL: ") and warned.exit_code is Level.CRITICAL, warned
    assert "table 12" in finding and "24 h limit" in finding and "never issued here" in finding
    loaded = load_config(stack.stack.config_path)
    screen = render(warned, loaded.sync, loaded.clock, colour=True, tables=loaded.tables)
    [row] = [line for line in screen.splitlines() if "Orders 8.6" in line]
    assert "\033[31m" in row, row  # painted CRITICAL, as its finding
    scrape = stack.get("/metrics").text
    assert sample_value(scrape, "pos_agent_reconciliation_orders", result="matched") == 1
    assert sample_value(scrape, "pos_agent_reconciliation_orders", result="flagged") == 1
    assert sample_value(scrape, "pos_agent_unheld_order_oldest_timestamp_seconds") is not None

    [doctor] = check_open_orders(load_config(stack.stack.config_path))
    assert doctor.level is Level.CRITICAL and f"cancel-order {lost_mark}" in doctor.hint, doctor

    refused = stack.post(f"/v1/provider-orders/{held.mark}/cancel", {"request_id": "c-held"})
    assert refused.status_code == 404 and "POST /v1/orders/" in refused.text

    assert main(["cancel-order", str(lost_mark), "--config", config]) == 0
    assert "is accepted" in capsys.readouterr().out
    assert sandbox_order_state(stack, lost_mark) == "cancelled"
    assert held.mark is not None and sandbox_order_state(stack, held.mark) == "open"
    cleared = status(stack)
    assert cleared.exit_code is Level.OK, cleared.findings
    [doctor] = check_open_orders(load_config(stack.stack.config_path))
    assert doctor.level is Level.OK and "0 on no table here" in doctor.detail, doctor
    scrape = stack.get("/metrics").text
    assert sample_value(scrape, "pos_agent_reconciliation_orders", result="flagged") == 0
    assert sample_value(scrape, "pos_agent_unheld_order_oldest_timestamp_seconds") is None
    again = stack.post(
        f"/v1/provider-orders/{lost_mark}/cancel",
        {"request_id": f"cancel-mark-{lost_mark}", "waiter": "pos-agent"},
    )
    assert parsed(again, ProviderOrderCancelAnswer, 200).cancelled_mark == lost_mark

    closed = stack.post(
        "/v1/tables/4/close",
        {"request_id": "close-4", "payments": [{"method": 3, "amount": Decimal("12.00")}]},
    )
    parsed(closed, ClosingAnswer)
    result = reconcile_orders(stack)
    assert (result.provider_open, result.matched, result.unheld) == (0, 0, [])


def test_an_order_the_provider_does_not_list_is_flagged_one_not_sent_yet_is_resent(
    stack: E2EStack,
) -> None:
    listed = place(stack, "both-1", "5")
    dropped = place(stack, "dropped-1", "5")
    stack.set_faults("open_orders_drops")
    result = reconcile_orders(stack)
    assert (result.matched, result.unheld) == (1, [])
    [problem] = result.flagged
    assert f"order {dropped.receipt_id} of table 5" in problem and str(dropped.mark) in problem
    assert any("open order slips" in f for f in status(stack).findings)

    stack.set_faults("aade_down")  # documents wait (408); the lists still answer
    offline = place(stack, "offline-1", "6")
    assert offline.state == "delayed"
    fresh = reconcile_orders(stack)
    assert fresh.flagged == [] and fresh.unheld == []
    assert fresh.resent == 1 and fresh.matched == 2, fresh
    stack.set_faults("ok")
    stack.sync_until_accepted([offline.receipt_id])
    assert reconcile_orders(stack).matched == 3
    assert listed.mark is not None
