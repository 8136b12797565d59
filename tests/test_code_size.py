"""Size limits that keep the code readable: no module under agent/ over 600 lines, no function
over 80 lines outside the tooling (agent/tools: benchmarks, chaos, demo, whose scenarios read
best as one long story). A module that grows past the limit is split by role; a function, by
step."""

from __future__ import annotations

import ast
from pathlib import Path

AGENT = Path(__file__).resolve().parents[1] / "agent"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def sources() -> list[Path]:
    found = sorted(AGENT.rglob("*.py"))
    assert len(found) > 50, "agent/ not found"
    return found


def test_no_module_is_over_600_lines() -> None:
    long = {
        str(path.relative_to(AGENT.parent)): lines
        for path in sources()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_outside_the_tools_is_over_80_lines() -> None:
    long = {}
    for path in sources():
        if path.relative_to(AGENT).parts[0] == "tools":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(AGENT.parent)}:{node.lineno} {node.name}"] = lines
    assert long == {}
