"""Idempotency: the same `request_id` with the same body replays the first answer; with another
body it is a conflict. The hash is over the canonical validated request, so key order and
whitespace in the POS's JSON do not matter."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

import offline_store as store
from agent.core.errors import RequestIdReused

# The store's `requests.status_code` column records a remembered answer as HTTP's 201 Created;
# the use cases only ever remember answers that created something.
CREATED_STATUS = 201


@dataclass(frozen=True)
class Answer:
    """What a use case gives its caller: the body, and whether this call created it. A replay
    of a creating call is `created` again: it returns the first call's answer as it was."""

    body: dict[str, Any]
    created: bool


@dataclass(frozen=True)
class CanonicalRequest:
    """The request as stored with its document and the hash of exactly that text."""

    json: str
    digest: str


def canonical(request: BaseModel) -> CanonicalRequest:
    """One dump serves both the stored request and its hash (the till's hot path)."""
    text = request.model_dump_json()
    return CanonicalRequest(text, hashlib.sha256(text.encode("utf-8")).hexdigest())


def request_hash(request: BaseModel) -> str:
    return canonical(request).digest


def remembered_answer(
    conn: sqlite3.Connection, request_id: str, digest: str, *, document_id: int | None = None
) -> Answer | None:
    """The stored answer of a call that created no document (sign, payment, reprint), or None.
    `document_id`, when given, must match too: an id reused for another receipt in the URL is a
    conflict, not that receipt's answer."""
    stored = store.find_request(conn, request_id)
    if stored is None:
        return None
    if stored.body_hash != digest or (
        document_id is not None and stored.document_id != document_id
    ):
        raise RequestIdReused(request_id)
    return Answer(stored.response, created=stored.status_code == CREATED_STATUS)


def remember_created(
    conn: sqlite3.Connection,
    *,
    request_id: str,
    endpoint: str,
    digest: str,
    answer: dict[str, Any],
    document_id: int | None,
    now: datetime,
) -> Answer:
    """Inside the caller's transaction: store the 201 answer a replay will return, and return it."""
    store.remember_request(
        conn,
        request_id=request_id,
        endpoint=endpoint,
        body_hash=digest,
        status_code=CREATED_STATUS,
        response=answer,
        document_id=document_id,
        now=now,
    )
    return Answer(answer, created=True)
