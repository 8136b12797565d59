"""The console script loads only the module of the command it runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent import __version__
from agent.cli import COMMAND_MODULES, build_parser, main


def test_run_loads_only_the_daemon() -> None:
    """The daemon carries neither the tooling nor the technician's screens in its memory, nor
    httpx's command-line client (rich, pygments: ~4 MB), which httpx imports whenever it is
    installed, as it is in this venv for the test tools."""
    script = (
        "import sys\n"
        "from agent.cli import build_parser\n"
        "build_parser('run').parse_args(['run', '--config', 'x.toml'])\n"
        "import httpx\n"
        "print(sorted(m for m, module in sys.modules.items() if module and m.startswith(\n"
        "    ('agent.tools', 'agent.commands', 'agent.sandbox', 'rich', 'pygments', 'httpx._main'))))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"


@pytest.mark.parametrize("command", sorted(COMMAND_MODULES))
def test_every_command_is_registered_by_its_module(command: str) -> None:
    parser = build_parser(command)
    assert command in parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(None).parse_args(["--help"])
    out = capsys.readouterr().out
    assert all(command in out for command in COMMAND_MODULES)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert (done.value.code, capsys.readouterr().out) == (0, f"pos-agent {__version__}\n")


def test_help_reads_like_a_man_page(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    sections = [
        "NAME",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "FILES",
        "ENVIRONMENT",
        "EXIT STATUS",
        "SEE ALSO",
    ]
    assert [s for s in sections if f"\n{s}" in "\n" + out] == sections
    assert "/etc/pos-agent/provider-api-key" in out


def test_every_logger_is_in_the_pos_agent_namespace() -> None:
    """One namespace to filter on (`journalctl ... | grep pos_agent.`, logging config)."""
    script = (
        "import logging, pkgutil, importlib, agent, offline_store, printers\n"
        "for package in (agent, offline_store, printers):\n"
        "    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        if not info.name.endswith('__main__'):\n"
        "            importlib.import_module(info.name)\n"
        "print(sorted(name for name in logging.Logger.manager.loggerDict\n"
        "    if name.startswith(('agent', 'offline_store', 'printers'))))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"
