"""The food-service routes: order slips (8.6), tables, closing a table, the cash drawer.

A route table (`TABLES`) of module-level handlers, bound to the services by `create_app`.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from agent.api.endpoints import ISSUED, Endpoint, answered, read
from agent.api.errors import ApiError, FieldProblem
from agent.api.peer_protocol import UNIX_PREFIX
from agent.api.routing import Request, Response
from agent.core.answers import (
    CancelAnswer,
    ClosingAnswer,
    DrawerAnswer,
    OrderAnswer,
    TableAnswer,
    TableList,
)
from agent.core.services import Services
from agent.fiscal.orders import (
    CancelOrderRequest,
    CloseTableRequest,
    DrawerOpenRequest,
    OrderRequest,
)
from agent.fiscal.receipt_model import TableId

_TABLE = TypeAdapter(TableId)
TABLE_PATH = {"table": _TABLE.json_schema()}
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


async def place(services: Services, request: Request) -> Response:
    return answered(await services.orders.place(await read(services, request, OrderRequest)))


async def cancel(services: Services, request: Request) -> Response:
    order_id = request.int_param("order_id")
    parsed = await read(services, request, CancelOrderRequest)
    return answered(await services.orders.cancel(order_id, parsed))


async def tables(services: Services, _: Request) -> Response:
    return Response.model(services.tables.tables())


async def table(services: Services, request: Request) -> Response:
    return Response.model(services.tables.table(table_param(request)))


async def close(services: Services, request: Request) -> Response:
    name = table_param(request)
    parsed = await read(services, request, CloseTableRequest)
    return answered(await services.tables.close(name, parsed))


async def open_drawer(services: Services, request: Request) -> Response:
    parsed = await read(services, request, DrawerOpenRequest)
    return answered(services.drawer.open(parsed, caller_of(request)))


TABLES = (
    Endpoint(
        "POST",
        "/v1/orders",
        place,
        "Issue an 8.6 order slip for a table",
        OrderRequest,
        OrderAnswer,
        ISSUED,
        links=ORDER_LINKS,
    ),
    Endpoint(
        "POST",
        "/v1/orders/{order_id}/cancel",
        cancel,
        "Cancel an open order slip (8.6 with totalCancelDeliveryOrders)",
        CancelOrderRequest,
        CancelAnswer,
        ISSUED,
    ),
    Endpoint("GET", "/v1/tables", tables, "Tables with open orders", answer=TableList),
    Endpoint(
        "GET",
        "/v1/tables/{table}",
        table,
        "A table's open orders, part payments, what is paid and what is left",
        answer=TableAnswer,
        path_schemas=TABLE_PATH,
    ),
    Endpoint(
        "POST",
        "/v1/tables/{table}/close",
        close,
        "Pay a table, or part of it (amount or lines): the 11.1 connecting every open order",
        CloseTableRequest,
        ClosingAnswer,
        ISSUED,
        path_schemas=TABLE_PATH,
    ),
    Endpoint(
        "POST",
        "/v1/drawer/open",
        open_drawer,
        "Open the cash drawer (journaled with the caller)",
        DrawerOpenRequest,
        DrawerAnswer,
    ),
)
