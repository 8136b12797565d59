"""Idempotency: the same `request_id` with the same body replays the first answer; with another
body it is a conflict. The hash is over the canonical validated request, so key order and
whitespace in the POS's JSON do not matter."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

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
