"""The local API against its own OpenAPI document, tested by a tool that did not write either:
schemathesis generates requests for every operation from the document the daemon serves and
checks each answer: never a 5xx, a documented status, the documented content type, a body that
matches the status's schema.

The daemon and the sandbox provider run as real processes (one pair for the module); requests go
over the daemon's Unix socket. The examples are bounded (derandomized, `MAX_EXAMPLES` per
operation) so the run stays within about a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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

from agent.tools.local_stack import LocalStack, StackSettings, cash_receipt, post_json

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
        content = json.dumps(request["json"]).encode()
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
