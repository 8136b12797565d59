"""End to end, a café table: order slips (8.6) online and while the provider is down, a return, a
cancellation, the close with a card payment; the sandbox holds exactly the 8.6 documents and one
11.1 connecting the MARKs of the orders not cancelled; the slips print with their notice; the
cash drawer opens on a cash receipt (not on a card-only one) and on request, journaled with the
caller; an order past the legal limit makes `status` CRITICAL. Split bills and partial payments:
each receipt connects every open order, carries the orders' own rounded amounts, and the table
closes on the receipt that brings it to 0.00."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest

import offline_store as store
from agent.config import load_config
from agent.core.answers import (
    CancelAnswer,
    ClosingAnswer,
    DrawerAnswer,
    OrderAnswer,
    SignatureAnswer,
    TableAnswer,
)
from agent.core.status_report import Level, StatusReport, store_status, verdict
from agent.core.unpaid_orders import oldest_unpaid, part_paid
from agent.json_codec import loads
from agent.tools.local_stack import LocalStack, StackSettings, cash_receipt
from printers.layout import KITCHEN_BANNER, ORDER_NOTICE
from tests.e2e.stack import E2E_DEFAULTS, E2EStack, parsed, wait_for
from tests.printers.emulator import PrinterEmulator

pytestmark = pytest.mark.e2e

TABLE = "7"
WAITER = "Νίκος"
TERMINAL = "TID00042"
KICK_PIN2 = b"\x1bp\x00\x32\x64"  # ESC p, pin 2, 100 ms on, 200 ms off


@pytest.fixture(scope="module")
def printer() -> Iterator[PrinterEmulator]:
    with PrinterEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def cafe(tmp_path_factory: pytest.TempPathFactory, printer: PrinterEmulator) -> Iterator[E2EStack]:
    settings = StackSettings(
        **{**E2E_DEFAULTS, "printer_backend": "network"},
        food_service=True,
        cash_drawer="pin2",
        kitchen_copy=True,
        printer_port=printer.port,
    )
    local = LocalStack(tmp_path_factory.mktemp("cafe"), settings)
    local.start()
    try:
        yield E2EStack(local)
    finally:
        local.stop()


def _line(description: str, quantity: str, price: str) -> dict[str, Any]:
    return {
        "description": description,
        "quantity": D(quantity),
        "unit_price": D(price),
        "vat_category": 2,
    }


def _order(
    stack: E2EStack, request_id: str, *lines: dict[str, Any], kind: str = "order"
) -> OrderAnswer:
    body = {"request_id": request_id, "table": TABLE, "waiter": WAITER, "kind": kind}
    return parsed(stack.post("/v1/orders", {**body, "lines": list(lines)}), OrderAnswer)


def _table(stack: E2EStack, table: str) -> TableAnswer:
    return parsed(stack.get(f"/v1/tables/{table}"), TableAnswer, 200)


def close_table(stack: E2EStack, table: str, body: dict[str, Any]) -> ClosingAnswer:
    """`POST /v1/tables/{table}/close`: a receipt paying the table, or part of it."""
    return parsed(stack.post(f"/v1/tables/{table}/close", body), ClosingAnswer)


def _printed_text(printer: PrinterEmulator) -> str:
    """What the printer got, decoded from its code page, lines joined (the notice wraps)."""
    return " ".join(printer.printed.decode("cp1253", errors="replace").split())


def test_a_table_from_first_order_to_card_close(cafe: E2EStack, printer: PrinterEmulator) -> None:
    stack = cafe
    first = _order(stack, "o-1", _line("Φρέντο εσπρέσο", "2", "3.50"))
    assert first.state == "accepted" and first.mark and first.type == "8.6"
    assert first.table == TABLE and first.waiter == WAITER

    stack.set_faults("down")
    second = _order(stack, "o-2", _line("Τοστ", "1", "4.00"))
    assert second.state == "delayed" and second.delayed_code == 1
    assert second.offline_qr_url and "TransmissionFailure" in second.offline_qr_url

    # No receipt may connect a MARK that does not exist: the close waits for the sync.
    refused = stack.post(
        f"/v1/tables/{TABLE}/close",
        {"request_id": "close-early", "payments": [{"method": 3, "amount": D("11.00")}]},
    )
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "orders_not_synced" and error["order_ids"] == [second.receipt_id]
    assert error["retryable"] is True

    stack.set_faults("ok")
    stack.close_breaker()
    stack.sync_until_accepted([second.receipt_id])
    third = _order(stack, "o-3", _line("Κρουασάν", "1", "2.80"), _line("Νερό", "1", "0.50"))
    assert third.state == "accepted"

    returned = _order(stack, "r-1", _line("Φρέντο εσπρέσο", "1", "3.50"), kind="return")
    assert returned.state == "accepted" and returned.kind == "return"
    too_many = stack.post(
        "/v1/orders",
        {
            "request_id": "r-2",
            "table": TABLE,
            "waiter": WAITER,
            "kind": "return",
            "lines": [_line("Φρέντο εσπρέσο", "2", "3.50")],
        },
    )
    assert (
        too_many.status_code == 422 and too_many.json()["error"]["code"] == "return_exceeds_orders"
    )

    cancelled = stack.post(f"/v1/orders/{third.receipt_id}/cancel", {"request_id": "c-1"})
    cancel = parsed(cancelled, CancelAnswer)
    assert cancel.state == "accepted" and cancel.cancelled_order_id == third.receipt_id
    again = stack.post(f"/v1/orders/{third.receipt_id}/cancel", {"request_id": "c-1"})
    assert parsed(again, CancelAnswer, 200).receipt_id == cancel.receipt_id

    table = _table(stack, TABLE)
    open_ids = [order.order_id for order in table.orders]
    assert open_ids == [first.receipt_id, second.receipt_id, returned.receipt_id]
    assert D(str(table.total)) == D("7.50") == D(str(table.closing_total))

    signed = stack.post(
        "/v1/payments/sign",
        {
            "request_id": "s-close",
            "terminal_id": TERMINAL,
            "amount": D("7.50"),
            "document_type": "11.1",
            "lines": [line.model_dump(mode="json") for line in table.closing_lines],
        },
    )
    signature = parsed(signed, SignatureAnswer)
    assert signature.signature_duration == "H_2"  # terminal.food_service
    card = {
        "method": 7,
        "amount": D("7.50"),
        "terminal_id": TERMINAL,
        "transaction_id": "AADE-TX-7",
        "signature_id": signature.signature_id,
    }
    close_body = {"request_id": "close-7", "payments": [card]}
    closed = stack.post(f"/v1/tables/{TABLE}/close", close_body)
    receipt = parsed(closed, ClosingAnswer)
    assert receipt.state == "accepted" and receipt.receipt_id == signature.receipt_id
    replay = parsed(stack.post(f"/v1/tables/{TABLE}/close", close_body), ClosingAnswer, 200)
    assert replay.receipt_id == receipt.receipt_id
    assert stack.get(f"/v1/tables/{TABLE}").status_code == 404

    # The provider's side: every 8.6 and one 11.1 connecting exactly the orders not cancelled.
    documents = stack.provider_documents()
    order_marks = {first.mark, stack.receipt(second.receipt_id).mark, third.mark}
    order_marks |= {returned.mark, cancel.mark}
    assert {d["mark"] for d in documents if d["type"] == "8.6"} == order_marks
    receipts = [d for d in documents if d["type"] == "11.1"]
    assert [d["mark"] for d in receipts] == [receipt.mark]
    connected = loads(stack.stored(receipt.receipt_id).payload or b"")
    kept = [first.mark, stack.receipt(second.receipt_id).mark, returned.mark]
    assert connected["multipleConnectedMarks"] == kept
    assert connected["SpecialInvoiceCategory"] == 12
    with stack.stack.provider() as client:
        ledger = client.get("/_sandbox/orders", params={"table": TABLE}).json()["orders"]
    states = {row["mark"]: (row["state"], row["settled_by"]) for row in ledger}
    assert {mark for mark, (state, by) in states.items() if state == "closed"} == set(kept)
    assert all(by == receipt.mark for state, by in states.values() if state == "closed")
    assert states[third.mark] == ("cancelled", cancel.mark)

    # The slips as printed: Greek, with the notice, table and waiter; the kitchen copy too.
    wait_for(
        lambda: stack.receipt(receipt.receipt_id).delivery.print.state == "printed",
        timeout_s=30,
        what="the closing receipt printed",
    )
    text = _printed_text(printer)
    assert text.count(ORDER_NOTICE) >= 10  # 5 slips, 5 kitchen copies
    assert f"ΤΡΑΠΕΖΙ: {TABLE}" in text and f"Σερβιτόρος: {WAITER}" in text
    assert KITCHEN_BANNER in text and "ΑΚΥΡΩΣΗ ΠΑΡΑΓΓΕΛΙΑΣ" in text and "ΕΠΙΣΤΡΟΦΗ ΕΙΔΩΝ" in text
    assert "Απώλεια Διασύνδεσης Οντότητας - Παρόχου" in text  # the slip issued offline
    assert KICK_PIN2 not in printer.printed  # orders and a card-only close never open it


def test_the_drawer_opens_on_cash_and_on_request(cafe: E2EStack, printer: PrinterEmulator) -> None:
    stack = cafe
    before = printer.printed.count(KICK_PIN2)
    sale = stack.post("/v1/receipts", cash_receipt("cash-1"))
    assert sale.status_code == 201, sale.text
    wait_for(
        lambda: printer.printed.count(KICK_PIN2) == before + 1,
        timeout_s=30,
        what="ESC p after a cash receipt",
    )
    opened = stack.post("/v1/drawer/open", {"request_id": "drawer-1"})
    drawer = parsed(opened, DrawerAnswer)
    caller = drawer.caller
    assert caller.startswith(f"uid={os.getuid()}:")
    again = stack.post("/v1/drawer/open", {"request_id": "drawer-1"})
    assert again.status_code == 201 and again.json() == opened.json()  # the first answer
    wait_for(
        lambda: printer.printed.count(KICK_PIN2) == before + 2,
        timeout_s=30,
        what="ESC p after POST /v1/drawer/open",
    )
    with stack.database() as conn:
        events = [
            (entry.event, json.loads(entry.detail))
            for entry in store.journal_entries(conn, after=0)
            if entry.event.startswith("drawer.")
        ]
    manual = [d for e, d in events if e == "drawer.queued" and d["reason"] == "manual"]
    assert manual == [
        {
            "kick_id": drawer.kick_id,
            "reason": "manual",
            "caller": caller,
            "request_id": "drawer-1",
        }
    ]
    assert ("drawer.opened", {"kick_id": drawer.kick_id}) in events
    assert printer.printed.count(KICK_PIN2) == before + 2  # the replay kicked nothing


def test_an_order_past_the_legal_limit_is_critical(cafe: E2EStack) -> None:
    stack = cafe
    order = _order(stack, "o-late", _line("Λεμονάδα", "1", "3.00"))
    live = StatusReport.model_validate(stack.get("/v1/status").json())
    assert live.store is not None and live.store.open_orders is not None
    assert live.store.open_orders.count == 1 and live.store.open_orders.oldest_table == TABLE
    metrics = stack.get("/metrics").text
    assert re.search(r"^pos_agent_open_orders(\{[^}]*\})? 1\.0$", metrics, re.M), metrics

    config = load_config(stack.stack.config_path)
    issued = stack.stored(order.receipt_id).issued_at
    with stack.database() as conn:
        for hours, expected in ((1, Level.OK), (21, Level.WARN), (24, Level.CRITICAL)):
            stored = store_status(conn, config, issued + timedelta(hours=hours))
            level, findings = verdict(live.model_copy(update={"store": stored}), config)
            about_order = [f for f in findings if f"order {order.receipt_id} of table" in f]
            if expected is Level.OK:
                assert about_order == [], findings
            else:
                assert level >= expected and about_order[0].startswith(expected.name), findings
    assert store.open_orders  # the store API the report reads


def test_an_offline_order_survives_kill_9_and_the_table_closes_after_the_sync(
    cafe: E2EStack,
) -> None:
    stack = cafe
    table = "K9"
    stack.set_faults("down")
    body = {"request_id": "k9-1", "table": table, "waiter": WAITER}
    placed = parsed(
        stack.post("/v1/orders", {**body, "lines": [_line("Μπίρα", "2", "4.50")]}), OrderAnswer
    )
    assert placed.delayed_code == 1
    stack.stack.kill_daemon()
    stack.set_faults("ok")
    stack.stack.start_daemon()
    stack.close_breaker()
    again = stack.post("/v1/orders", {**body, "lines": [_line("Μπίρα", "2", "4.50")]})
    assert parsed(again, OrderAnswer, 200).receipt_id == placed.receipt_id
    stack.sync_until_accepted([placed.receipt_id])
    view = _table(stack, table)
    assert [order.order_id for order in view.orders] == [placed.receipt_id]
    cash = [{"method": 3, "amount": D("9.00")}]
    closed = close_table(stack, table, {"request_id": "k9-close", "payments": cash})
    assert closed.state == "accepted"
    assert stack.get(f"/v1/tables/{table}").status_code == 404


def test_bad_requests_name_the_field_and_change_nothing(cafe: E2EStack) -> None:
    stack = cafe
    before = stack.document_count()
    line = _line("Φρέντο", "1", "3.50")
    cases = [
        (
            "/v1/orders",
            {"request_id": "b1", "table": "7/1", "waiter": "A", "lines": [line]},
            422,
            "table",
        ),
        ("/v1/orders", {"request_id": "b2", "table": "7", "lines": [line]}, 422, "waiter"),
        (
            "/v1/orders",
            {"request_id": "b3", "table": "7", "waiter": "A", "lines": []},
            422,
            "lines",
        ),
        ("/v1/orders/999999/cancel", {"request_id": "b4"}, 409, None),
        ("/v1/tables/nobody/close", {"request_id": "b5"}, 404, None),
    ]
    for path, body, status, field in cases:
        response = stack.post(path, body)
        assert response.status_code == status, (path, response.text)
        error = response.json()["error"]
        if field is not None:
            assert any(problem["path"].startswith(field) for problem in error["fields"]), error
    assert stack.get("/v1/tables/a%2Fb").status_code in (404, 422)
    reused = stack.post(
        "/v1/orders", {"request_id": "o-1", "table": "8", "waiter": WAITER, "lines": [line]}
    )
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "request_id_reused"
    assert stack.document_count() == before


def test_an_order_while_aade_is_down_is_delayed_with_code_2(cafe: E2EStack) -> None:
    stack = cafe
    stack.set_faults("aade_down")
    body = {"request_id": "aade-1", "table": "A2", "waiter": WAITER}
    placed = stack.post("/v1/orders", {**body, "lines": [_line("Τσάι", "1", "2.50")]})
    order = parsed(placed, OrderAnswer)
    assert order.state == "delayed" and order.delayed_code == 2
    assert order.legend == "Απώλεια Διασύνδεσης Παρόχου – ΑΑΔΕ"
    refused = stack.post("/v1/tables/A2/close", {"request_id": "aade-close"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "orders_not_synced"
    stack.set_faults("ok")
    stack.close_breaker()
    stack.sync_until_accepted([order.receipt_id])
    cash = [{"method": 3, "amount": D("2.50")}]
    # The refusal recorded nothing: the same request_id goes through now.
    closed = close_table(stack, "A2", {"request_id": "aade-close", "payments": cash})
    assert closed.state == "accepted"


def _vat_sums(payloads: list[dict[str, Any]]) -> dict[int, tuple[D, D]]:
    """Net and VAT per VAT category over documents, from their VatAnalysis (returns negative)."""
    sums: dict[int, tuple[D, D]] = {}
    for payload in payloads:
        sign = -1 if payload["Details"][0]["RecordTypeCode"] == 7 else 1
        for bucket in payload["VatAnalysis"]:
            net, vat = sums.get(bucket["VatCategoryCode"], (D("0"), D("0")))
            sums[bucket["VatCategoryCode"]] = (
                net + sign * bucket["UnderlyingValue"],
                vat + sign * bucket["VatAmount"],
            )
    return sums


def _payload(stack: E2EStack, receipt_id: int) -> dict[str, Any]:
    return dict(loads(stack.stored(receipt_id).payload or b""))


def _order_on(stack: E2EStack, table: str, request_id: str, *lines: dict[str, Any]) -> OrderAnswer:
    body = {"request_id": request_id, "table": table, "waiter": WAITER, "lines": list(lines)}
    return parsed(stack.post("/v1/orders", body), OrderAnswer)


def test_a_table_with_a_balance_is_not_closed_without_payments(cafe: E2EStack) -> None:
    stack = cafe
    _order_on(stack, "D1", "d1-1", _line("Σαλάτα", "1", "12.00"))
    before = stack.document_count()
    refused = stack.post("/v1/tables/D1/close", {"request_id": "d1-close"})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "payments_mismatch" and error["fields"][0]["path"] == "payments"
    assert "12.00" in error["fields"][0]["message"]
    assert stack.document_count() == before
    cash = [{"method": 3, "amount": D("12.00")}]
    closed = stack.post("/v1/tables/D1/close", {"request_id": "d1-close", "payments": cash})
    assert closed.status_code == 201, closed.text


def test_a_close_retried_with_the_amount_written_otherwise_is_the_same_request(
    cafe: E2EStack,
) -> None:
    stack = cafe
    _order_on(stack, "D2", "d2-1", _line("Τσάι", "1", "2.50"))
    body = {"request_id": "d2-close", "payments": [{"method": 3, "amount": D("2.50")}]}
    first = close_table(stack, "D2", body)
    with stack.client() as client:
        retry = client.post(
            "/v1/tables/D2/close",
            content=b'{"request_id": "d2-close", "payments": [{"amount": 2.5, "method": 3}]}',
            headers={"content-type": "application/json"},
        )
    assert parsed(retry, ClosingAnswer, 200).receipt_id == first.receipt_id


def test_a_close_naming_the_customers_vat_is_refused_like_a_receipt(cafe: E2EStack) -> None:
    stack = cafe
    _order_on(stack, "D3", "d3-1", _line("Πίτα", "1", "5.00"))
    before = stack.document_count()
    customer = {"vat": "094014201", "name": "Πελάτης"}
    cash = [{"method": 3, "amount": D("5.00")}]
    refused = stack.post(
        "/v1/tables/D3/close", {"request_id": "d3-close", "payments": cash, "customer": customer}
    )
    receipt = stack.post(
        "/v1/receipts",
        {**cash_receipt("d3-receipt"), "customer": customer},
    )
    assert refused.status_code == receipt.status_code == 422, refused.text
    assert refused.json()["error"]["fields"] == receipt.json()["error"]["fields"]
    assert refused.json()["error"]["fields"][0]["path"] == "customer.vat"
    assert stack.document_count() == before


def test_the_closing_receipt_carries_the_order_slips_rounded_amounts(cafe: E2EStack) -> None:
    stack = cafe
    slips = [
        _order_on(stack, "D4", f"d4-{n}", {**_line("Φρέντο", "1", "2.50"), "vat_category": 1})
        for n in range(3)
    ]
    cash = [{"method": 3, "amount": D("7.50")}]
    closed = close_table(stack, "D4", {"request_id": "d4-close", "payments": cash})
    receipt = _payload(stack, closed.receipt_id)
    orders = [_payload(stack, slip.receipt_id) for slip in slips]
    assert _vat_sums(orders) == _vat_sums([receipt]) == {1: (D("6.06"), D("1.44"))}
    summaries = receipt["Summaries"]
    assert (summaries["TotalNetAmount"], summaries["TotalVATAmount"]) == (D("6.06"), D("1.44"))
    assert receipt["Details"][0]["Quantity"] == D("3") and receipt["SpecialInvoiceCategory"] == 12


def _ledger(stack: E2EStack, table: str) -> dict[int, str]:
    with stack.stack.provider() as client:
        rows = client.get("/_sandbox/orders", params={"table": table}).json()["orders"]
    return {row["mark"]: row["state"] for row in rows}


def _received(stack: E2EStack, mark: int) -> dict[str, Any]:
    return next(d for d in stack.provider_documents() if d["mark"] == mark)


def test_a_split_bill_over_two_vat_rates_and_a_partial_payment(cafe: E2EStack) -> None:
    """Two guests pay 10.00 each by amount (apportioned over 13 % and 24 %), a third orders
    more and pays the rest: each 11.1 connects every open order; per VAT rate the receipts add
    up to exactly the 8.6 documents; the table closes on the receipt that brings it to 0.00."""
    stack = cafe
    table = "S1"
    first = _order_on(
        stack,
        table,
        "s1-1",
        _line("Μουσακάς", "1", "11.90"),
        {**_line("Κρασί", "1", "6.30"), "vat_category": 1},
    )
    part = close_table(
        stack,
        table,
        {"request_id": "s1-pay1", "amount": D("10.00"), "payments": [{"method": 3, "amount": 10}]},
    )
    assert part.closes_table is False and part.total == "10.00"
    view = _table(stack, table)
    assert (D(str(view.total)), D(str(view.paid)), D(str(view.left))) == (
        D("18.20"),
        D("10.00"),
        D("8.20"),
    )
    assert [p.receipt_id for p in view.payments] == [part.receipt_id]
    paid = _payload(stack, part.receipt_id)
    # 10.00 apportioned as 11.90 : 6.30 → 6.538… : 3.461… → 6.53 and 3.46, the cent to 13 %
    assert {
        b["VatCategoryCode"]: b["UnderlyingValue"] + b["VatAmount"] for b in paid["VatAnalysis"]
    } == {
        1: D("3.46"),
        2: D("6.54"),
    }
    assert paid["SpecialInvoiceCategory"] == 12
    assert _received(stack, part.mark)["connected"] == [first.mark]

    second = _order_on(stack, table, "s1-2", _line("Γλυκό", "1", "4.50"))
    too_much = stack.post(
        f"/v1/tables/{table}/close",
        {"request_id": "s1-pay2", "amount": D("50.00"), "payments": [{"method": 3, "amount": 50}]},
    )
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "table_part_refused"
    rest = close_table(
        stack, table, {"request_id": "s1-pay2", "payments": [{"method": 3, "amount": D("12.70")}]}
    )
    assert rest.closes_table is True
    assert stack.get(f"/v1/tables/{table}").status_code == 404
    assert _received(stack, rest.mark)["connected"] == [first.mark, second.mark]
    assert set(_ledger(stack, table).values()) == {"closed"}
    receipts = [_payload(stack, r.receipt_id) for r in (part, rest)]
    orders = [_payload(stack, o.receipt_id) for o in (first, second)]
    assert _vat_sums(receipts) == _vat_sums(orders)


def test_a_guest_pays_their_items_by_card_and_the_table_stays_open(cafe: E2EStack) -> None:
    stack = cafe
    table = "S2"
    _order_on(stack, table, "s2-1", _line("Μπίρα", "3", "4.50"), _line("Πατάτες", "1", "3.80"))
    mine = [_line("Μπίρα", "1", "4.50")]
    signed = stack.post(
        "/v1/payments/sign",
        {
            "request_id": "s2-sign",
            "terminal_id": TERMINAL,
            "amount": D("4.50"),
            "table": {"table": table, "lines": mine},
        },
    )
    signature = parsed(signed, SignatureAnswer)
    assert sorted(signature.fields.amounts_cents) == sorted([398, 52, 450, 450])
    card = {
        "method": 7,
        "amount": D("4.50"),
        "terminal_id": TERMINAL,
        "transaction_id": "TX-S2",
        "signature_id": signature.signature_id,
    }
    paid = close_table(stack, table, {"request_id": "s2-pay1", "lines": mine, "payments": [card]})
    assert paid.receipt_id == signature.receipt_id
    view = _table(stack, table)
    assert D(str(view.left)) == D("12.80")
    assert [(line.description, line.quantity) for line in view.closing_lines] == [
        ("Μπίρα", D("2")),
        ("Πατάτες", D("1")),
    ]
    too_many = stack.post(
        f"/v1/tables/{table}/close",
        {
            "request_id": "s2-pay2",
            "lines": [_line("Μπίρα", "3", "4.50")],
            "payments": [{"method": 3, "amount": D("13.50")}],
        },
    )
    assert too_many.status_code == 422, too_many.text
    assert too_many.json()["error"]["fields"][0]["path"] == "lines[0]"
    rest = close_table(
        stack, table, {"request_id": "s2-pay2", "payments": [{"method": 3, "amount": D("12.80")}]}
    )
    assert rest.closes_table is True


def test_the_legal_clock_runs_from_the_oldest_order_not_fully_paid(cafe: E2EStack) -> None:
    stack = cafe
    table = "S3"
    first = _order_on(stack, table, "s3-1", _line("Καφές", "1", "3.00"))
    second = _order_on(stack, table, "s3-2", _line("Τοστ", "1", "4.00"))
    view = _table(stack, table)
    assert view.oldest_unpaid_order_at == view.oldest_order_at
    cash = [{"method": 3, "amount": D("3.00")}]
    paid = stack.post(
        f"/v1/tables/{table}/close",
        {"request_id": "s3-pay1", "amount": D("3.00"), "payments": cash},
    )
    assert paid.status_code == 201, paid.text
    view = _table(stack, table)
    assert view.oldest_unpaid_order_at == stack.stored(second.receipt_id).issued_at.isoformat()
    assert view.oldest_order_at == stack.stored(first.receipt_id).issued_at.isoformat()
    with stack.database() as conn:  # what `status` reads for the table
        unpaid = oldest_unpaid(store.open_orders(conn, table), part_paid(conn, table))
    assert unpaid is not None and unpaid.document_id == second.receipt_id
    rest = stack.post(
        f"/v1/tables/{table}/close",
        {"request_id": "s3-pay2", "payments": [{"method": 3, "amount": D("4.00")}]},
    )
    assert rest.status_code == 201, rest.text


def test_a_signpos_answered_408_is_a_retry_not_an_outage(cafe: E2EStack) -> None:
    """signpos involves no AADE: a 408 there is the provider still busy with the document. The
    till is told to retry (503 provider_busy, retryable), the breaker stays closed, no receipt
    goes offline, and the retry with the same request_id signs the same reserved number."""
    stack = cafe
    _order_on(stack, "S4", "s4-1", _line("Λεμονάδα", "2", "3.00"))
    sign = {
        "request_id": "s4-sign",
        "terminal_id": TERMINAL,
        "amount": D("6.00"),
        "table": {"table": "S4"},
    }
    stack.set_faults("busy")
    busy = stack.post("/v1/payments/sign", sign)
    assert busy.status_code == 503, busy.text
    assert busy.json()["error"]["code"] == "provider_busy" and busy.json()["error"]["retryable"]
    assert stack.breaker() == "closed"
    sale = stack.issue(cash_receipt("s4-counter"))
    assert sale.state == "accepted"
    stack.set_faults("ok")
    signed = parsed(stack.post("/v1/payments/sign", sign), SignatureAnswer)
    card = {
        "method": 7,
        "amount": D("6.00"),
        "terminal_id": TERMINAL,
        "transaction_id": "TX-S4",
        "signature_id": signed.signature_id,
    }
    closed = close_table(stack, "S4", {"request_id": "s4-close", "payments": [card]})
    assert closed.receipt_id == signed.receipt_id
    counter = _payload(stack, sale.receipt_id)
    assert counter["SpecialInvoiceCategory"] == 0  # a counter sale in a café: no catering


def test_the_integrators_split_bill_example(cafe: E2EStack) -> None:
    """docs/integrator.md's split bill, call for call: a card for two coffees, 10.00 in cash,
    the rest 8.20; the table closes on the third receipt."""
    stack = cafe
    coffees = {
        "description": "Φρέντο εσπρέσο",
        "quantity": 2,
        "unit_price": D("3.50"),
        "vat_category": 2,
    }
    clubs = {
        "description": "Κλαμπ σάντουιτς",
        "quantity": 2,
        "unit_price": D("9.10"),
        "vat_category": 2,
    }
    for request_id, line in (("t5-0001", coffees), ("t5-0002", clubs)):
        body = {"request_id": request_id, "table": "5", "waiter": "Μαρία", "lines": [line]}
        assert stack.post("/v1/orders", body).status_code == 201
    assert D(str(_table(stack, "5").left)) == D("25.20")
    signed = stack.post(
        "/v1/payments/sign",
        {
            "request_id": "t5-sign-1",
            "terminal_id": "TID00042",
            "amount": D("7.00"),
            "table": {"table": "5", "lines": [coffees]},
        },
    )
    card = {
        "method": 7,
        "amount": D("7.00"),
        "terminal_id": "TID00042",
        "transaction_id": "AADE-TX-51",
        "signature_id": parsed(signed, SignatureAnswer).signature_id,
    }
    answers = [
        stack.post("/v1/tables/5/close", body)
        for body in (
            {"request_id": "t5-pay-1", "lines": [coffees], "payments": [card]},
            {
                "request_id": "t5-pay-2",
                "amount": D("10.00"),
                "payments": [{"method": 3, "amount": D("10.00")}],
            },
            {"request_id": "t5-pay-3", "payments": [{"method": 3, "amount": D("8.20")}]},
        )
    ]
    closing = [parsed(answer, ClosingAnswer) for answer in answers]
    assert [answer.closes_table for answer in closing] == [False, False, True]
    assert stack.get("/v1/tables/5").status_code == 404


def test_a_split_bill_while_the_provider_is_down_is_issued_offline_and_synced(
    cafe: E2EStack,
) -> None:
    """Guests keep paying while the provider is down: each part is issued offline (its own
    number, the offline QR), the next guest is not held up by it, and after the sync the
    provider holds both receipts connecting the same orders, which its pool then closes."""
    stack = cafe
    table = "S5"
    order = _order_on(stack, table, "s5-1", _line("Πίτσα", "2", "12.00"))
    stack.set_faults("down")
    cash = {"method": 3, "amount": D("10.00")}
    first = close_table(
        stack, table, {"request_id": "s5-pay1", "amount": D("10.00"), "payments": [cash]}
    )
    assert first.delayed_code == 1 and first.closes_table is False
    rest = close_table(
        stack, table, {"request_id": "s5-pay2", "payments": [{"method": 3, "amount": D("14.00")}]}
    )
    assert rest.closes_table is True
    assert stack.get(f"/v1/tables/{table}").status_code == 404
    stack.set_faults("ok")
    stack.close_breaker()
    ids = [first.receipt_id, rest.receipt_id]
    stack.sync_until_accepted(ids)
    for receipt_id in ids:
        assert _received(stack, stack.receipt(receipt_id).mark)["connected"] == [order.mark]
    assert set(_ledger(stack, table).values()) == {"closed"}
