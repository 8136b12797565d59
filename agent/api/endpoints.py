"""A route table's row and what its handlers share: reading a body as its model, and answering
a use case's `Answer`. The tables themselves are module-level tuples of `Endpoint` beside their
handlers (`app.py`: receipts, payments, service; `tables.py`: food service; `closing.py`: the
day), bound to the services once by `create_app`.

Bodies are parsed here: JSON numbers become `Decimal` (money never passes through float), the
size is capped before parsing, and every validation problem comes back as a 4xx that names the
field and the rule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent.api.errors import ApiError, FieldProblem, from_validation_error
from agent.api.routing import Request, Response, Router
from agent.core.request_identity import Answer
from agent.core.services import Services
from agent.json_codec import loads

Model = TypeVar("Model", bound=BaseModel)
UNREADABLE_JSON = (RecursionError, ValueError)  # ValueError covers UnicodeDecodeError
ISSUED = (201, 200)  # a document: 201 issued, 200 the same request_id's document again


def parse_model(raw: bytes, model: type[Model]) -> Model:
    try:
        data = loads(raw)
    except UNREADABLE_JSON as exc:
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


async def read(services: Services, request: Request, model: type[Model]) -> Model:
    """The body parsed as `model`, refused past `api.max_body_bytes` before parsing."""
    return parse_model(await request.body(services.runtime.config.api.max_body_bytes), model)


def answered(answer: Answer[Model]) -> Response:
    """201 when this call created the answer, 200 when it found it (a document's replay)."""
    return Response.model(answer.body, 201 if answer.created else 200)


@dataclass(frozen=True)
class Endpoint:
    """One row of a route table: what `Router.add` needs, with the handler still unbound."""

    method: str
    path: str
    handler: Callable[[Services, Request], Awaitable[Response]]
    summary: str
    body: type[BaseModel] | None = None
    answer: type[BaseModel] | None = None
    success: tuple[int, ...] | None = None
    query: dict[str, dict[str, Any]] | None = None
    path_schemas: dict[str, dict[str, Any]] | None = None
    content_type: str = "application/json"
    links: dict[str, dict[str, Any]] | None = None


def add_endpoints(router: Router, services: Services, endpoints: tuple[Endpoint, ...]) -> None:
    for e in endpoints:
        router.add(
            e.method,
            e.path,
            partial(e.handler, services),
            e.summary,
            e.body,
            e.answer,
            success=e.success,
            query=e.query,
            path_schemas=e.path_schemas,
            content_type=e.content_type,
            links=e.links,
        )
