"""`pos-agent archive list|verify|export`: the monthly archive files, for the technician
and the accountant.

- `list`: one line per month: receipts, size, the SHA-256 sealed in the journal.
- `verify`: the whole history as one chain: every archive file against its seals and the
  journal across the archive boundaries (exit 0 ok, 2 broken).
- `export --month YYYY-MM [--output FILE]`: that month's archived receipts as JSON Lines
  (series, number, issue time, UID, MARK, total, the provider payload), checked against the
  seals first; an altered file is refused.
The daemon itself moves receipts to the archive in its quiet hour (core/maintenance.py); these
commands only read (the database read-only, the files).

Exit codes: 0 ok, 1 nothing found (unknown month), 2 damaged/broken, 3 config or database
unreadable.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import TextIO

import offline_store as store
from agent.commands.common import add_config_argument, config_path
from agent.config import AgentConfig, ConfigError, load_config

OK, NOT_FOUND, BROKEN, UNREADABLE = 0, 1, 2, 3
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def archive_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(config_path(args))
    except ConfigError as exc:
        print(f"pos-agent archive: {exc}", file=sys.stderr)
        return UNREADABLE
    if not config.database_path.exists():
        print(f"pos-agent archive: no database at {config.database_path}", file=sys.stderr)
        return UNREADABLE
    conn = store.open_database(config.database_path, read_only=True)
    try:
        if args.action == "list":
            return _list(conn)
        if args.action == "verify":
            return _verify(conn, config)
        return _export(conn, config, args.month, args.output)
    except store.ArchiveDamaged as exc:
        print(f"pos-agent archive: {exc}; keep the file and the database, contact support")
        return BROKEN
    finally:
        conn.close()


def _list(conn: sqlite3.Connection) -> int:
    months = store.archive_months(conn)
    if not months:
        print("no archived months yet")
        return OK
    print(f"{'month':8} {'receipts':>9} {'bytes':>11}  sealed sha256")
    for month in months:
        print(
            f"{month.month:8} {month.documents:>9} {month.bytes:>11}  {month.sha256}  {month.file}"
        )
    return OK


def _verify(conn: sqlite3.Connection, config: AgentConfig) -> int:
    check = store.verify_history(conn, config.archive_dir)
    if check.ok:
        print(
            f"history ok: {check.journal_entries} journal entries, {check.batches} archive "
            f"batches, {check.archived_documents} archived receipts"
        )
        return OK
    print(f"HISTORY BROKEN: {check.problem} — keep every file as it is and contact support")
    return BROKEN


def _export(
    conn: sqlite3.Connection, config: AgentConfig, month: str | None, output: Path | None
) -> int:
    if month is None or not _MONTH.match(month):
        print("pos-agent archive export: --month YYYY-MM is required", file=sys.stderr)
        return NOT_FOUND
    if month not in {m.month for m in store.archive_months(conn)}:
        print(f"pos-agent archive export: nothing archived for {month}", file=sys.stderr)
        return NOT_FOUND
    handle: TextIO = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        count = 0
        for doc in store.archived_documents(conn, config.archive_dir, month):
            handle.write(json.dumps(store.document_record(doc), ensure_ascii=False) + "\n")
            count += 1
    finally:
        if output:
            handle.close()
    print(f"{count} receipts of {month} exported", file=sys.stderr)
    return OK


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("archive", help="the monthly archive of old receipts")
    parser.add_argument("action", choices=("list", "verify", "export"))
    parser.add_argument("--month", help="YYYY-MM (export)")
    parser.add_argument("--output", type=Path, help="export to this file instead of stdout")
    add_config_argument(parser)
    parser.set_defaults(handler=archive_command)
