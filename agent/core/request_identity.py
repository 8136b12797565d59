"""Idempotency: the same `request_id` with the same body replays the first answer; with another
body it is a conflict. The hash is over the canonical validated request, so key order and
whitespace in the POS's JSON do not matter, and amounts count by value: `2.50` and `2.5` are the
same amount (pydantic keeps a Decimal's exponent, so the dump alone would tell them apart)."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

import offline_store as store
from agent.core.errors import RequestIdReused
from agent.core.report import Report
from agent.json_codec import dumps, dumps_by_value

Body = TypeVar("Body")
Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Answer(Generic[Body]):
    """What a use case gives its caller: the body, and whether this call created it. A replay
    of a creating call is `created` again: it returns the first call's answer as it was.
    The body is the answer's model; the edge serialises it once (`wire`)."""

    body: Body
    created: bool


def wire(model: BaseModel) -> dict[str, Any]:
    """The answer as it goes out and as it is remembered for a replay: field names as the API
    spells them, optional fields absent rather than null, amounts still `Decimal`; a report
    in its own form (`Report.as_json`)."""
    if isinstance(model, Report):
        return model.as_json()
    return model.model_dump(by_alias=True, exclude_unset=True)


@dataclass(frozen=True)
class CanonicalRequest:
    """The request as stored with its document and the hash of exactly that text."""

    json: str
    digest: str


# Optional request fields added after requests were first stored: left out of the digest while
# unset, so a request answered before an upgrade and its replay after it still hash alike (a
# till retrying across the upgrade gets its first answer, not `request_id_reused`).
ADDED_LATER = frozenset({"discount", "table", "correlated_receipt_id", "iris_payment_id"})


def canonical(request: BaseModel) -> CanonicalRequest:
    """The request as the POS wrote it (stored with its document), hashed by value."""
    by_value = dumps_by_value(request.model_dump(), omit_null=ADDED_LATER)
    return CanonicalRequest(request.model_dump_json(), hashlib.sha256(by_value).hexdigest())


def canonical_call(request: BaseModel, **context: str | int) -> CanonicalRequest:
    """A call whose identity includes its URL (the order or table it names), hashed by value
    like `canonical`: a retry that writes `2.5` for `2.50` is the same call."""
    body = {**context, **request.model_dump()}
    text = dumps({**context, **request.model_dump(mode="json")}).decode("utf-8")
    by_value = dumps_by_value(body, omit_null=ADDED_LATER)
    return CanonicalRequest(text, hashlib.sha256(by_value).hexdigest())


def request_hash(request: BaseModel) -> str:
    return canonical(request).digest


def remembered_answer(
    conn: sqlite3.Connection,
    request_id: str,
    digest: str,
    *,
    endpoint: str,
    model: type[Model],
    document_id: int | None = None,
) -> Answer[Model] | None:
    """The stored answer of a call that created no document (sign, payment, reprint, drawer),
    read back as its `model`, or None. The same `request_id` must come back to the same
    `endpoint` with the same body, and `document_id`, when given, must match too: an id reused
    for another call (a reprint's id on the drawer, another receipt in the URL) is a conflict,
    never the other call's answer."""
    stored = store.find_request(conn, request_id)
    if stored is None:
        return None
    if (
        stored.endpoint != endpoint
        or stored.body_hash != digest
        or (document_id is not None and stored.document_id != document_id)
    ):
        raise RequestIdReused(request_id)
    body = model.model_validate(stored.response)
    return Answer(body, created=stored.created)


def remember_created(
    conn: sqlite3.Connection,
    *,
    request_id: str,
    endpoint: str,
    digest: str,
    answer: Model,
    document_id: int | None,
    now: datetime,
    signature_id: int | None = None,
) -> Answer[Model]:
    """Inside the caller's transaction: store the answer of a call that created something, which
    a replay will return, and return it (`signature_id`: the stored signature the answer carries, which it is packed against)."""
    store.remember_request(
        conn,
        request_id=request_id,
        endpoint=endpoint,
        body_hash=digest,
        created=True,
        response=wire(answer),
        document_id=document_id,
        now=now,
        signature_id=signature_id,
    )
    return Answer(answer, created=True)
