"""The local API: the receipt, payment and service routes with their handlers (module-level,
each given the services), and `create_app`, which binds every route table (these, the food
service's in `tables.py`, the day's in `closing.py`). A 5xx means a fault of the agent itself.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from agent.api.closing import DAY
from agent.api.endpoints import ISSUED, Endpoint, add_endpoints, answered, read
from agent.api.errors import ApiError, FieldProblem
from agent.api.routing import LocalApiApp, Request, Response, Router
from agent.api.tables import TABLES
from agent.core.answers import (
    DocumentAnswer,
    Health,
    PaymentAnswer,
    ReceiptList,
    ReprintAnswer,
    SignatureAnswer,
)
from agent.core.card_payments import Autonomous
from agent.core.iris_payments import IrisPaymentAnswer
from agent.core.receipts import RECEIPT_STATES
from agent.core.request_identity import Answer
from agent.core.rollback_guard import AcceptedRollback
from agent.core.services import Services
from agent.core.status_report import StatusReport
from agent.core.sync_report import SyncReport
from agent.fiscal.receipt_model import (
    IrisPaymentRequest,
    PaymentSignRequest,
    PosReceiptRequest,
    PrintRequest,
    ReceiptPaymentRequest,
    ReceiptRequest,
)

METRICS_TYPE = "text/plain; version=0.0.4"
_RECEIPT_ID = {"receipt_id": "$response.body#/receipt_id"}
# What a till does next with an issued receipt: read it back, print a copy.
RECEIPT_LINKS: dict[str, dict[str, Any]] = {
    "ReadReceipt": {"operationId": "get_v1_receipts_by_receipt_id", "parameters": _RECEIPT_ID},
    "ReprintReceipt": {
        "operationId": "post_v1_receipts_by_receipt_id_print",
        "parameters": _RECEIPT_ID,
    },
}
RECEIPT_QUERY: dict[str, dict[str, Any]] = {
    "state": {"type": "string", "enum": list(RECEIPT_STATES)},
    "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
    "offset": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1, "default": 0},
}


def autonomous(outcome: Autonomous) -> Response:
    """503 with what the terminal must do: charge autonomously, issue without a signature."""
    body = {
        "error": {
            "code": "provider_unreachable",
            "message": "the provider cannot sign now; put the terminal in autonomous mode and issue the receipt with the terminal's transaction id and no signature_id",
            "detail": outcome.reason,
        },
        "mode": "autonomous",
        "reason": "InterconnectionLoss",
    }
    return Response.json(body, 503)


async def issue_receipt(services: Services, request: Request) -> Response:
    parsed = await read(services, request, ReceiptRequest)
    return answered(await services.issuing.issue_receipt(parsed))


async def issue_pos_receipt(services: Services, request: Request) -> Response:
    parsed = await read(services, request, PosReceiptRequest)
    return answered(await services.issuing.issue_pos_receipt(parsed))


async def sign_payment(services: Services, request: Request) -> Response:
    match await services.cards.sign(await read(services, request, PaymentSignRequest)):
        case Autonomous() as outcome:
            return autonomous(outcome)
        case Answer() as answer:
            return answered(answer)


async def start_iris(services: Services, request: Request) -> Response:
    parsed = await read(services, request, IrisPaymentRequest)
    return answered(await services.iris.start(parsed))


async def poll_iris(services: Services, request: Request) -> Response:
    return Response.model(await services.iris.poll(request.int_param("iris_payment_id")))


async def pay_receipt(services: Services, request: Request) -> Response:
    receipt_id = request.int_param("receipt_id")
    parsed = await read(services, request, ReceiptPaymentRequest)
    return answered(await services.receipt_payments.pay_receipt(receipt_id, parsed))


async def get_receipt(services: Services, request: Request) -> Response:
    return Response.model(services.receipts.get(request.int_param("receipt_id")))


async def list_receipts(services: Services, request: Request) -> Response:
    state = request.query.get("state")
    if state is not None and state not in RECEIPT_STATES:
        raise ApiError(
            422,
            "invalid_request",
            f"state must be one of {sorted(RECEIPT_STATES)}",
            [FieldProblem("state", "unknown state")],
        )
    limit = request.int_query("limit", 50)
    offset = request.int_query("offset", 0)
    if not 1 <= limit <= 500:
        raise ApiError(
            422, "invalid_request", "limit must be 1-500", [FieldProblem("limit", "out of range")]
        )
    return Response.model(services.receipts.newest(state, limit=limit, offset=offset))


async def reprint(services: Services, request: Request) -> Response:
    receipt_id = request.int_param("receipt_id")
    parsed = await read(services, request, PrintRequest)
    return answered(services.receipts.reprint(receipt_id, parsed))


async def sync_now(services: Services, _: Request) -> Response:
    if services.runtime.breaker.is_open:
        await services.sync.probe()
    return Response.model(await services.sync.run(ignore_backoff=True))


async def accept_rollback(services: Services, _: Request) -> Response:
    return Response.model(services.runtime.rollback_guard.accept())


async def status(services: Services, _: Request) -> Response:
    return Response.model(await services.status())


async def health(services: Services, _: Request) -> Response:
    return Response.model(services.health())


async def metrics(services: Services, _: Request) -> Response:
    return Response(200, services.scrape(), METRICS_TYPE)


async def openapi(router: Router, _: Request) -> Response:
    from agent.api.openapi import openapi_document

    return Response.json(openapi_document(router.routes))


RECEIPTS = (
    Endpoint(
        "POST",
        "/v1/receipts",
        issue_receipt,
        "Issue an 11.1 receipt or 11.4 credit",
        ReceiptRequest,
        DocumentAnswer,
        ISSUED,
        links=RECEIPT_LINKS,
    ),
    Endpoint(
        "POST",
        "/v1/pos-receipts",
        issue_pos_receipt,
        "Issue an 8.4/8.5 POS receipt",
        PosReceiptRequest,
        DocumentAnswer,
        ISSUED,
        links=RECEIPT_LINKS,
    ),
    Endpoint(
        "POST",
        "/v1/payments/sign",
        sign_payment,
        "Provider signature before charging a card",
        PaymentSignRequest,
        SignatureAnswer,
    ),
    Endpoint(
        "POST",
        "/v1/payments/iris",
        start_iris,
        "Start an IRIS payment through the provider: the QR for the customer",
        IrisPaymentRequest,
        IrisPaymentAnswer,
        ISSUED,
    ),
    Endpoint(
        "GET",
        "/v1/payments/iris/{iris_payment_id}",
        poll_iris,
        "An IRIS payment's state, asked of the provider while pending",
        answer=IrisPaymentAnswer,
    ),
    Endpoint(
        "POST",
        "/v1/receipts/{receipt_id}/payments",
        pay_receipt,
        "Card payment on a MARKed receipt",
        ReceiptPaymentRequest,
        PaymentAnswer,
    ),
    Endpoint(
        "GET",
        "/v1/receipts/{receipt_id}",
        get_receipt,
        "One receipt and its state",
        answer=DocumentAnswer,
    ),
    Endpoint(
        "GET",
        "/v1/receipts",
        list_receipts,
        "Receipts, newest first (state, limit, offset)",
        answer=ReceiptList,
        query=RECEIPT_QUERY,
    ),
    Endpoint(
        "POST",
        "/v1/receipts/{receipt_id}/print",
        reprint,
        "Reprint as a copy (ΑΝΤΙΓΡΑΦΟ)",
        PrintRequest,
        ReprintAnswer,
    ),
)
SERVICE = (
    Endpoint(
        "POST",
        "/v1/sync",
        sync_now,
        "Probe the provider and send the backlog now",
        answer=SyncReport,
        success=(200,),
    ),
    Endpoint(
        "POST",
        "/v1/rollback/accept",
        accept_rollback,
        "A technician accepts that the newer database is lost: its numbers become void here",
        answer=AcceptedRollback,
        success=(200,),
    ),
    Endpoint("GET", "/v1/status", status, "The technician's status report", answer=StatusReport),
    Endpoint("GET", "/v1/health", health, "Liveness and breaker state", answer=Health),
    Endpoint("GET", "/metrics", metrics, "Prometheus metrics", content_type=METRICS_TYPE),
)


def create_app(services: Services, tcp_token: bytes | None = None) -> LocalApiApp:
    """The route tables bound to `services`; every write runs inside the storage guard."""
    router = Router()
    for table in (RECEIPTS, TABLES, DAY, SERVICE):
        add_endpoints(router, services, table)
    router.add("GET", "/openapi.json", partial(openapi, router), "This document")
    storage = services.runtime.storage
    client = services.runtime.client
    return LocalApiApp(
        router,
        tcp_token,
        guard=lambda method: storage.guard(writes=method == "POST"),
        exchanges=lambda: client.exchanges_begun,
    )
