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
from agent.api.errors import ApiError

Answer = tuple[int, dict[str, Any]]


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


def conflict(request_id: str) -> ApiError:
    return ApiError(
        409,
        "request_id_reused",
        f"request_id {request_id!r} was already used with a different body; "
        "use a new request_id for a new document",
    )


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
        raise conflict(request_id)
    return stored.status_code, stored.response


def remember_created(
    conn: sqlite3.Connection,
    *,
    request_id: str,
    endpoint: str,
    digest: str,
    answer: dict[str, Any],
    document_id: int,
    now: datetime,
) -> Answer:
    """Inside the caller's transaction: store the 201 answer a replay will return, and return it."""
    store.remember_request(
        conn,
        request_id=request_id,
        endpoint=endpoint,
        body_hash=digest,
        status_code=201,
        response=answer,
        document_id=document_id,
        now=now,
    )
    return 201, answer
