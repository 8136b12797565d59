"""What one sync run did: totals and one line per document sent.

The daemon answers `POST /v1/sync` with it, and `pos-agent sync` and the demo read it back with
`SyncReport.model_validate_json`: the same typed object on both sides of the socket.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from agent.core.report import Report


class SyncedDocument(BaseModel):
    receipt_id: int
    series: str
    number: int
    state: str
    mark: int | None
    last_error: str | None  # why it is still waiting (None once accepted)


class SyncReport(Report):
    """`stopped_early`: the provider became unreachable again and the rest waits for later.
    `altered`: documents not sent because their payload no longer matches its journal record."""

    attempted: int = 0
    accepted: int = 0
    still_delayed: int = 0
    rejected: int = 0
    stopped_early: bool = False
    altered: list[int] = Field(default_factory=list)
    documents: list[SyncedDocument] = Field(default_factory=list)
