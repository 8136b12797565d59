"""`pos-agent`: one console script; each subcommand lives in the module that owns the job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from agent import __version__

Handler = Callable[[argparse.Namespace], int]

# What a man page would say, shown by `pos-agent --help` (the package ships no separate page:
# the text lives where it cannot drift from the commands).
DESCRIPTION = """\
NAME
  pos-agent - receipt-signing agent for Greek cash registers (Elise provider, AADE myDATA)

DESCRIPTION
  The daemon (pos-agent run, started by systemd) issues receipts through the provider for the
  POS software, which talks to it over a Unix socket; it keeps signing offline (delayed
  receipts with an offline QR code), sends the backlog when the provider is back, and prints.
  The other commands are for the technician; each says what to do when something is wrong.
"""

EPILOG = """\
FILES
  /etc/pos-agent/pos-agent.toml     config, 0640 root:pos-agent (every key documented in it)
  /etc/pos-agent/provider-api-key   the provider API key, 0600 root:root (systemd credential)
  /run/pos-agent/agent.sock         the local API; group pos may connect
  /var/lib/pos-agent/               database, journal, print spool: fiscal records, never
                                    deleted by the package (not even by purge)

ENVIRONMENT
  POS_AGENT_CONFIG   config file for the technician's commands (default above)
  NO_COLOR           no ANSI colour on a terminal

EXIT STATUS (status)
  0 OK, 1 WARN, 2 CRITICAL, 3 UNKNOWN (config, socket or database unreadable to this user)

SEE ALSO
  pos-agent COMMAND --help, systemctl status pos-agent, journalctl -u pos-agent -p warning,
  /usr/share/doc/pos-agent/technician.md (the technician's manual),
  /usr/share/doc/pos-agent/monitoring.md
"""

# Command → the module that registers it. Only the chosen command's module is imported, so the
# daemon (`run`) does not carry the benchmark, the demo or the doctor in its memory.
COMMAND_MODULES: dict[str, str] = {
    "run": "agent.daemon.main",
    "migrate": "agent.daemon.upgrade",
    "update": "agent.commands.update",
    "sandbox": "agent.sandbox.command",
    "bench": "agent.tools.bench",
    "chaos": "agent.tools.chaos",
    "powercut": "agent.tools.powercut",
    "status": "agent.commands.status",
    "doctor": "agent.commands.doctor",
    "sync": "agent.commands.admin",
    "reprint": "agent.commands.admin",
    "rollback": "agent.commands.admin",
    "archive": "agent.commands.archive",
    "report": "agent.commands.report",
    "reconcile": "agent.commands.report",
    "demo": "agent.tools.demo",
    "api-doc": "agent.tools.api_doc",
}
# Exit code of a command that could not look (Nagios UNKNOWN; `status` uses the same).
CANNOT_LOOK = 3


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for one known command, or for all of them (help, unknown command)."""
    parser = argparse.ArgumentParser(
        prog="pos-agent",
        usage="pos-agent [--version] [--help] COMMAND [ARGS]",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    options = parser.add_argument_group("OPTIONS")
    options.add_argument("-h", "--help", action="help", help="this text")
    options.add_argument(
        "--version", action="version", version=f"pos-agent {__version__}", help="the version"
    )
    commands = parser.add_subparsers(
        title="COMMANDS", dest="command", required=True, metavar="COMMAND", prog="pos-agent"
    )
    if command == "--version":
        wanted: Sequence[str] = []
    elif command in COMMAND_MODULES:
        wanted = [COMMAND_MODULES[command]]
    else:
        wanted = list(COMMAND_MODULES.values())
    for module in dict.fromkeys(wanted):
        import_module(module).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
    handler: Handler = args.handler
    try:
        return handler(args)
    except PermissionError as exc:
        # A file this user may not open (a register's /etc/pos-agent and /var/lib/pos-agent are
        # closed to all but root and pos-agent): one line that says so, never a traceback.
        print(
            f"pos-agent {args.command}: permission denied on {exc.filename or exc}: "
            "run it as root (sudo pos-agent ...)",
            file=sys.stderr,
        )
        return CANNOT_LOOK


if __name__ == "__main__":
    sys.exit(main())
