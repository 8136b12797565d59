"""The console script loads only the module of the command it runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.cli import COMMAND_MODULES, build_parser


def test_run_loads_only_the_daemon() -> None:
    """The daemon carries neither the tooling nor the technician's screens in its memory."""
    script = (
        "import sys\n"
        "from agent.cli import build_parser\n"
        "build_parser('run').parse_args(['run', '--config', 'x.toml'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(\n"
        "    ('agent.tools', 'agent.commands', 'agent.sandbox'))))\n"
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
