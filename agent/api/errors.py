"""The local API's error body (DESIGN §3): 4xx for the caller's mistakes, 5xx only for ours.

`{"error": {"code": ..., "message": ..., "fields": [{"path": "lines[2].vat_category", ...}]}}`
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([a-z_][a-z_.\[\]0-9]*): (.+)$", re.DOTALL)


@dataclass(frozen=True)
class FieldProblem:
    path: str
    message: str


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str
    fields: list[FieldProblem] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = [{"path": f.path, "message": f.message} for f in self.fields]
        error.update(self.extra)
        return {"error": error}


def field_path(location: tuple[int | str, ...]) -> str:
    """`('lines', 2, 'vat_category')` → `lines[2].vat_category`."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def from_validation_error(exc: ValidationError) -> ApiError:
    """Name every field and rule; model-level rules carry their field as `name: message`."""
    problems: list[FieldProblem] = []
    for err in exc.errors(include_url=False):
        location = tuple(p for p in err["loc"] if not str(p).startswith("function-after"))
        path = field_path(location)
        message = str(err["msg"])
        prefixed = _FIELD_PREFIX.match(message)
        if prefixed and err["type"] == "value_error":
            inner, message = prefixed.group(1), prefixed.group(2)
            path = f"{path}.{inner}" if path else inner
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        problems.append(FieldProblem(path=path or "(body)", message=message))
    summary = "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
    return ApiError(422, "invalid_request", f"the request is invalid: {summary}", problems)
