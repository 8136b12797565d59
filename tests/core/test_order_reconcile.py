"""The provider's open order slips (8.6) against the register's open tables, in this process:
the register's services on a real SQLite file, the sandbox as a real HTTP server on loopback.

Each outcome on its own: matched (open on both sides); resolved (an order accepted without a
usable MARK takes the listed one); resent (a table closed here by a receipt still offline: the
provider rightly holds its orders open until the receipt arrives); unheld (an 8.6 of this issuer
the register never stored) until `ProviderOrders.cancel` clears it, on its way while that
cancellation waits offline (and not cancelled twice); and a register that is not food service
never asks. A listed slip whose internal id is not one of ours is still ours by its MARK."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

import offline_store as store
from agent.config import AgentConfig
from agent.core.day_report import OrderReconciliation
from agent.core.errors import OrderNotOpen, ProviderOrderNotFound
from agent.core.order_reconcile import match_orders, provider_open_orders
from agent.core.services import Services
from agent.fiscal.orders import CancelProviderOrderRequest, CloseTableRequest, OrderRequest
from agent.sandbox.server import SandboxServer
from agent.secrets import ApiKey
from tests.core.register import register_config, running, set_faults
from tests.fiscal.fixtures import shop_config
from tests.sandbox.test_orders import order as provider_order
from tests.sandbox.test_provider import post

LINE = {"description": "Μουσακάς", "quantity": "1", "unit_price": "12.00", "vat_category": 2}


@pytest.fixture
def config(tmp_path: Path, sandbox: SandboxServer) -> AgentConfig:
    terminal = {**shop_config().terminal.model_dump(mode="json"), "food_service": True}
    return register_config(tmp_path, sandbox, terminal=terminal)


async def place(services: Services, request_id: str, table: str) -> int:
    body = {"request_id": request_id, "table": table, "waiter": "Νίκος", "lines": [LINE]}
    answer = (await services.orders.place(OrderRequest.model_validate(body))).body
    return answer.receipt_id


async def orders_now(services: Services) -> OrderReconciliation:
    result = await services.reconcile.check_open_orders()
    assert result is not None and result.orders is not None
    return result.orders


def test_each_outcome_and_the_cancellation_of_an_order_no_table_holds(
    config: AgentConfig,
    sandbox: SandboxServer,
    sandbox_api_key: ApiKey,
    sandbox_admin: httpx.Client,
) -> None:
    lost = post(sandbox, "/Invoice/json", provider_order(900001, table="12"))
    assert lost.status_code == 201, lost.text
    lost_mark = int(lost.json()["mark"])
    second = post(sandbox, "/Invoice/json", provider_order(900002, table="13"))
    second_mark = int(second.json()["mark"])

    async def scenario() -> None:
        async with running(config, sandbox_api_key) as services:
            await place(services, "kept", "4")
            first = await orders_now(services)  # the first look is a whole reconciliation
            assert (first.provider_open, first.matched, first.resent) == (3, 1, 0)
            unheld, _ = first.unheld
            assert (unheld.mark, unheld.table, unheld.known_here) == (lost_mark, "12", None)
            assert unheld.total == Decimal("10.00") and unheld.issued_at is not None
            assert [order.mark for order in first.unheld] == [lost_mark, second_mark]

            set_faults(sandbox_admin, "bad_mark_409")  # answer lost, the re-send's MARK unusable
            unknown = await place(services, "mark-lost", "5")
            await services.sync.run(ignore_backoff=True)
            doc = store.get_document(services.runtime.conn, unknown)
            assert doc is not None and doc.mark_unknown
            set_faults(sandbox_admin, "ok")
            found = await orders_now(services)
            assert (found.matched, found.resolved) == (1, 1), found
            doc = store.get_document(services.runtime.conn, unknown)
            assert doc is not None and doc.mark is not None and not doc.mark_unknown

            with pytest.raises(ProviderOrderNotFound):
                await services.provider_orders.cancel(
                    doc.mark, CancelProviderOrderRequest(request_id="not-unheld")
                )
            cancelled = await services.provider_orders.cancel(
                lost_mark, CancelProviderOrderRequest(request_id="clear-lost")
            )
            assert cancelled.body.state == "accepted" and cancelled.body.table == "12"
            last = services.reconcile.last()
            assert last is not None and last.orders is not None
            assert [order.mark for order in last.orders.unheld] == [second_mark]

            set_faults(sandbox_admin, "aade_down")  # a cancellation that waits offline
            waiting = await services.provider_orders.cancel(
                second_mark, CancelProviderOrderRequest(request_id="clear-second")
            )
            assert waiting.body.state == "delayed"
            on_its_way = await orders_now(services)
            assert (on_its_way.resent, on_its_way.unheld) == (1, [])
            with pytest.raises(OrderNotOpen, match="already being cancelled"):
                await services.provider_orders.cancel(
                    second_mark, CancelProviderOrderRequest(request_id="clear-second-again")
                )

            paid = CloseTableRequest.model_validate(
                {"request_id": "pay-4", "payments": [{"method": 3, "amount": "12.00"}]}
            )
            closing = (await services.tables.close("4", paid)).body
            assert closing.state == "delayed"
            both_on_their_way = await orders_now(services)
            assert both_on_their_way.resent == 2, both_on_their_way
            assert (both_on_their_way.unheld, both_on_their_way.flagged) == ([], [])
            set_faults(sandbox_admin, "ok")
            await services.sync.run(ignore_backoff=True)
            settled = await orders_now(services)
            assert (settled.provider_open, settled.matched, settled.resent) == (1, 1, 0)
            assert (settled.unheld, settled.flagged) == ([], [])

    asyncio.run(scenario())


def test_a_listed_slip_whose_internal_id_is_not_ours_is_ours_by_its_mark(
    config: AgentConfig,
    sandbox: SandboxServer,
    sandbox_api_key: ApiKey,
    sandbox_admin: httpx.Client,
) -> None:
    async def scenario() -> None:
        async with running(config, sandbox_api_key) as services:
            rt = services.runtime
            order_id = await place(services, "slip", "4")
            slip = store.get_document(rt.conn, order_id)
            assert slip is not None and slip.mark is not None
            set_faults(sandbox_admin, "aade_down")  # the table's receipt waits offline
            paid = CloseTableRequest.model_validate(
                {"request_id": "pay-4", "payments": [{"method": 3, "amount": "12.00"}]}
            )
            assert (await services.tables.close("4", paid)).body.state == "delayed"
            set_faults(sandbox_admin, "ok")
            listed = await provider_open_orders(rt)
            assert isinstance(listed, list)
            assert [(entry.mark, entry.internal_id) for entry in listed] == [
                (slip.mark, slip.internal_id)
            ]
            renamed = [dataclasses.replace(entry, internal_id="ELSEWHERE-1") for entry in listed]
            with store.transaction(rt.conn):
                orders = match_orders(rt, renamed, rt.clock())
            assert (orders.resent, orders.unheld, orders.flagged) == (1, [], []), orders

    asyncio.run(scenario())


def test_a_register_without_tables_never_asks(
    tmp_path: Path, sandbox: SandboxServer, sandbox_api_key: ApiKey
) -> None:
    async def scenario() -> None:
        async with running(register_config(tmp_path, sandbox), sandbox_api_key) as services:
            assert await services.reconcile.check_open_orders() is None
            result = await services.reconcile.run(services.runtime.clock().date())
            assert result.orders is None and result.error is None

    asyncio.run(scenario())
