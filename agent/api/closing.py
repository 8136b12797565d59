"""The day's routes: the X report of a day, the daily closings (Z) and their reprints, the
reconciliation of a day with the provider's list of documents, and the cancellation of an order
slip the reconciliation found open at the provider and held by no table here.

Registered on the app's router by `add_closing_routes`; every answer is a `DayReport` built by
core and serialised here once.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from pydantic import BaseModel

from agent.api.errors import ApiError, FieldProblem
from agent.api.routing import Request, Response, Router
from agent.core.answers import ProviderOrderCancelAnswer
from agent.core.closings import ClosingRequest
from agent.core.day_report import DayReport, Reconciliation
from agent.core.reconcile import ReconcileRequest
from agent.core.request_identity import Answer
from agent.core.services import Services
from agent.fiscal.orders import CancelProviderOrderRequest

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
Read = Callable[[Request, type[BaseModel]], Awaitable[Any]]


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


def add_closing_routes(
    router: Router,
    services: Services,
    read: Read,
    answered: Callable[[Answer], Response],
) -> None:
    closings = services.closings
    _add_day_routes(router, services)
    _add_provider_order_routes(router, services, read, answered)

    async def close(request: Request) -> Response:
        return answered(await closings.close(await read(request, ClosingRequest)))

    async def closing(request: Request) -> Response:
        report = closings.get(request.int_param("number"))
        return Response.model(report)

    router.add(
        "POST",
        "/v1/closings",
        close,
        "Daily closing (Z): everything since the previous closing, numbered and kept",
        ClosingRequest,
        DayReport,
        success=(201, 200),
    )

    async def reconcile(request: Request) -> Response:
        asked: ReconcileRequest = await read(request, ReconcileRequest)
        day = asked.day or services.runtime.clock().date()
        result = await services.reconcile.run(day)
        return Response.model(result)

    async def reprint(request: Request) -> Response:
        report = closings.reprint(request.int_param("number"))
        return Response.model(report)

    router.add(
        "POST",
        "/v1/reconcile",
        reconcile,
        "Match a day (date, today by default) with the provider's list of documents",
        ReconcileRequest,
        Reconciliation,
        success=(200,),
    )
    router.add(
        "POST",
        "/v1/closings/{number}/print",
        reprint,
        "Print a kept closing (Z) again on the receipt printer",
        response_model=DayReport,
        success=(200,),
    )
    router.add(
        "GET",
        "/v1/closings/{number}",
        closing,
        "A kept closing (Z) as it was made, with its reconciliation",
        response_model=DayReport,
    )


def _add_provider_order_routes(
    router: Router, services: Services, read: Read, answered: Callable[[Answer], Response]
) -> None:
    async def cancel(request: Request) -> Response:
        mark = request.int_param("mark")
        asked = await read(request, CancelProviderOrderRequest)
        return answered(await services.provider_orders.cancel(mark, asked))

    router.add(
        "POST",
        "/v1/provider-orders/{mark}/cancel",
        cancel,
        "Cancel an order slip the provider holds open and no table here holds (reconciliation)",
        CancelProviderOrderRequest,
        response_model=ProviderOrderCancelAnswer,
        success=(201, 200),
    )


def _add_day_routes(router: Router, services: Services) -> None:
    """The X report of a day: read (`GET`), or printed on the receipt printer (`POST`); neither
    changes anything fiscal."""
    closings = services.closings

    async def day(request: Request) -> Response:
        report = await closings.day(day_query(request, services.runtime.clock().date()))
        return Response.model(report)

    async def print_day(request: Request) -> Response:
        report = await closings.print_day(day_query(request, services.runtime.clock().date()))
        return Response.model(report)

    router.add(
        "GET",
        "/v1/reports/day",
        day,
        "X report of a day (date=YYYY-MM-DD, today by default); changes nothing",
        response_model=DayReport,
        query={"date": {"type": "string", "format": "date"}},
    )
    router.add(
        "POST",
        "/v1/reports/day/print",
        print_day,
        "Print the X report of a day (date=YYYY-MM-DD, today by default) on the receipt "
        "printer; not a closing, changes nothing",
        response_model=DayReport,
        success=(200,),
        query={"date": {"type": "string", "format": "date"}},
    )
