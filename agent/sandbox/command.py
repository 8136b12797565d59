"""`pos-agent sandbox` / `python -m agent.sandbox`: run the sandbox provider in the foreground.

Only argparse is imported at registration time; the server is imported when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from agent.secrets import ApiKey, CredentialError, check_private_file


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "sandbox",
        help="run the local sandbox provider (tests, demo, benchmark only)",
        description=__doc__,
    )
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800, help="0 picks a free port")
    parser.add_argument("--state", type=Path, required=True, help="directory for DB and key")
    parser.add_argument(
        "--api-key-file", type=Path, required=True, help="the one accepted API key (mode 0600)"
    )
    parser.add_argument("--issuer-vat", required=True, help="the VAT the API key is bound to")
    parser.add_argument("--portal-url", help="base of QR URLs (default: the sandbox itself)")
    parser.add_argument("--seed", type=int, help="seed for the flaky fault mode")
    parser.add_argument(
        "--page-size", type=int, default=50, help="documents per page of getdocuments (>= 1)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from agent.sandbox.server import SandboxServer

    try:
        check_private_file(args.api_key_file)
        api_key = ApiKey(args.api_key_file.read_text(encoding="utf-8"))
    except CredentialError as exc:
        print(f"pos-agent sandbox: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = SandboxServer(
        args.state,
        api_key=api_key,
        issuer_vat=args.issuer_vat,
        host=args.host,
        port=args.port,
        portal_url=args.portal_url,
        seed=args.seed,
        page_size=max(1, args.page_size),
    )
    # The first line on stdout tells a parent process (tests, demo) where to connect.
    print(f"sandbox listening on {server.base_url}", flush=True)
    server.serve()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.sandbox", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return int(args.handler(args))
