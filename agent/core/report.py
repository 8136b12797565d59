"""The base of the reports the API sends whole (X/Z, reconciliation, sync, status).

A till's answer (`request_identity.wire`) leaves optional fields out and keeps amounts exact
JSON numbers; a report is read by people and monitoring as a document: every field present,
amounts as the decimal strings and times as the ISO strings its schema names (pydantic's JSON
mode). The form belongs to the model, so the edge serialises every answer the same way, once.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Report(BaseModel):
    def as_json(self) -> dict[str, Any]:
        """The wire form: every field, in JSON mode."""
        return self.model_dump(mode="json")
