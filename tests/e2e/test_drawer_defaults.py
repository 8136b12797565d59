"""A register without a cash drawer (the default `printer.cash_drawer = "none"`): opening it is
refused with a clear 409 and nothing is queued or journaled; a cash receipt queues no kick."""

from __future__ import annotations

import pytest

from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack()


def test_no_drawer_no_kick(stack: E2EStack) -> None:
    refused = stack.post("/v1/drawer/open", {"request_id": "nd-1"})
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "drawer_not_configured" and "printer.cash_drawer" in error["message"]
    sale = stack.post("/v1/receipts", cash_receipt("nd-cash"))
    assert sale.status_code == 201, sale.text
    with stack.database() as conn:
        assert conn.execute("SELECT count(*) FROM drawer_kicks").fetchone()[0] == 0
        assert (
            conn.execute("SELECT count(*) FROM api_requests WHERE request_id = 'nd-1'").fetchone()[
                0
            ]
            == 0
        )
        journal = conn.execute("SELECT count(*) FROM journal_named WHERE event LIKE 'drawer.%'")
        assert journal.fetchone()[0] == 0
