"""Domain errors: a request the rules refuse, named by field and rule, with nothing changed.

They know nothing of HTTP: the local API maps each class to its status code and error code in
one table (`agent.api.errors`). `message` is for a person; `fields` names what to correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldProblem:
    path: str
    message: str


class DomainError(Exception):
    """The base of every refusal the rules or the use cases make.

    `detail` carries typed facts for the caller beyond the message (e.g. the stored receipt of a
    rejected document); the API adds them to the error body as they are.
    """

    def __init__(
        self,
        message: str,
        fields: list[FieldProblem] | None = None,
        *,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []
        self.detail = detail or {}


class PaymentsMismatch(DomainError):
    """Payments do not add up to the gross total."""
