"""offline_store sits below the daemon: it must never import `agent` or `printers` (DESIGN §1)."""

import ast
from pathlib import Path

import offline_store

FORBIDDEN = {"agent", "printers"}


def test_offline_store_imports_neither_agent_nor_printers():
    package = Path(offline_store.__file__).parent
    offenders = []
    for source in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{source.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
