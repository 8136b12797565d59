"""The day's reports against the real daemon: the X report of today, the daily closings (Z)
numbered on, idempotent and kept, their reprint by number, the refusals, the OpenAPI schemas
and the technician's `pos-agent report`; a SIGKILL between a closing and its slip (the slip,
queued with the closing and held for its reconciliation, prints once after the restart)."""

from __future__ import annotations

import contextlib
import json
import threading
from decimal import Decimal
from typing import Any

import httpx
import pytest

from agent.cli import main
from agent.core.day_report import DayReport
from agent.json_codec import dumps
from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, parsed, wait_for

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack()


def test_x_then_two_closings_each_covering_what_came_after(
    stack: E2EStack, capsys: pytest.CaptureFixture[str]
) -> None:
    for request_id in ("day-1", "day-2"):
        assert stack.post("/v1/receipts", cash_receipt(request_id)).status_code == 201
    report = parsed(stack.get("/v1/reports/day"), DayReport, 200)
    assert report.kind == "X"
    sales = report.sales
    assert (sales.documents, sales.gross) == (2, Decimal("10.00"))
    [cash] = sales.by_method
    assert (cash.method, cash.amount, cash.payments) == (3, Decimal("10.00"), 2)
    [vat] = sales.by_vat
    assert vat.category == 2 and vat.net + vat.vat == Decimal("10.00")
    [series] = report.documents
    assert (series.type_code, series.first, series.last) == ("11.1", 1, 2)

    first = stack.post("/v1/closings", {"request_id": "z-1"})
    z1 = parsed(first, DayReport)
    again = stack.post("/v1/closings", {"request_id": "z-1"})
    assert again.status_code == 200 and again.json() == first.json()
    assert (z1.kind, z1.number, z1.sales.gross) == ("Z", 1, sales.gross)

    stack.issue(cash_receipt("day-3"))
    z2 = parsed(stack.post("/v1/closings", {"request_id": "z-2"}), DayReport)
    assert z2.number == 2 and z2.after_receipt_id == z1.last_receipt_id
    assert (z2.sales.documents, z2.sales.gross) == (1, Decimal("5.00"))
    assert parsed(stack.get("/v1/closings/2"), DayReport, 200) == z2

    def printed() -> bool:
        with stack.database() as conn:
            states = conn.execute("SELECT print_state FROM closings ORDER BY number").fetchall()
        return [row[0] for row in states] == ["printed", "printed"]

    wait_for(printed, timeout_s=20, what="both closing slips printed")
    assert parsed(stack.post("/v1/closings/2/print", {}), DayReport, 200) == z2
    wait_for(printed, timeout_s=20, what="the reprint printed")
    with stack.database() as conn:
        events = [
            row[0] for row in conn.execute("SELECT event FROM journal WHERE event LIKE 'closing.%'")
        ]
    assert events.count("closing.printed") == 3 and "closing.print_queued" in events

    config = str(stack.stack.config_path)
    assert main(["report", "show", "2", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "ΑΝΑΦΟΡΑ Z Νο 2" in out and "5,00" in out
    assert main(["report", "day", "--config", config]) == 0
    assert "ΑΝΑΦΟΡΑ X" in capsys.readouterr().out


def test_refusals_name_the_field_and_change_nothing(stack: E2EStack) -> None:
    bad_day = stack.get("/v1/reports/day", date="2026-13-01")
    assert bad_day.status_code == 422 and bad_day.json()["error"]["fields"][0]["path"] == "date"
    missing = stack.get("/v1/closings/99")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "closing_not_found"
    no_id = stack.post("/v1/closings", {})
    assert no_id.status_code == 422 and "request_id" in no_id.text
    with stack.database() as conn:
        assert conn.execute("SELECT count(*) FROM closings WHERE number > 2").fetchone()[0] == 0


def test_the_openapi_document_carries_the_report_schema(stack: E2EStack) -> None:
    document = stack.get("/openapi.json").json()
    paths, schemas = document["paths"], document["components"]["schemas"]

    def resolved(media: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = schemas[media["schema"]["$ref"].rsplit("/", 1)[-1]]
        return found

    answer = paths["/v1/reports/day"]["get"]["responses"]["200"]["content"]["application/json"]
    assert "sales" in resolved(answer)["properties"]
    close = paths["/v1/closings"]["post"]
    assert (
        "request_id" in resolved(close["requestBody"]["content"]["application/json"])["properties"]
    )
    assert "201" in close["responses"]


def _closing_row(stack: E2EStack, request_id: str) -> dict[str, Any] | None:
    with stack.database() as conn:
        row = conn.execute(
            "SELECT number, print_state, print_attempts, next_print_at, reconciliation "
            "FROM closings WHERE request_id = ?",
            (request_id,),
        ).fetchone()
    return None if row is None else dict(row)


def _closing_events(stack: E2EStack, number: int) -> list[str]:
    with stack.database() as conn:
        rows = conn.execute(
            "SELECT event, detail FROM journal_named WHERE event LIKE 'closing.%' ORDER BY seq"
        ).fetchall()
    return [row[0] for row in rows if json.loads(row[1]).get("number") == number]


def test_a_kill_between_the_closing_and_its_slip_prints_the_slip_once_after_restart(
    stack: E2EStack,
) -> None:
    """The provider swallows the reconciliation's list request; the daemon is SIGKILLed while
    it waits, after the closing was committed. The slip was queued with it (held for the
    reconciliation): the restart reconciles, releases and prints it, once; a second restart and
    a repeated request print nothing more."""
    assert stack.post("/v1/receipts", cash_receipt("crash-z-sale")).status_code == 201
    stack.set_faults("blackhole")
    till = threading.Thread(
        target=lambda: _post_quietly(stack, {"request_id": "z-crash"}), daemon=True
    )
    till.start()
    held = wait_for(
        lambda: _closing_row(stack, "z-crash"), timeout_s=10, what="the closing committed"
    )
    stack.stack.kill_daemon()
    till.join(timeout=10)
    held = _closing_row(stack, "z-crash")
    assert held is not None
    assert (held["print_state"], held["print_attempts"]) == ("queued", 0)
    assert held["next_print_at"] is not None and held["reconciliation"] is None

    stack.set_faults("ok")
    stack.stack.start_daemon()

    def printed() -> dict[str, Any] | None:
        row = _closing_row(stack, "z-crash")
        return row if row is not None and row["print_state"] == "printed" else None

    done = wait_for(printed, timeout_s=30, what="the held slip printed after the restart")
    assert done["reconciliation"] is not None and done["print_attempts"] == 1
    number = done["number"]
    assert stack.post("/v1/closings", {"request_id": "z-crash"}).status_code == 200
    stack.stop_cleanly()
    stack.stack.start_daemon()
    assert parsed(stack.get(f"/v1/closings/{number}"), DayReport, 200).reconciliation is not None
    events = _closing_events(stack, number)
    assert events.count("closing.printed") == 1, events
    assert events.count("closing.print_released") == 1, events
    assert "closing.print_queued" not in events, events


def _post_quietly(stack: E2EStack, body: dict[str, Any]) -> None:
    """The till's request; its connection dies with the daemon."""
    with contextlib.suppress(httpx.HTTPError), stack.client(timeout_s=60) as client:
        client.post("/v1/closings", content=dumps(body))
