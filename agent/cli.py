"""`pos-agent`: one console script; each subcommand lives in the module that owns the job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pos-agent", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _registrars():
        register(commands)
    return parser


def _registrars() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Each module adds its own subcommand(s); imports stay local so startup stays fast."""
    from agent.admin_commands import register as register_admin
    from agent.bench import register as register_bench
    from agent.chaos import register as register_chaos
    from agent.daemon import register as register_daemon
    from agent.demo import register as register_demo
    from agent.doctor import register as register_doctor
    from agent.sandbox.command import register as register_sandbox
    from agent.status_command import register as register_status

    return [
        register_daemon,
        register_sandbox,
        register_bench,
        register_chaos,
        register_status,
        register_doctor,
        register_admin,
        register_demo,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
