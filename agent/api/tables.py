"""The food-service routes: order slips (8.6), tables, closing a table, the cash drawer.

Registered on the app's router by `add_table_routes`, beside the receipt routes in `app.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from agent.api.errors import ApiError, FieldProblem
from agent.api.peer_protocol import UNIX_PREFIX
from agent.api.routing import Request, Response, Router
from agent.core.answers import (
    CancelAnswer,
    ClosingAnswer,
    DrawerAnswer,
    OrderAnswer,
    TableAnswer,
    TableList,
)
from agent.core.request_identity import Answer
from agent.core.services import Services
from agent.fiscal.orders import (
    CancelOrderRequest,
    CloseTableRequest,
    DrawerOpenRequest,
    OrderRequest,
)
from agent.fiscal.receipt_model import TableId

Read = Callable[[Request, type[BaseModel]], Awaitable[Any]]
_TABLE = TypeAdapter(TableId)
TABLE_PATH = {"table": _TABLE.json_schema()}
ISSUED = (201, 200)  # a document: 201 issued, 200 the same request_id's document again
_TABLE_NAME = {"table": "$response.body#/table"}
# What a till does next with an order slip: look at the table, cancel the slip, close the table.
ORDER_LINKS: dict[str, dict[str, Any]] = {
    "ReadTable": {"operationId": "get_v1_tables_by_table", "parameters": _TABLE_NAME},
    "CancelOrder": {
        "operationId": "post_v1_orders_by_order_id_cancel",
        "parameters": {"order_id": "$response.body#/receipt_id"},
    },
    "CloseTable": {"operationId": "post_v1_tables_by_table_close", "parameters": _TABLE_NAME},
}


def table_param(request: Request) -> str:
    try:
        return _TABLE.validate_python(request.params["table"])
    except ValidationError:
        raise ApiError(
            422,
            "invalid_request",
            "table must be 1-20 letters, digits, '.', '_' or '-'",
            [FieldProblem("table", "not a table id")],
        ) from None


def caller_of(request: Request) -> str:
    """Who asked: `uid=…:gid=…:pid=…` from SO_PEERCRED on the Unix socket, else the TCP peer
    (which passed the bearer token)."""
    if request.client.startswith(UNIX_PREFIX):
        return request.client.removeprefix(UNIX_PREFIX)
    return f"tcp:{request.client}"


def add_table_routes(
    router: Router,
    services: Services,
    read: Read,
    answered: Callable[[Answer], Response],
) -> None:
    orders = services.orders
    tables_service = services.tables

    async def place(request: Request) -> Response:
        return answered(await orders.place(await read(request, OrderRequest)))

    async def cancel(request: Request) -> Response:
        order_id = request.int_param("order_id")
        return answered(await orders.cancel(order_id, await read(request, CancelOrderRequest)))

    async def tables(_: Request) -> Response:
        return Response.model(tables_service.tables())

    async def table(request: Request) -> Response:
        return Response.model(tables_service.table(table_param(request)))

    async def close(request: Request) -> Response:
        name = table_param(request)
        return answered(await tables_service.close(name, await read(request, CloseTableRequest)))

    async def open_drawer(request: Request) -> Response:
        parsed = await read(request, DrawerOpenRequest)
        return answered(services.drawer.open(parsed, caller_of(request)))

    router.add(
        "POST",
        "/v1/orders",
        place,
        "Issue an 8.6 order slip for a table",
        OrderRequest,
        response_model=OrderAnswer,
        success=ISSUED,
        links=ORDER_LINKS,
    )
    router.add(
        "POST",
        "/v1/orders/{order_id}/cancel",
        cancel,
        "Cancel an open order slip (8.6 with totalCancelDeliveryOrders)",
        CancelOrderRequest,
        response_model=CancelAnswer,
        success=ISSUED,
    )
    router.add("GET", "/v1/tables", tables, "Tables with open orders", response_model=TableList)
    router.add(
        "GET",
        "/v1/tables/{table}",
        table,
        "A table's open orders, part payments, what is paid and what is left",
        response_model=TableAnswer,
        path_schemas=TABLE_PATH,
    )
    router.add(
        "POST",
        "/v1/tables/{table}/close",
        close,
        "Pay a table, or part of it (amount or lines): the 11.1 connecting every open order",
        CloseTableRequest,
        response_model=ClosingAnswer,
        success=ISSUED,
        path_schemas=TABLE_PATH,
    )
    router.add(
        "POST",
        "/v1/drawer/open",
        open_drawer,
        "Open the cash drawer (journaled with the caller)",
        DrawerOpenRequest,
        response_model=DrawerAnswer,
    )
