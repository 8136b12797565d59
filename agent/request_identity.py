"""Idempotency: the same `request_id` with the same body replays the first answer; with another
body it is a conflict. The hash is over the canonical validated request, so key order and
whitespace in the POS's JSON do not matter."""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from pydantic import BaseModel

import offline_store as store
from agent.api_errors import ApiError


def request_hash(request: BaseModel) -> str:
    return hashlib.sha256(request.model_dump_json().encode("utf-8")).hexdigest()


def conflict(request_id: str) -> ApiError:
    return ApiError(
        409,
        "request_id_reused",
        f"request_id {request_id!r} was already used with a different body; "
        "use a new request_id for a new document",
    )


def remembered_answer(
    conn: sqlite3.Connection, request_id: str, digest: str, *, document_id: int | None = None
) -> tuple[int, dict[str, Any]] | None:
    """The stored answer of a call that created no document (sign, payment, reprint), or None.
    `document_id`, when given, must match too: a reprint id reused for another receipt is a
    conflict."""
    stored = store.find_request(conn, request_id)
    if stored is None:
        return None
    if stored.body_hash != digest or (
        document_id is not None and stored.document_id != document_id
    ):
        raise conflict(request_id)
    return stored.status_code, stored.response
