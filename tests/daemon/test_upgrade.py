"""`pos-agent migrate`, the package upgrade's database step, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.api.listeners import single_instance_lock
from offline_store import open_database
from offline_store.migrations import MIGRATIONS
from tests.commands.test_status import run_cli, write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, socket_path=tmp_path / "agent.sock")


def test_no_database_yet_is_nothing_to_do(config: Path, capsys: pytest.CaptureFixture[str]):
    code, out = run_cli(capsys, "migrate", "--config", str(config))
    assert (code, out) == (
        0,
        f"pos-agent migrate: no database at {config.parent / 'state' / 'pos-agent.sqlite3'} yet; nothing to migrate\n",
    )


def test_a_current_database_says_so(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = config.parent / "state" / "pos-agent.sqlite3"
    database.parent.mkdir()
    open_database(database).close()

    code, out = run_cli(capsys, "migrate", "--config", str(config))

    latest = MIGRATIONS[-1].version
    assert (code, out) == (0, f"pos-agent migrate: {database} is at schema v{latest}, the latest\n")
    assert not (database.parent / "backups").exists()


def test_refused_while_a_daemon_holds_the_state_dir(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = config.parent / "state"
    state.mkdir()
    open_database(state / "pos-agent.sqlite3").close()

    with single_instance_lock(state):
        code, out = run_cli(capsys, "migrate", "--config", str(config))

    assert code == 2
    assert "stop it first: systemctl stop pos-agent" in out


def test_a_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "migrate", "--config", str(tmp_path / "missing.toml"))
    assert (code, out.count("\n")) == (2, 1)
    assert "does not exist" in out
