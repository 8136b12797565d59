"""Bringing the database to this version's schema: at every daemon start, and `pos-agent migrate`.

A package upgrade keeps `pos-agent.socket` listening and only restarts the service, so the new
daemon migrates the file itself, after taking the single-instance lock and before it accepts the
first connection: the tills' connections wait in the socket's backlog meanwhile and are answered
by the new version. `pos-agent migrate` does the same by hand (no systemd, or to see why a start
failed); it takes the same lock, so it refuses to run while a daemon is up.

The work itself is `offline_store.upgrade`: a backup copy first, the migrations on a second copy,
an atomic swap; a failure leaves the old database as it was. A file written by a newer agent (a
downgrade) is refused with a message that says so, and is never opened for writing.

Exit codes of `migrate`: 0 migrated or already current (or no database yet), 1 a migration failed
(database untouched), 2 cannot start (config, lock, a newer schema).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from agent.api.listeners import AlreadyRunning, single_instance_lock
from agent.clock import athens_now
from agent.config import ConfigError, load_config
from agent.daemon import sd_notify
from offline_store.errors import StoreError
from offline_store.upgrade import MigrationFailed, UpgradeOutcome, upgrade_database

log = logging.getLogger("pos_agent.upgrade")

# How long systemd may wait for a start that migrates (TimeoutStartSec= covers a plain start):
# the copies and the migrations of years of history take minutes, and a start killed half-way
# would only begin again from the untouched original.
MIGRATION_START_TIMEOUT_S = 30 * 60


def bring_up_to_date(path: Path) -> UpgradeOutcome | None:
    """Migrate the database at `path` (the caller holds the single-instance lock); None when
    there is no database yet. Raises `MigrationFailed` (untouched) or `StoreError` (newer schema,
    file in use)."""
    if not path.exists():
        return None
    return upgrade_database(path, now=athens_now(), before_copying=_more_start_time)


def _more_start_time() -> None:
    sd_notify.notify(f"EXTEND_TIMEOUT_USEC={MIGRATION_START_TIMEOUT_S * 1_000_000}")


def describe(path: Path, outcome: UpgradeOutcome) -> str:
    """One line for the journal or the technician's terminal."""
    if outcome.backup is None:
        return f"{path} is at schema v{outcome.to_version}, the latest"
    return (
        f"{path} migrated from schema v{outcome.from_version} to v{outcome.to_version}; "
        f"the previous file is kept at {outcome.backup}"
    )


def migrate_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"pos-agent migrate: {exc}", file=sys.stderr)
        return 2
    path = config.database_path
    try:
        with single_instance_lock(config.state_dir):
            outcome = bring_up_to_date(path)
    except AlreadyRunning as exc:
        print(f"pos-agent migrate: {exc}", file=sys.stderr)
        return 2
    except MigrationFailed as exc:
        print(f"pos-agent migrate: {exc}", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"pos-agent migrate: {exc}", file=sys.stderr)
        return 2
    if outcome is None:
        print(f"pos-agent migrate: no database at {path} yet; nothing to migrate")
    else:
        print(f"pos-agent migrate: {describe(path, outcome)}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "migrate",
        help="bring the database to this version's schema, with a backup copy first "
        "(the daemon does it at start; this command needs the daemon stopped)",
    )
    parser.add_argument(
        "--config", type=Path, default=Path("/etc/pos-agent/pos-agent.toml"), help="config file"
    )
    parser.set_defaults(handler=migrate_command)
