"""Shapes of the provider's QA bodies (tests/fiscal/qa_payloads): key paths and JSON types.

The provider matches keys case-insensitively (docs/provider.md §2), so paths are compared folded.
A QA `null` matches any type (the QA sends null where it has nothing); numbers match numbers
(`124` in the QA, `Decimal("12.40")` in ours).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from agent.json_codec import loads

QA = Path(__file__).parent / "qa_payloads"


def qa_body(name: str) -> Any:
    return loads((QA / name).read_bytes())


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"{value!r} is not JSON")


def key_paths(value: Any, prefix: str = "") -> dict[str, str]:
    """Every path (`cardlines[].amount`, keys lower-cased) with its JSON type; array items are
    merged under `[]`."""
    found = {prefix or "$": json_type(value)}
    if isinstance(value, dict):
        for key, item in value.items():
            found |= key_paths(item, f"{prefix}.{key.lower()}" if prefix else key.lower())
    elif isinstance(value, list):
        for item in value:
            found |= key_paths(item, f"{prefix}[]")
    return found


def shape_differences(qa: Any, ours: Any, *, skip: tuple[str, ...] = ()) -> list[str]:
    """QA paths we lack or send with another type (paths under `skip` prefixes excepted)."""
    mine = key_paths(ours)
    problems = []
    for path, kind in key_paths(qa).items():
        if path.startswith(skip):
            continue
        if path not in mine:
            problems.append(f"{path}: missing")
        elif kind != "null" and mine[path] != kind:
            problems.append(f"{path}: {mine[path]}, the QA body sends {kind}")
    return problems
