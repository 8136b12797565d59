"""`pos-agent`: one console script; each subcommand lives in the module that owns the job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

Handler = Callable[[argparse.Namespace], int]


# Command → the module that registers it. Only the chosen command's module is imported, so the
# daemon (`run`) does not carry the benchmark, the demo or the doctor in its memory.
COMMAND_MODULES: dict[str, str] = {
    "run": "agent.daemon.main",
    "sandbox": "agent.sandbox.command",
    "bench": "agent.tools.bench",
    "chaos": "agent.tools.chaos",
    "status": "agent.commands.status",
    "doctor": "agent.commands.doctor",
    "sync": "agent.commands.admin",
    "reprint": "agent.commands.admin",
    "archive": "agent.commands.archive",
    "demo": "agent.tools.demo",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for one known command, or for all of them (help, unknown command)."""
    parser = argparse.ArgumentParser(prog="pos-agent", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else COMMAND_MODULES.values()
    for module in dict.fromkeys(wanted):
        import_module(module).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
