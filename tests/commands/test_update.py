"""`pos-agent update`'s decisions, each on real inputs: the window on Athens times (also across
midnight), the APT source rewritten to the register's channel, `apt-cache policy`'s answer, the
wait for sales in flight on an injected clock. The whole command runs in the booted register
(tests/systemd/test_register.py), with apt-get, the timer's service and a sale in flight."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

import pytest

from agent.clock import ATHENS
from agent.commands.update import Offer, follow_channel, in_window, parse_policy, wait_until_idle
from agent.config import ConfigError, load_config
from tests.commands.test_status import write_config

SOURCES = """\
Types: deb
URIs: http://repo.chain.example/pos-agent
Suites: stable
Components: main
Signed-By: /usr/share/keyrings/pos-agent-archive-keyring.gpg
"""


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 12, 7, hour, minute, tzinfo=ATHENS)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [(at(2, 59), False), (at(3, 0), True), (at(4, 59), True), (at(5, 0), False)],
)
def test_a_window_is_start_inclusive_end_exclusive(moment: datetime, inside: bool) -> None:
    assert in_window(moment, (time(3, 0), time(5, 0))) is inside


@pytest.mark.parametrize(
    ("moment", "inside"),
    [(at(23, 29), False), (at(23, 30), True), (at(0, 30), True), (at(1, 0), False)],
)
def test_a_window_may_cross_midnight(moment: datetime, inside: bool) -> None:
    assert in_window(moment, (time(23, 30), time(1, 0))) is inside


def test_the_source_follows_the_channel_once(tmp_path: Path) -> None:
    sources = tmp_path / "pos-agent.sources"
    sources.write_text(SOURCES)

    assert follow_channel(sources, "canary") is True
    assert follow_channel(sources, "canary") is False
    assert sources.read_text() == SOURCES.replace("Suites: stable", "Suites: canary")


def test_a_source_without_suites_is_refused(tmp_path: Path) -> None:
    sources = tmp_path / "pos-agent.sources"
    sources.write_text("deb http://repo.chain.example/pos-agent stable main\n")
    with pytest.raises(ValueError, match="has no Suites: line"):
        follow_channel(sources, "canary")


def test_policy_newer_current_and_not_installed() -> None:
    newer = "pos-agent:\n  Installed: 1.4.0\n  Candidate: 1.5.0\n  Version table:\n"
    current = "pos-agent:\n  Installed: 1.5.0\n  Candidate: 1.5.0\n"
    missing = "pos-agent:\n  Installed: (none)\n  Candidate: 1.5.0\n"
    assert parse_policy(newer) == Offer("1.4.0", "1.5.0") and parse_policy(newer).newer
    assert not parse_policy(current).newer
    assert parse_policy(missing) == Offer(None, "1.5.0")
    assert not parse_policy("").newer


def test_the_wait_ends_when_the_sale_is_done_or_gives_up() -> None:
    now = [0.0]
    counts = iter([1, 1, 0])
    assert wait_until_idle(
        lambda: next(counts),
        10.0,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert now[0] == 1.0
    now[0] = 0.0
    assert not wait_until_idle(
        lambda: 1, 2.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s)
    )
    assert now[0] == 2.0


def test_a_bad_window_is_refused_by_name(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, socket_path=tmp_path / "agent.sock", body='[updates]\nwindow = "3-5"\n'
    )
    with pytest.raises(ConfigError, match=r"updates\.window: .*is not HH:MM-HH:MM"):
        load_config(config)
