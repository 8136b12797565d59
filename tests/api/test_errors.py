"""Domain errors reach the POS as one status and one code each, mapped in one table."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import agent.core
import agent.fiscal
from agent.api.errors import ERROR_CODES, from_domain_error
from agent.core.errors import PaymentNotSent, RequestIdReused, SignedTotalDiffers
from agent.fiscal.errors import DomainError, FieldProblem


def every_domain_error() -> set[type[DomainError]]:
    """Each DomainError subclass defined anywhere in `agent.fiscal` and `agent.core`."""
    for package in (agent.fiscal, agent.core):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            importlib.import_module(info.name)
    found: set[type[DomainError]] = set()
    pending = [DomainError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.add(sub)
            pending.append(sub)
    return found


def test_every_domain_error_has_a_status_and_a_code() -> None:
    missing = sorted(cls.__name__ for cls in every_domain_error() - set(ERROR_CODES))
    assert missing == []


def test_codes_are_unique_and_statuses_are_errors() -> None:
    """A refinement may answer with its parent's code (the till handles both alike); any other
    two errors sharing a code would be indistinguishable to the POS."""
    owners: dict[str, type[DomainError]] = {}
    for cls, (status, code) in ERROR_CODES.items():
        assert 400 <= status < 600
        other = owners.setdefault(code, cls)
        assert other is cls or issubclass(cls, other) or issubclass(other, cls), (cls, other)


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (
            RequestIdReused("r-1"),
            409,
            {
                "error": {
                    "code": "request_id_reused",
                    "message": "request_id 'r-1' was already used with a different body; "
                    "use a new request_id for a new document",
                }
            },
        ),
        (
            SignedTotalDiffers("total differs", [FieldProblem("lines", "changed")]),
            409,
            {
                "error": {
                    "code": "signed_total_differs",
                    "message": "total differs",
                    "fields": [{"path": "lines", "message": "changed"}],
                }
            },
        ),
        (
            PaymentNotSent("timeout"),
            503,
            {
                "error": {
                    "code": "provider_unreachable",
                    "message": "the payment could not be sent to the provider now (timeout); "
                    "retry with the same request_id",
                    "retryable": True,
                }
            },
        ),
    ],
)
def test_domain_error_becomes_the_documented_body(
    error: DomainError, status: int, body: dict[str, object]
) -> None:
    api_error = from_domain_error(error)
    assert (api_error.status, api_error.body()) == (status, body)
