"""Who may import whom: the contracts in pyproject.toml's `[tool.importlinter]`, checked by
`lint-imports` (import-linter), one contract per rule with its reason as the guidance.

This file holds what import-linter cannot say about its own configuration:

- the repository keeps its contracts (`lint-imports` passes);
- every place on the map has a rule: each `agent/<package>/` and each base module
  (`agent/<name>.py` but the entry points) is named by some contract, so a new directory cannot
  grow without one;
- every contract can fail: a copy of the tree with one forbidden import per contract (a
  function-local import and a `TYPE_CHECKING` import among them) breaks each contract, and each
  one reports its own offender.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "offline_store", "printers")
ENTRY_POINTS = frozenset({"__init__", "__main__", "cli"})
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return found


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the tree under `root` (its pyproject.toml, its packages first on the
    path), without the cache so that a copied tree is read afresh."""
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "400", "NO_COLOR": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def governed(contract: dict[str, Any]) -> set[str]:
    """The modules a contract constrains as importers (or, for `protected`, as importees)."""
    keys = ("source_modules", "ancestors", "protected_modules", "layers", "modules")
    return {name for key in keys for name in contract.get(key, ())}


def test_the_repository_keeps_its_import_contracts() -> None:
    result = lint_imports(REPO_ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts())} kept, 0 broken." in result.stdout


def test_every_agent_package_and_base_module_has_a_contract() -> None:
    """A new entry on the map gets a rule before it grows."""
    named = set().union(*(governed(c) for c in contracts()))
    agent = REPO_ROOT / "agent"
    places = {f"agent.{d.name}" for d in agent.iterdir() if (d / "__init__.py").is_file()}
    places |= {f"agent.{f.stem}" for f in agent.glob("*.py") if f.stem not in ENTRY_POINTS}
    assert "agent.core" in places and "agent.config" in places, "is REPO_ROOT right?"
    assert sorted(places - named - {"agent"}) == []
    assert {"offline_store", "printers"} <= named


# One forbidden import per contract: (contract id, file, source, the importer lint-imports names).
OFFENDERS: tuple[tuple[str, str, str, str], ...] = (
    (
        "base-imports-only-base",
        "agent/secrets.py",
        "\nimport agent.core.issuing\n",
        "agent.secrets",
    ),
    ("fiscal-stands-alone", "agent/fiscal/bad_fiscal.py", "import offline_store\n", "bad_fiscal"),
    (
        "elise-knows-only-fiscal",
        "agent/elise/bad_elise.py",
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from agent.core import issuing\n",
        "bad_elise",
    ),
    (
        "core-knows-no-delivery",
        "agent/core/bad_core.py",
        "from agent.api.app import create_app\n",
        "bad_core",
    ),
    (
        "api-goes-through-core",
        "agent/api/bad_api.py",
        "def app():\n    import offline_store.database\n",
        "bad_api",
    ),
    (
        "daemon-carries-no-tooling",
        "agent/daemon/bad_daemon.py",
        "from agent.commands import doctor\n",
        "bad_daemon",
    ),
    (
        "commands-are-read-only",
        "agent/commands/bad_commands.py",
        "from agent.core.issuing import IssuingService\n",
        "bad_commands",
    ),
    (
        "only-tooling-imports-tooling",
        "agent/core/bad_tooling.py",
        "from agent.tools import bench\n",
        "bad_tooling",
    ),
    (
        "sandbox-is-self-contained",
        "agent/sandbox/bad_sandbox.py",
        "from agent.elise.client import EliseClient\n",
        "bad_sandbox",
    ),
    (
        "offline-store-stands-alone",
        "offline_store/bad_store.py",
        "from agent.config import AgentConfig\n",
        "bad_store",
    ),
    ("printers-stand-alone", "printers/bad_printers.py", "import offline_store\n", "bad_printers"),
    (
        "no-import-circles",
        "agent/core/bad_circle.py",
        "from agent.core import bad_circle_back\n",
        "bad_circle",
    ),
    (
        "no-import-circles",
        "agent/core/bad_circle_back.py",
        "from agent.core import bad_circle\n",
        "bad_circle",
    ),
)


def broken_sections(output: str, names: dict[str, str]) -> dict[str, str]:
    """Each broken contract's section of the report, by contract id."""
    report = output.split("Broken contracts", 1)[-1]
    heading = re.compile(
        r"^(" + "|".join(re.escape(n) for n in names.values()) + r")\n-+\n", re.MULTILINE
    )
    parts = heading.split(report)
    by_name = dict(zip(parts[1::2], parts[2::2], strict=True))
    return {cid: by_name[name] for cid, name in names.items() if name in by_name}


def test_every_contract_catches_its_own_offender(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(
            REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    for _, path, source, _ in OFFENDERS:
        with (tmp_path / path).open("a", encoding="utf-8") as handle:
            handle.write(source)

    result = lint_imports(tmp_path)

    names = {c["id"]: c["name"] for c in contracts()}
    assert set(names) == {cid for cid, *_ in OFFENDERS}, "a contract without an offender here"
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Contracts: 0 kept, {len(names)} broken." in result.stdout, result.stdout
    sections = broken_sections(result.stdout, names)
    for cid, _, _, importer in OFFENDERS:
        assert importer in sections[cid], f"{cid} did not name {importer}:\n{sections[cid]}"
