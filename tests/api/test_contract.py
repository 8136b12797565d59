"""The local API against its own OpenAPI document, tested by a tool that did not write either:
schemathesis generates requests for every operation from the document the daemon serves and
checks each answer: never a 5xx, a documented status, the documented content type, a body that
matches the status's schema.

The till's chains (a receipt read back and reprinted, sign → issue → the same request again,
an order slip → its table → closing it) follow the document's links from one answer to the next
call, each answer checked the same way.

The daemon and the sandbox provider run as real processes (one pair for the module); requests go
over the daemon's Unix socket. The examples are bounded (derandomized, `MAX_EXAMPLES` per
operation) so the run stays within about a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agent.api.examples import REQUEST_EXAMPLES
from agent.core.answers import DocumentAnswer, SignatureAnswer
from agent.json_codec import dumps
from agent.tools.local_stack import LocalStack, StackSettings, card_payment, cash_receipt, post_json

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    root: Path = tmp_path_factory.mktemp("contract")
    settings_ = StackSettings(food_service=True, cash_drawer="pin2", sync_interval_s=3600)
    with LocalStack(root, settings_) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client(timeout_s=30.0) as opened:
        yield opened


@pytest.fixture(scope="module")
def api_schema(client: httpx.Client) -> Any:
    """The document as the daemon serves it."""
    document = client.get("/openapi.json")
    assert document.status_code == 200, document.text
    return schemathesis.openapi.from_dict(document.json())


def send(client: httpx.Client, case: Any) -> httpx.Response:
    """The generated request over the socket (schemathesis's transport speaks only TCP)."""
    request = case.as_transport_kwargs(base_url="http://agent")
    content = request.get("data")
    if "json" in request:
        content = dumps(request["json"], allow_float=True)
    return client.request(
        request["method"],
        request["url"],
        params=request.get("params") or None,
        headers=request.get("headers") or None,
        content=content,
    )


BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_every_operation_answers_as_documented(api_schema: Any, client: httpx.Client) -> None:
    """Each operation in turn: its documented example first, then generated requests."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 18

    def answers_as_documented(case: Any) -> None:
        case.validate_response(send(client, case), checks=CHECKS)

    for operation in operations:
        for example in operation.get_strategies_from_examples():
            BOUNDED(given(case=example)(answers_as_documented))()
        BOUNDED(given(case=operation.as_strategy())(answers_as_documented))()


def test_a_request_id_answers_only_the_endpoint_it_was_first_sent_to(
    client: httpx.Client,
) -> None:
    """What schemathesis found: a reprint's `request_id` sent to the drawer got the reprint's
    answer back (same body, another endpoint). It is a conflict, and nothing is done."""
    issued = post_json(client, "/v1/receipts", cash_receipt("reuse-receipt"))
    assert issued.status_code == 201, issued.text
    receipt_id = issued.json()["receipt_id"]
    copy = post_json(client, f"/v1/receipts/{receipt_id}/print", {"request_id": "reuse-1"})
    assert copy.status_code == 201, copy.text

    drawer = post_json(client, "/v1/drawer/open", {"request_id": "reuse-1"})

    assert drawer.status_code == 409, drawer.text
    assert drawer.json()["error"]["code"] == "request_id_reused"
    again = post_json(client, f"/v1/receipts/{receipt_id}/print", {"request_id": "reuse-1"})
    assert again.status_code == 201 and again.json() == copy.json()


def call(api_schema: Any, client: httpx.Client, method: str, path: str, **parts: Any) -> Any:
    """One documented call (`path` as the document spells it), its answer checked like the
    generated ones; the answer's JSON."""
    case = api_schema[path][method].Case(**parts)
    response = send(client, case)
    case.validate_response(response, checks=CHECKS)
    return response


def follow(
    api_schema: Any,
    client: httpx.Client,
    source: str,
    answer: Any,
    name: str,
    body: dict[str, Any] | None = None,
) -> Any:
    """The document's link `name` from the answer of `source` (`POST /v1/receipts`): the next
    call, its path parameters taken from the answer as the link's expressions say, with `body`
    if it takes one."""
    paths = api_schema.raw_schema["paths"]
    method, path = source.split(" ")
    link = paths[path][method.lower()]["responses"][str(answer.status_code)]["links"][name]
    target_path, target_method = next(
        (p, m)
        for p, ms in paths.items()
        for m, op in ms.items()
        if op["operationId"] == link["operationId"]
    )
    parameters = {
        key: answer.json()[expression.removeprefix("$response.body#/")]
        for key, expression in link["parameters"].items()
    }
    extra = {} if body is None else {"body": body}
    return call(
        api_schema, client, target_method.upper(), target_path, path_parameters=parameters, **extra
    )


def example(path: str, request_id: str) -> dict[str, Any]:
    """The document's request example under a `request_id` of this test (the generated run
    sends the examples themselves first)."""
    found: dict[str, Any] = json.loads(dumps(REQUEST_EXAMPLES[("POST", path)]))
    return {**found, "request_id": request_id}


def test_the_calls_a_till_chains_answer_as_documented(
    api_schema: Any, client: httpx.Client
) -> None:
    """A till's sequences, each step through the document's links and checked as above: a
    receipt read back and reprinted; a card payment signed, the receipt issued with its
    signature, then the same request again (the first answer, nothing issued twice); an order
    slip's table read and closed."""
    source = "POST /v1/receipts"
    receipt = call(api_schema, client, "POST", "/v1/receipts", body=example("/v1/receipts", "c-1"))
    assert receipt.status_code == 201, receipt.text
    read = follow(api_schema, client, source, receipt, "ReadReceipt")
    assert DocumentAnswer.model_validate(read.json()).uid == receipt.json()["uid"]
    copy = follow(api_schema, client, source, receipt, "ReprintReceipt", {"request_id": "c-2"})
    assert copy.status_code == 201 and copy.json()["copy"] is True

    sign = example("/v1/payments/sign", "c-3")
    signed = call(api_schema, client, "POST", "/v1/payments/sign", body=sign)
    assert signed.status_code == 201, signed.text
    signature = SignatureAnswer.model_validate(signed.json())
    payment = card_payment("16000198", D("5.00"), "000123456789", signed.json())
    card = {"request_id": "c-4", "lines": sign["lines"], "payments": [payment]}
    issued = call(api_schema, client, "POST", "/v1/receipts", body=card)
    assert issued.status_code == 201, issued.text
    assert DocumentAnswer.model_validate(issued.json()).receipt_id == signature.receipt_id
    again = call(api_schema, client, "POST", "/v1/receipts", body=card)
    # The same document, read again: its print job may have moved on from `queued` meanwhile.
    assert again.status_code == 200, again.text
    first, replayed = issued.json(), again.json()
    assert replayed["delivery"]["print"]["job_id"] == first["delivery"]["print"]["job_id"]
    assert {**replayed, "delivery": None} == {**first, "delivery": None}

    order = call(
        api_schema,
        client,
        "POST",
        "/v1/orders",
        body={**example("/v1/orders", "c-5"), "table": "c"},
    )
    assert order.status_code == 201, order.text
    table = follow(api_schema, client, "POST /v1/orders", order, "ReadTable")
    assert table.status_code == 200 and table.json()["table"] == "c"
    close = example("/v1/tables/{table}/close", "c-6")
    closed = follow(api_schema, client, "POST /v1/orders", order, "CloseTable", close)
    assert closed.status_code == 201, closed.text
    assert closed.json()["closes_table"] is True
