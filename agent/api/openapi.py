"""The OpenAPI document of the local API, built from the route table, its request models and its
answer models, so a client an integrator generates matches what the daemon accepts and answers.

Every operation lists its request body (with an example), its success answers and every error
status it can give, all with schemas; the error body has one shape. `tests/api/test_openapi.py`
validates the document (openapi-spec-validator) and runs schemathesis against the app with it;
`pos-agent api-doc` writes docs/api.md from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from agent import __version__
from agent.api.examples import REQUEST_EXAMPLES
from agent.api.routing import Route

REF = "#/components/schemas/{model}"

IDEMPOTENCY = (
    "Every call that changes something carries a `request_id` (1-64 letters, digits, `.`, `_`, "
    "`-`, unique per register). The same `request_id` with the same body returns the first "
    "answer (`200` for a document, the first `201` otherwise) and never issues, prints or "
    "charges twice: retry freely after a timeout. The same `request_id` with another body is "
    "`409 request_id_reused`. Bodies are compared as validated values (`2.5` and `2.50` are the "
    "same amount; key order and whitespace do not matter)."
)

DESCRIPTION = (
    "The receipt-signing agent's local API, on its Unix socket (and, with a bearer token, on "
    "loopback TCP). Bodies are JSON objects; amounts are exact decimal numbers, never floats. "
    "A refusal is a 4xx that names each field and rule and changes nothing; a 5xx is a fault of "
    "the agent (500), an unusable provider answer (502) or a service that cannot act now "
    "(503, with what to do).\n\n" + IDEMPOTENCY
)

ERROR_STATUSES: dict[int, str] = {
    400: "The body is not UTF-8 JSON, not an object, or nested too deeply",
    401: "On the TCP port without the bearer token",
    404: "The receipt, order or table named in the path does not exist",
    409: "A conflict with what the agent holds (`request_id_reused`, an expired signature, an "
    "order without its MARK yet, …); `error.code` says which",
    413: "The body is larger than `api.max_body_bytes`",
    422: "The request breaks a rule; `error.fields` names each field and rule",
    500: "A fault of the agent itself (logged with its traceback)",
    502: "The provider answered something the agent cannot use; nothing was recorded as done",
    503: "The agent cannot act now (storage unavailable or busy, database rolled back, provider "
    "unreachable for a card payment); nothing was issued; retry the same `request_id`",
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The one error shape of the local API. `POST /v1/payments/sign` adds "
    '`"mode": "autonomous"` and the `reason` the terminal records when the provider cannot sign.',
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["invalid_request"]},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["path", "message"],
                        "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
            "additionalProperties": True,
        },
        "mode": {"type": "string", "enum": ["autonomous"]},
        "reason": {"type": "string"},
    },
    "examples": [
        {
            "error": {
                "code": "invalid_request",
                "message": "the request is invalid: lines[0].vat_category: unknown VAT category 9",
                "fields": [{"path": "lines[0].vat_category", "message": "unknown VAT category 9"}],
            }
        }
    ],
}


def _error_statuses(route: Route) -> list[int]:
    has_path = "{" in route.template
    statuses = {401, 500, 503}
    if has_path or route.query:
        statuses |= {422}
    if has_path:
        statuses |= {404}
    if route.method == "POST":
        statuses |= {409, 413, 422, 502}
        if route.body_model is not None:
            statuses |= {400}
    return sorted(statuses)


def _ref(model: type[BaseModel], schemas: dict[tuple[Any, JsonSchemaMode], Any]) -> Any:
    mode: JsonSchemaMode = "serialization"
    return schemas.get((model, mode)) or schemas[(model, "validation")]


def _success(
    route: Route, schemas: dict[tuple[Any, JsonSchemaMode], Any]
) -> dict[str, dict[str, Any]]:
    content: dict[str, Any]
    if route.content_type != "application/json":
        content = {route.content_type: {"schema": {"type": "string"}}}
    elif route.response_model is not None:
        content = {"application/json": {"schema": _ref(route.response_model, schemas)}}
    else:
        content = {"application/json": {"schema": {"type": "object"}}}
    descriptions = {
        201: "Done: issued, signed, queued or recorded",
        200: "The answer"
        if route.method == "GET" or 201 not in route.success
        else "A replay (the same `request_id` and body): the first answer, nothing done again",
    }
    responses: dict[str, dict[str, Any]] = {
        str(status): {"description": descriptions[status], "content": content}
        for status in route.success
    }
    if route.links:
        links = {name: link for name, link in route.links}
        for status in route.success:
            responses[str(status)]["links"] = links
    return responses


def _operation(route: Route, schemas: dict[tuple[Any, JsonSchemaMode], Any]) -> dict[str, Any]:
    responses: dict[str, Any] = _success(route, schemas)
    for status in _error_statuses(route):
        responses[str(status)] = {
            "description": ERROR_STATUSES[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "responses": responses,
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in route.path_parameters()
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in route.query
    ]
    if parameters:
        operation["parameters"] = parameters
    model = route.body_model
    if model is not None:
        media: dict[str, Any] = {"schema": schemas[(model, "validation")]}
        example = REQUEST_EXAMPLES.get((route.method, route.template))
        if example is not None:
            media["example"] = example
        operation["requestBody"] = {"required": True, "content": {"application/json": media}}
        if "request_id" in model.model_fields:
            operation["description"] = IDEMPOTENCY
    return operation


@cache
def _document(routes: tuple[Route, ...]) -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for route in routes:
        if route.body_model is not None:
            wanted.append((route.body_model, "validation"))
        if route.response_model is not None:
            wanted.append((route.response_model, "serialization"))
    schemas, definitions = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pos-agent local API",
            "version": __version__,
            "description": DESCRIPTION,
        },
        "paths": paths,
        "components": {"schemas": {**definitions.get("$defs", {}), "Error": ERROR_SCHEMA}},
    }


def openapi_document(routes: Iterable[Route]) -> dict[str, Any]:
    return _document(tuple(routes))
