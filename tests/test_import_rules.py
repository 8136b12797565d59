"""Who may import whom, read from the source with `ast` and checked against one table of rules.

Why the rules exist:

- the directory listing is the product's map: `agent/fiscal` holds the fiscal rules, `agent/core`
  the use cases, `agent/api` the local HTTP surface, `agent/daemon` the process wiring,
  `agent/commands` the technician's screens, `agent/tools` and `agent/sandbox` the tooling, and
  `offline_store` and `printers` the libraries underneath. The map is only true while the imports
  follow it;
- the domain must not know HTTP: fiscal rules and use cases are tested, reused and reasoned about
  without a web framework, an HTTP error type or a request in sight;
- the technician's commands must not write: a command a technician runs on a live till reads the
  store and reports; the core services that issue, sign or sync stay out of reach;
- the daemon must not carry the tooling: bench, chaos, demo and the fake provider ship in the same
  wheel but are never loaded by the process that runs on the till.

Every import statement counts: `import x.y` and `from x.y import z`, relative imports resolved to
absolute names, `from pkg import name` resolved to `pkg.name` when `name` is a submodule, and
imports nested in functions or under `if TYPE_CHECKING:` (they couple the modules all the same).
Only first-party targets (`agent`, `offline_store`, `printers`) are judged; the standard library
and third-party packages are always allowed. Modules loaded by name at run time (`agent.cli` uses
`importlib.import_module` for the command modules) are not import statements and are not seen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("agent", "offline_store", "printers")
ENTRY_POINTS = frozenset({"cli", "__main__"})  # agent/cli.py, agent/__main__.py: not base

# Stands for "a base module": the `agent` package itself (for `__version__`) or `agent/<name>.py`
# other than the entry points (today: clock, config, json_codec, secrets).
BASE = "<base>"


def is_base(module: str, root: Path) -> bool:
    parts = module.split(".")
    if parts[0] != "agent":
        return False
    if len(parts) == 1:
        return True
    return (
        len(parts) == 2
        and parts[1] not in ENTRY_POINTS
        and (root / "agent" / f"{parts[1]}.py").is_file()
    )


def matches(module: str, pattern: str, root: Path) -> bool:
    """`pattern` is BASE or a dotted name covering itself and everything below it."""
    if pattern == BASE:
        return is_base(module, root)
    return module == pattern or module.startswith(pattern + ".")


@dataclass(frozen=True)
class Rule:
    name: str
    why: str
    applies_to: tuple[str, ...]  # the importing modules the rule governs
    may_import: tuple[str, ...] | None = None  # if set: the only first-party targets allowed
    must_not_import: tuple[str, ...] = ()  # first-party targets refused whatever may_import says
    except_in: tuple[str, ...] = ()  # importing modules the rule leaves alone

    def governs(self, importer: str, root: Path) -> bool:
        return any(matches(importer, p, root) for p in self.applies_to) and not any(
            matches(importer, p, root) for p in self.except_in
        )

    def refuses(self, target: str, root: Path) -> bool:
        if target.split(".")[0] not in FIRST_PARTY:
            return False
        if any(matches(target, p, root) for p in self.must_not_import):
            return True
        return self.may_import is not None and not any(
            matches(target, p, root) for p in self.may_import
        )


RULES: tuple[Rule, ...] = (
    Rule(
        name="base-imports-only-base",
        why="config, clock, secrets and the JSON codec sit under every layer; importing them must not drag a layer in",
        applies_to=(BASE,),
        may_import=(BASE, "printers"),  # printers: the config maps printer settings
    ),
    Rule(
        name="fiscal-stands-alone",
        why="fiscal rules are pure: no storage, no printing, no provider, no use case",
        applies_to=("agent.fiscal",),
        may_import=(BASE, "agent.fiscal"),
    ),
    Rule(
        name="elise-knows-only-fiscal",
        why="the provider adapter turns fiscal documents into Elise calls; it does not know who drives it",
        applies_to=("agent.elise",),
        may_import=(BASE, "agent.fiscal", "agent.elise"),
    ),
    Rule(
        name="core-knows-no-delivery",
        why="the domain must not know HTTP, the process wiring, the technician's screens or the tooling",
        applies_to=("agent.core",),
        may_import=(BASE, "agent.fiscal", "agent.elise", "agent.core", "offline_store", "printers"),
    ),
    Rule(
        name="api-goes-through-core",
        why="HTTP handlers call core services; they never reach the store, the provider or the wiring themselves",
        applies_to=("agent.api",),
        may_import=(BASE, "agent.fiscal", "agent.core", "agent.api"),
    ),
    Rule(
        name="daemon-carries-no-tooling",
        why="the daemon is what runs on the till; technician screens, tools and the fake provider stay out of it",
        applies_to=("agent.daemon",),
        must_not_import=("agent.commands", "agent.tools", "agent.sandbox"),
    ),
    Rule(
        name="commands-are-read-only",
        why="technician commands read and report: no core service that writes, no API, daemon or tooling",
        applies_to=("agent.commands",),
        may_import=(
            BASE,
            "agent.fiscal",
            "agent.elise",
            "offline_store",
            "printers",
            "agent.commands",
            "agent.core.status_report",
            "agent.core.sync_report",
            "agent.core.printer_settings",
        ),
    ),
    Rule(
        name="only-tooling-imports-tooling",
        why="bench, chaos, demo and the fake provider ship in the wheel but the product never loads them",
        applies_to=FIRST_PARTY,
        except_in=("agent.tools", "agent.cli", "agent.sandbox"),  # sandbox: see the next rule
        must_not_import=("agent.tools", "agent.sandbox"),
    ),
    Rule(
        name="sandbox-is-self-contained",
        why="the fake provider imitates Elise from outside; it shares no code with the agent it tests",
        applies_to=("agent.sandbox",),
        may_import=(BASE, "agent.fiscal", "agent.sandbox"),
    ),
    Rule(
        name="offline-store-stands-alone",
        why="the SQLite store sits below the agent and beside the printers: it imports neither",
        applies_to=("offline_store",),
        may_import=("offline_store",),
    ),
    Rule(
        name="printers-stand-alone",
        why="ESC/POS rendering is a library: it knows receipts, not the agent or the store",
        applies_to=("printers",),
        may_import=("printers",),
    ),
)


@dataclass(frozen=True, order=True)
class Violation:
    path: str  # relative to the root, POSIX separators
    line: int
    imported: str  # the absolute module name the statement reaches
    rule: str
    statement: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.imported} (`{self.statement}`): {self.why}"


def modules(root: Path) -> Iterator[tuple[Path, str, bool]]:
    """Each source file of the three packages under `root`: path, module name, is a package."""
    for package in FIRST_PARTY:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            yield path, ".".join(parts[:-1] if is_package else parts), is_package


def is_module(name: str, root: Path) -> bool:
    """`name` is a module or package under `root` (`<pkg>/<name>.py` or `<pkg>/<name>/`)."""
    location = root.joinpath(*name.split("."))
    return location.with_name(location.name + ".py").is_file() or location.is_dir()


def from_base(node: ast.ImportFrom, importer: str, is_package: bool) -> str | None:
    """The absolute module of a `from ... import`; None for a relative import above the top."""
    if node.level == 0:
        return node.module or ""
    package = importer if is_package else importer.rpartition(".")[0]
    parts = package.split(".") if package else []
    up = node.level - 1
    if up > len(parts):
        return None
    anchor = parts[: len(parts) - up]
    if node.module:
        anchor += node.module.split(".")
    return ".".join(anchor)


def imports(
    tree: ast.AST, importer: str, is_package: bool, root: Path
) -> Iterator[tuple[ast.stmt, str]]:
    """Every (statement, absolute module) pair in the tree, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = from_base(node, importer, is_package)
            if base is None:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}" if base else alias.name
                if alias.name != "*" and is_module(submodule, root):
                    yield node, submodule
                else:
                    yield node, base


def violations(root: Path) -> list[Violation]:
    """Every import under `root` that breaks a rule of RULES (one entry per rule broken)."""
    found: set[Violation] = set()
    for path, importer, is_package in modules(root):
        rules = [rule for rule in RULES if rule.governs(importer, root)]
        if not rules:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, target in imports(tree, importer, is_package, root):
            for rule in rules:
                if rule.refuses(target, root):
                    found.add(
                        Violation(
                            path=path.relative_to(root).as_posix(),
                            line=node.lineno,
                            imported=target,
                            rule=rule.name,
                            statement=ast.unparse(node),
                            why=rule.why,
                        )
                    )
    return sorted(found)


# --- the real repository -------------------------------------------------------------------------


def test_the_repository_follows_the_import_rules() -> None:
    found = violations(REPO_ROOT)
    assert not found, "import rules broken:\n" + "\n".join(str(v) for v in found)


def test_every_rule_governs_real_modules() -> None:
    """A rule whose scope matches nothing (a renamed package, a typo) would pass forever."""
    names = [name for _, name, _ in modules(REPO_ROOT)]
    idle = [rule.name for rule in RULES if not any(rule.governs(n, REPO_ROOT) for n in names)]
    assert not idle, f"rules that govern no module: {idle}"


def test_every_agent_subpackage_has_a_place_in_the_table() -> None:
    """A new directory under agent/ is a new entry on the map: give it a rule before it grows."""
    placed = {p for rule in RULES for p in (*rule.applies_to, *rule.except_in)}
    subpackages = {
        f"agent.{d.name}"
        for d in (REPO_ROOT / "agent").iterdir()
        if d.is_dir() and any(d.glob("*.py"))
    }
    assert subpackages, "no agent subpackage found: is REPO_ROOT right?"
    assert sorted(subpackages - placed) == []


# --- synthetic trees: the check can fail ---------------------------------------------------------

# Modules the synthetic trees need to exist so that names resolve as in the real layout.
SKELETON: dict[str, str] = {
    "agent/__init__.py": '__version__ = "0"\n',
    "agent/cli.py": "",
    "agent/config.py": "",
    "agent/clock.py": "",
    "agent/json_codec.py": "",
    "agent/secrets.py": "",
    "agent/api/__init__.py": "",
    "agent/api/app.py": "",
    "agent/api/errors.py": "",
    "agent/commands/__init__.py": "",
    "agent/commands/doctor.py": "",
    "agent/core/__init__.py": "",
    "agent/core/issuing.py": "",
    "agent/core/printer_settings.py": "",
    "agent/core/status_report.py": "",
    "agent/daemon/__init__.py": "",
    "agent/daemon/printing.py": "",
    "agent/daemon/sd_notify.py": "",
    "agent/elise/__init__.py": "",
    "agent/elise/client.py": "",
    "agent/fiscal/__init__.py": "",
    "agent/fiscal/uid.py": "",
    "agent/sandbox/__init__.py": "",
    "agent/sandbox/server.py": "",
    "agent/tools/__init__.py": "",
    "agent/tools/bench.py": "",
    "offline_store/__init__.py": "",
    "offline_store/database.py": "",
    "printers/__init__.py": "",
    "printers/layout.py": "",
}


def build(root: Path, files: dict[str, str]) -> Path:
    for relative, text in {**SKELETON, **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@dataclass(frozen=True)
class Case:
    path: str
    source: str
    line: int
    imported: str
    rules: frozenset[str]  # every rule the import must be reported under


def case(path: str, source: str, line: int, imported: str, *rules: str) -> Case:
    return Case(path, source, line, imported, frozenset(rules))


CASES = {
    "core imports the HTTP app": case(
        "agent/core/bad.py",
        "from agent.api.app import create_app\n",
        1,
        "agent.api.app",
        "core-knows-no-delivery",
    ),
    "fiscal imports the store": case(
        "agent/fiscal/x.py",
        "import offline_store\n",
        1,
        "offline_store",
        "fiscal-stands-alone",
    ),
    "fiscal reaches a subpackage through `from agent import`": case(
        "agent/fiscal/x.py",
        "from agent import __version__, core\n",
        1,
        "agent.core",
        "fiscal-stands-alone",
    ),
    "store imports the agent config": case(
        "offline_store/y.py",
        "from agent.config import Settings\n",
        1,
        "agent.config",
        "offline-store-stands-alone",
    ),
    "store imports the printers": case(
        "offline_store/y.py",
        "import printers.layout\n",
        1,
        "printers.layout",
        "offline-store-stands-alone",
    ),
    "printers import the store": case(
        "printers/z.py",
        "from offline_store import database\n",
        1,
        "offline_store.database",
        "printers-stand-alone",
    ),
    "command imports a core service that writes": case(
        "agent/commands/z.py",
        "from agent.core.issuing import Issuer\n",
        1,
        "agent.core.issuing",
        "commands-are-read-only",
    ),
    "command imports the daemon's printing": case(
        "agent/commands/z.py",
        "from agent.daemon import printing\n",
        1,
        "agent.daemon.printing",
        "commands-are-read-only",
    ),
    "relative import from core into the API": case(
        "agent/core/issuing.py",
        "from ..api import errors\n",
        1,
        "agent.api.errors",
        "core-knows-no-delivery",
    ),
    "relative import from a package __init__": case(
        "agent/fiscal/__init__.py",
        '"""Fiscal."""\n\nfrom ..core.issuing import Issuer\n',
        3,
        "agent.core.issuing",
        "fiscal-stands-alone",
    ),
    "function-local import of the store in the API": case(
        "agent/api/app.py",
        "def create_app():\n    import offline_store.database\n",
        2,
        "offline_store.database",
        "api-goes-through-core",
    ),
    "TYPE_CHECKING import from the adapter into core": case(
        "agent/elise/client.py",
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
        "    from agent.core.issuing import Issuer\n",
        4,
        "agent.core.issuing",
        "elise-knows-only-fiscal",
    ),
    "base module imports a use case": case(
        "agent/config.py",
        "import agent.core.issuing\n",
        1,
        "agent.core.issuing",
        "base-imports-only-base",
    ),
    "base module imports the entry point": case(
        "agent/clock.py",
        "from agent import cli\n",
        1,
        "agent.cli",
        "base-imports-only-base",
    ),
    "daemon imports a technician command": case(
        "agent/daemon/main.py",
        "from agent.commands.doctor import run\n",
        1,
        "agent.commands.doctor",
        "daemon-carries-no-tooling",
    ),
    "daemon imports the sandbox": case(
        "agent/daemon/main.py",
        "from agent.sandbox.server import SandboxServer\n",
        1,
        "agent.sandbox.server",
        "daemon-carries-no-tooling",
        "only-tooling-imports-tooling",
    ),
    "core imports the bench": case(
        "agent/core/runtime.py",
        "import agent.tools.bench as bench\n",
        1,
        "agent.tools.bench",
        "core-knows-no-delivery",
        "only-tooling-imports-tooling",
    ),
    "store imports a tool": case(
        "offline_store/y.py",
        "from agent.tools import bench\n",
        1,
        "agent.tools.bench",
        "offline-store-stands-alone",
        "only-tooling-imports-tooling",
    ),
    "sandbox imports the provider adapter": case(
        "agent/sandbox/app.py",
        "from agent.elise.client import EliseClient\n",
        1,
        "agent.elise.client",
        "sandbox-is-self-contained",
    ),
}


@pytest.mark.parametrize("broken", CASES.values(), ids=CASES.keys())
def test_a_broken_rule_is_reported(tmp_path: Path, broken: Case) -> None:
    root = build(tmp_path, {broken.path: broken.source})

    found = violations(root)

    assert {v.rule for v in found} == broken.rules, "\n".join(str(v) for v in found)
    for violation in found:
        assert (violation.path, violation.line, violation.imported) == (
            broken.path,
            broken.line,
            broken.imported,
        )
        assert violation.rule in str(violation)
        assert f"{broken.path}:{broken.line}:" in str(violation)
        assert broken.imported in str(violation)


def test_allowed_imports_are_not_reported(tmp_path: Path) -> None:
    """The same tree with everything the rules permit: no false alarms."""
    root = build(
        tmp_path,
        {
            "agent/config.py": "import pydantic\nfrom agent.secrets import ApiKey\nfrom printers.layout import W\n",
            "agent/cli.py": "from importlib import import_module\nimport_module('agent.tools.bench')\n",
            "agent/__main__.py": "from agent.cli import main\n",
            "agent/fiscal/x.py": "from agent import __version__\nfrom agent.json_codec import dumps\nfrom . import uid\n",
            "agent/elise/x.py": "import httpx\nfrom agent.fiscal.uid import bare_vat\nfrom .client import Client\n",
            "agent/core/x.py": (
                "import offline_store\nfrom printers import layout\nfrom agent.elise.client import C\n"
                "from agent.fiscal import uid\nfrom . import issuing\n"
            ),
            "agent/api/x.py": "from agent.core.issuing import Issuer\nfrom .errors import ApiError\n",
            "agent/daemon/x.py": (
                "import offline_store\nfrom agent.api.app import create_app\nfrom agent.core import issuing\n"
                "from agent.elise.client import C\nfrom . import sd_notify\nfrom agent.cli import main\n"
            ),
            "agent/commands/x.py": (
                "import offline_store\nimport printers.layout\nfrom agent.core.status_report import report\n"
                "from agent.core import printer_settings\nfrom agent.elise.client import C\nfrom . import doctor\n"
            ),
            "agent/sandbox/x.py": "from agent.fiscal.uid import bare_vat\nfrom agent.secrets import ApiKey\nfrom .server import S\n",
            "agent/tools/x.py": (
                "import offline_store\nfrom agent.sandbox.server import S\nfrom agent.commands import doctor\n"
                "from agent.core.issuing import Issuer\nfrom . import bench\n"
            ),
            "offline_store/x.py": "import sqlite3\nfrom offline_store.database import Database\nfrom . import database\n",
            "printers/x.py": "from PIL import Image\nfrom .layout import W\n",
        },
    )

    assert violations(root) == []
