"""`pos-agent migrate`: the package upgrade's database step, run by postinst between stop and start.

It holds the daemon's single-instance lock, so it refuses to run while a daemon is up (and no
daemon can start meanwhile: socket activation would block on the lock, not on a half-migrated
file). The work itself is `offline_store.upgrade`: a backup copy first, the migrations on a
second copy, an atomic swap; a failure leaves the old database as it was.

Exit codes: 0 migrated or already current (or no database yet), 1 a migration failed (database
untouched), 2 cannot start (config, lock, a newer schema).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.api.listeners import AlreadyRunning, single_instance_lock
from agent.clock import athens_now
from agent.config import ConfigError, load_config
from offline_store.errors import StoreError
from offline_store.upgrade import MigrationFailed, upgrade_database


def migrate_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"pos-agent migrate: {exc}", file=sys.stderr)
        return 2
    path = config.database_path
    if not path.exists():
        print(f"pos-agent migrate: no database at {path} yet; nothing to migrate")
        return 0
    try:
        with single_instance_lock(config.state_dir):
            outcome = upgrade_database(path, now=athens_now())
    except AlreadyRunning as exc:
        print(f"pos-agent migrate: {exc}", file=sys.stderr)
        return 2
    except MigrationFailed as exc:
        print(f"pos-agent migrate: {exc}", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"pos-agent migrate: {exc}", file=sys.stderr)
        return 2
    if outcome.backup is None:
        print(f"pos-agent migrate: {path} is at schema v{outcome.to_version}, the latest")
    else:
        print(
            f"pos-agent migrate: {path} migrated from schema v{outcome.from_version} to "
            f"v{outcome.to_version}; the previous file is kept at {outcome.backup}"
        )
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "migrate",
        help="bring the database to this version's schema, with a backup copy first "
        "(the package upgrade runs it; the daemon must be stopped)",
    )
    parser.add_argument(
        "--config", type=Path, default=Path("/etc/pos-agent/pos-agent.toml"), help="config file"
    )
    parser.set_defaults(handler=migrate_command)
