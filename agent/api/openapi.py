"""The OpenAPI document of the local API, built from the route table and the request models,
so an integrator's generated client always matches what the daemon accepts."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic import BaseModel

from agent import __version__
from agent.api.routing import Route

_ERROR = {
    "description": "The request was refused; `error.fields` names each field and rule",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        }
    },
}


def _operation(route: Route) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "Success"}
    answer = route.response_model
    if answer is not None and issubclass(answer, BaseModel):
        success["content"] = {"application/json": {"schema": answer.model_json_schema()}}
    operation: dict[str, Any] = {
        "summary": route.summary,
        "responses": {"200" if route.method == "GET" else "201": success, "4XX": _ERROR},
    }
    names = [part[1:-1] for part in route.template.split("/") if part.startswith("{")]
    if names:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
            for name in names
        ]
    model = route.body_model
    if model is not None and issubclass(model, BaseModel):
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    return operation


@cache
def _document(routes: tuple[Route, ...]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "pos-agent local API", "version": __version__},
        "paths": paths,
        "components": {"schemas": {"Error": _ERROR_SCHEMA}},
    }


def openapi_document(routes: Iterable[Route]) -> dict[str, Any]:
    return _document(tuple(routes))
