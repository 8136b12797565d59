"""The day's routes: the X report of a day, the daily closings (Z) and their reprints, the
reconciliation of a day with the provider's list of documents, and the cancellation of an order
slip the reconciliation found open at the provider and held by no table here.

A route table (`DAY`) of module-level handlers, bound to the services by `create_app`; every
answer is a model built by core (`DayReport`, `Reconciliation`, `ProviderOrderCancelAnswer`)
and serialised here once.
"""

from __future__ import annotations

import re
from datetime import date

from agent.api.endpoints import Endpoint, answered, read
from agent.api.errors import ApiError, FieldProblem
from agent.api.routing import Request, Response
from agent.core.answers import ProviderOrderCancelAnswer
from agent.core.closings import ClosingRequest
from agent.core.day_report import DayReport, Reconciliation
from agent.core.reconcile import ReconcileRequest
from agent.core.services import Services
from agent.fiscal.orders import CancelProviderOrderRequest

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def day_query(request: Request, today: date) -> date:
    """`?date=YYYY-MM-DD` (an Athens calendar day), today when absent."""
    text = request.query.get("date")
    if text is None:
        return today
    try:
        if _DAY.fullmatch(text) is None:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(
            422,
            "invalid_request",
            "date must be a calendar day written YYYY-MM-DD",
            [FieldProblem("date", f"{text[:20]!r} is not a YYYY-MM-DD date")],
        ) from None


async def day(services: Services, request: Request) -> Response:
    today = services.runtime.clock().date()
    return Response.model(await services.closings.day(day_query(request, today)))


async def print_day(services: Services, request: Request) -> Response:
    today = services.runtime.clock().date()
    return Response.model(await services.closings.print_day(day_query(request, today)))


async def cancel_provider_order(services: Services, request: Request) -> Response:
    mark = request.int_param("mark")
    asked = await read(services, request, CancelProviderOrderRequest)
    return answered(await services.provider_orders.cancel(mark, asked))


async def close(services: Services, request: Request) -> Response:
    return answered(await services.closings.close(await read(services, request, ClosingRequest)))


async def reconcile(services: Services, request: Request) -> Response:
    asked = await read(services, request, ReconcileRequest)
    day = asked.day or services.runtime.clock().date()
    return Response.model(await services.reconcile.run(day))


async def reprint(services: Services, request: Request) -> Response:
    return Response.model(services.closings.reprint(request.int_param("number")))


async def closing(services: Services, request: Request) -> Response:
    return Response.model(services.closings.get(request.int_param("number")))


_DATE = {"date": {"type": "string", "format": "date"}}
DAY = (
    Endpoint(
        "GET",
        "/v1/reports/day",
        day,
        "X report of a day (date=YYYY-MM-DD, today by default); changes nothing",
        answer=DayReport,
        query=_DATE,
    ),
    Endpoint(
        "POST",
        "/v1/reports/day/print",
        print_day,
        "Print the X report of a day (date=YYYY-MM-DD, today by default) on the receipt "
        "printer; not a closing, changes nothing",
        answer=DayReport,
        success=(200,),
        query=_DATE,
    ),
    Endpoint(
        "POST",
        "/v1/provider-orders/{mark}/cancel",
        cancel_provider_order,
        "Cancel an order slip the provider holds open and no table here holds (reconciliation)",
        CancelProviderOrderRequest,
        ProviderOrderCancelAnswer,
        success=(201, 200),
    ),
    Endpoint(
        "POST",
        "/v1/closings",
        close,
        "Daily closing (Z): everything since the previous closing, numbered and kept",
        ClosingRequest,
        DayReport,
        success=(201, 200),
    ),
    Endpoint(
        "POST",
        "/v1/reconcile",
        reconcile,
        "Match a day (date, today by default) with the provider's list of documents",
        ReconcileRequest,
        Reconciliation,
        success=(200,),
    ),
    Endpoint(
        "POST",
        "/v1/closings/{number}/print",
        reprint,
        "Print a kept closing (Z) again on the receipt printer",
        answer=DayReport,
        success=(200,),
    ),
    Endpoint(
        "GET",
        "/v1/closings/{number}",
        closing,
        "A kept closing (Z) as it was made, with its reconciliation",
        answer=DayReport,
    ),
)
