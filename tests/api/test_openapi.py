"""The OpenAPI document: valid OpenAPI 3.1 (openapi-spec-validator), a schema for every answer
of every operation, request examples the request models accept, and docs/api.md written from
it and current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from agent.api.examples import REQUEST_EXAMPLES
from agent.api.openapi import ERROR_STATUSES, IDEMPOTENCY
from agent.core.closings import ClosingRequest
from agent.core.reconcile import ReconcileRequest
from agent.fiscal.orders import (
    CancelOrderRequest,
    CancelProviderOrderRequest,
    CloseTableRequest,
    DrawerOpenRequest,
    OrderRequest,
)
from agent.fiscal.receipt_model import (
    IrisPaymentRequest,
    PaymentSignRequest,
    PosReceiptRequest,
    PrintRequest,
    ReceiptPaymentRequest,
    ReceiptRequest,
)
from agent.tools.api_doc import local_api_document, render

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return local_api_document()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_status_of_every_operation_has_a_schema(document: dict[str, Any]) -> None:
    found = operations(document)
    assert len(found) >= 18
    for method, path, operation in found:
        statuses = set(operation["responses"])
        assert statuses & {"200", "201"}, f"{method} {path}: no success answer"
        assert {"401", "500", "503"} <= statuses, f"{method} {path}: {sorted(statuses)}"
        for status, response in operation["responses"].items():
            assert response["description"], f"{method} {path} {status}"
            for media in response["content"].values():
                assert media["schema"], f"{method} {path} {status}: no schema"
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path}"
                assert response["description"] == ERROR_STATUSES[int(status)]


def test_every_json_answer_names_its_model(document: dict[str, Any]) -> None:
    """Only /openapi.json itself (a free-form object) and /metrics (text) have no model."""
    untyped = []
    for method, path, operation in operations(document):
        for status in ("200", "201"):
            content = operation["responses"].get(status, {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if schema is not None and "$ref" not in schema:
                untyped.append(f"{method} {path}")
    assert untyped == ["GET /openapi.json"]


def test_calls_with_a_request_id_state_the_idempotency_rule(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for method, path, operation in operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        name = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        if "request_id" in schemas[name]["properties"]:
            assert operation["description"] == IDEMPOTENCY, f"{method} {path}"
            assert "request_id" in schemas[name]["required"]
    assert IDEMPOTENCY in document["info"]["description"]


MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/v1/receipts"): ReceiptRequest,
    ("POST", "/v1/pos-receipts"): PosReceiptRequest,
    ("POST", "/v1/payments/sign"): PaymentSignRequest,
    ("POST", "/v1/payments/iris"): IrisPaymentRequest,
    ("POST", "/v1/receipts/{receipt_id}/payments"): ReceiptPaymentRequest,
    ("POST", "/v1/receipts/{receipt_id}/print"): PrintRequest,
    ("POST", "/v1/orders"): OrderRequest,
    ("POST", "/v1/orders/{order_id}/cancel"): CancelOrderRequest,
    ("POST", "/v1/provider-orders/{mark}/cancel"): CancelProviderOrderRequest,
    ("POST", "/v1/tables/{table}/close"): CloseTableRequest,
    ("POST", "/v1/drawer/open"): DrawerOpenRequest,
    ("POST", "/v1/closings"): ClosingRequest,
    ("POST", "/v1/reconcile"): ReconcileRequest,
}


def test_every_request_body_has_an_example_its_model_accepts(document: dict[str, Any]) -> None:
    with_body = {
        (method, path): operation["requestBody"]["content"]["application/json"]
        for method, path, operation in operations(document)
        if "requestBody" in operation
    }
    assert set(with_body) == set(REQUEST_EXAMPLES)
    for key, media in with_body.items():
        assert "example" in media, key
        MODELS[key].model_validate(REQUEST_EXAMPLES[key])


def test_docs_api_md_is_current(document: dict[str, Any]) -> None:
    """After changing a route or a model: `pos-agent api-doc` rewrites docs/api.md."""
    assert API_MD.read_text(encoding="utf-8") == render(document), (
        "docs/api.md is stale: run `pos-agent api-doc`"
    )


def test_every_link_names_an_operation_and_its_parameters(document: dict[str, Any]) -> None:
    """The links (what a till calls next with an answer) drive the stateful contract test."""
    by_id = {operation["operationId"]: operation for _, _, operation in operations(document)}
    assert len(by_id) == len(operations(document)), "operationId not unique"
    names = []
    for method, path, operation in operations(document):
        for response in operation["responses"].values():
            for name, link in response.get("links", {}).items():
                target = by_id[link["operationId"]]
                declared = {p["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= declared, f"{method} {path} {name}"
                names.append(name)
    assert {"ReadReceipt", "ReprintReceipt", "ReadTable", "CancelOrder", "CloseTable"} <= set(names)
