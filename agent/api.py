"""The local API (DESIGN §3) as a FastAPI app.

Bodies are parsed by us, not by FastAPI: JSON numbers become `Decimal` (money never passes through
float), the size is capped before parsing, and every validation problem comes back as a 4xx that
names the field and the rule. A 5xx means a fault of the agent itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

import offline_store as store
from agent import __version__
from agent.answers import document_answer
from agent.api_errors import ApiError, FieldProblem, field_path, from_validation_error
from agent.json_codec import dumps, loads
from agent.print_orders import queue_print
from agent.receipt_model import (
    PaymentSignRequest,
    PosReceiptRequest,
    PrintRequest,
    ReceiptPaymentRequest,
    ReceiptRequest,
)
from agent.request_identity import remembered_answer, request_hash
from agent.services import Services

log = logging.getLogger("pos_agent.api")
Model = TypeVar("Model", bound=BaseModel)
MAX_NESTING_ERRORS = (RecursionError, ValueError, UnicodeDecodeError)


class DecimalJSONResponse(JSONResponse):
    """JSON with Decimals as exact numbers."""

    def render(self, content: Any) -> bytes:
        return dumps(content, allow_float=True)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


async def read_model(request: Request, model: type[Model], max_bytes: int) -> Model:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "body_too_large", f"the body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, "body_too_large", f"the body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        data = loads(raw)
    except MAX_NESTING_ERRORS as exc:
        raise ApiError(
            400, "invalid_json", f"the body is not valid UTF-8 JSON: {str(exc)[:200]}"
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "invalid_json",
            "the body must be a JSON object",
            [FieldProblem("(body)", "expected an object")],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from None


def create_app(services: Services) -> FastAPI:
    rt = services.runtime
    max_bytes = rt.config.api.max_body_bytes
    app = FastAPI(
        title="pos-agent local API", version=__version__, default_response_class=DecimalJSONResponse
    )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return DecimalJSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _path_error(_: Request, exc: RequestValidationError) -> Response:
        fields = [FieldProblem(field_path(tuple(e["loc"])), str(e["msg"])) for e in exc.errors()]
        error = ApiError(
            422, "invalid_request", "; ".join(f"{f.path}: {f.message}" for f in fields), fields
        )
        return DecimalJSONResponse(error.body(), status_code=422)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> Response:
        log.exception("internal error")
        body = {
            "error": {
                "code": "internal_error",
                "message": f"the agent failed: {type(exc).__name__}",
            }
        }
        return DecimalJSONResponse(body, status_code=500)

    def answer(result: tuple[int, dict]) -> Response:
        status, body = result
        return DecimalJSONResponse(body, status_code=status)

    async def run(
        model: type[Model], request: Request, action: Callable[[Model], Awaitable[tuple[int, dict]]]
    ) -> Response:
        parsed = await read_model(request, model, max_bytes)
        return answer(await action(parsed))

    @app.post(
        "/v1/receipts",
        status_code=201,
        openapi_extra=_body_schema(ReceiptRequest),
        summary="Issue an 11.1 receipt or 11.4 credit",
    )
    async def issue_receipt(request: Request) -> Response:
        return await run(ReceiptRequest, request, services.issuing.issue_receipt)

    @app.post(
        "/v1/pos-receipts",
        status_code=201,
        openapi_extra=_body_schema(PosReceiptRequest),
        summary="Issue an 8.4/8.5 POS receipt",
    )
    async def issue_pos_receipt(request: Request) -> Response:
        return await run(PosReceiptRequest, request, services.issuing.issue_pos_receipt)

    @app.post(
        "/v1/payments/sign",
        status_code=201,
        openapi_extra=_body_schema(PaymentSignRequest),
        summary="Provider signature before charging a card",
    )
    async def sign_payment(request: Request) -> Response:
        return await run(PaymentSignRequest, request, services.cards.sign)

    @app.post(
        "/v1/receipts/{receipt_id}/payments",
        status_code=201,
        openapi_extra=_body_schema(ReceiptPaymentRequest),
        summary="Card payment on a MARKed receipt",
    )
    async def pay_receipt(receipt_id: int, request: Request) -> Response:
        parsed = await read_model(request, ReceiptPaymentRequest, max_bytes)
        return answer(await services.cards.pay_receipt(receipt_id, parsed))

    @app.get("/v1/receipts/{receipt_id}")
    async def get_receipt(receipt_id: int) -> Response:
        doc = store.get_document(rt.conn, receipt_id)
        if doc is None:
            raise ApiError(404, "receipt_not_found", f"no receipt {receipt_id}")
        return DecimalJSONResponse(document_answer(rt, doc))

    @app.get("/v1/receipts")
    async def list_receipts(state: str | None = None, limit: int = 50, offset: int = 0) -> Response:
        states = {s.value for s in store.DocumentState}
        if state is not None and state not in states:
            raise ApiError(
                422,
                "invalid_request",
                f"state must be one of {sorted(states)}",
                [FieldProblem("state", "unknown state")],
            )
        if not 1 <= limit <= 500 or offset < 0:
            raise ApiError(
                422,
                "invalid_request",
                "limit must be 1-500 and offset >= 0",
                [FieldProblem("limit", "out of range")],
            )
        docs = store.list_documents(
            rt.conn, state=store.DocumentState(state) if state else None, limit=limit, offset=offset
        )
        return DecimalJSONResponse({"receipts": [document_answer(rt, doc) for doc in docs]})

    @app.post(
        "/v1/receipts/{receipt_id}/print",
        status_code=201,
        openapi_extra=_body_schema(PrintRequest),
        summary="Reprint as a copy (ΑΝΤΙΓΡΑΦΟ)",
    )
    async def reprint(receipt_id: int, request: Request) -> Response:
        parsed = await read_model(request, PrintRequest, max_bytes)
        digest = request_hash(parsed)
        replay = remembered_answer(rt.conn, parsed.request_id, digest, document_id=receipt_id)
        if replay is not None:
            return answer(replay)
        doc = store.get_document(rt.conn, receipt_id)
        if doc is None or doc.payload is None:
            raise ApiError(404, "receipt_not_found", f"no issued receipt {receipt_id}")
        now = rt.clock()
        with store.transaction(rt.conn):
            job_id = queue_print(rt, doc, copy=True)
            body = {"receipt_id": doc.id, "print_job_id": job_id, "copy": True, "state": "queued"}
            store.remember_request(
                rt.conn,
                request_id=parsed.request_id,
                endpoint="receipts/print",
                body_hash=digest,
                status_code=201,
                response=body,
                document_id=doc.id,
                now=now,
            )
        rt.notify_printer()
        return DecimalJSONResponse(body, status_code=201)

    @app.post("/v1/sync")
    async def sync_now() -> Response:
        if rt.breaker.is_open:
            await services.sync.probe()
        report = await services.sync.run(ignore_backoff=True)
        return DecimalJSONResponse(report.as_dict())

    @app.get("/v1/status")
    async def status() -> Response:
        return DecimalJSONResponse(await services.status())

    @app.get("/v1/health")
    async def health() -> Response:
        return DecimalJSONResponse(
            {"status": "ok", "version": __version__, "breaker": rt.breaker.state.value}
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        services.refresh_gauges()
        return Response(rt.metrics.exposition(), media_type="text/plain; version=0.0.4")

    return app
