"""`pos-agent update`: take a new version from the chain's APT repository, only inside the
register's maintenance window and never while a sale is in flight. pos-agent-update.timer runs
it every 15 minutes once enabled; a technician may run it by hand (`--now` ignores the window).

Order: the register's channel (`updates.channel`) is written into the APT source's `Suites:`
line, so `apt-get` run by hand follows it too → outside the window, nothing more → `apt-get
update` of that one source → no newer version offered, nothing more → wait until the daemon has
no document on its way to the provider (`in_flight` of its health answer) → `apt-get install
pos-agent`, whose upgrade keeps the socket listening while only the service restarts (postinst).
A sale that starts between the check and the restart is finished by the restart's stop, which
drains requests in flight; the check keeps the restart away from a sale that is waiting for the
provider.

Exit codes: 0 nothing to do, or updated; 1 apt failed; 2 config or APT source missing; 75 a sale
stayed in flight (EX_TEMPFAIL: the next run tries again).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import time as clock_time
from pathlib import Path

from agent.clock import athens_now
from agent.commands.common import (
    DaemonUnreachable,
    add_config_argument,
    call_daemon,
    config_path,
)
from agent.config import AgentConfig, ConfigError, load_config
from agent.core.answers import Health

EX_TEMPFAIL = 75
POLL_S = 0.5
SUITES = re.compile(r"^Suites:.*$", re.MULTILINE)
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def in_window(now: datetime, window: tuple[clock_time, clock_time]) -> bool:
    """Whether `now` (Athens) falls in [start, end); a window may cross midnight."""
    start, end = window
    moment = now.timetz().replace(tzinfo=None)
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


def follow_channel(sources: Path, channel: str) -> bool:
    """Point the deb822 APT source at `channel`'s suite; True if the file changed."""
    text = sources.read_text(encoding="utf-8")
    if not SUITES.search(text):
        raise ValueError(f"{sources} has no Suites: line")
    wanted = SUITES.sub(f"Suites: {channel}", text)
    if wanted == text:
        return False
    sources.write_text(wanted, encoding="utf-8")
    return True


@dataclass(frozen=True)
class Offer:
    """What `apt-cache policy pos-agent` says: the version installed and the one apt would take."""

    installed: str | None
    candidate: str | None

    @property
    def newer(self) -> bool:
        return self.candidate is not None and self.candidate != self.installed


def parse_policy(text: str) -> Offer:
    found = dict(re.findall(r"^\s+(Installed|Candidate): (\S+)$", text, re.MULTILINE))

    def version(key: str) -> str | None:
        value = found.get(key)
        return None if value in (None, "(none)") else value

    return Offer(version("Installed"), version("Candidate"))


def sales_in_flight(config: AgentConfig) -> int:
    """Documents the daemon is sending now; 0 when it is down (nothing can be in flight)."""
    try:
        answer = call_daemon(config.api.socket_path, "GET", "/v1/health")
    except DaemonUnreachable:
        return 0
    return Health.model_validate(answer.json()).in_flight


def wait_until_idle(
    count: Callable[[], int],
    wait_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Poll `count` until it is 0 (True) or `wait_s` has passed (False)."""
    deadline = clock() + wait_s
    while count() > 0:
        if clock() >= deadline:
            return False
        sleep(POLL_S)
    return True


def _apt(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, **APT_ENV}, check=False
    )


def _say(text: str) -> None:
    print(f"pos-agent update: {text}", flush=True)


def update(config: AgentConfig, *, now: datetime, ignore_window: bool) -> int:
    settings = config.updates
    sources = settings.sources_file
    if not sources.exists():
        _say(f"no APT source at {sources}: install the chain's pos-agent.sources there first")
        return 2
    if follow_channel(sources, settings.channel):
        _say(f"{sources} now follows channel {settings.channel}")
    if not ignore_window and not in_window(now, settings.window_times):
        _say(f"outside the maintenance window {settings.window} (Athens); nothing done")
        return 0
    refreshed = _apt(
        "apt-get",
        "update",
        "-o",
        f"Dir::Etc::sourcelist={sources}",
        "-o",
        "Dir::Etc::sourceparts=-",
        "-o",
        "APT::Get::List-Cleanup=0",
    )
    if refreshed.returncode != 0:
        print(refreshed.stdout + refreshed.stderr, file=sys.stderr)
        _say("apt-get update failed (above); nothing installed")
        return 1
    offer = parse_policy(_apt("apt-cache", "policy", "pos-agent").stdout)
    if not offer.newer:
        _say(f"up to date: {offer.installed} is the newest on channel {settings.channel}")
        return 0
    if not wait_until_idle(lambda: sales_in_flight(config), settings.in_flight_wait_s):
        _say(
            f"a sale is in flight after {settings.in_flight_wait_s:g} s; {offer.candidate} "
            "waits for the next run"
        )
        return EX_TEMPFAIL
    _say(f"installing {offer.candidate} over {offer.installed} (channel {settings.channel})")
    installed = _apt(
        "apt-get",
        "install",
        "-y",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "pos-agent",
    )
    print(installed.stdout, end="")
    if installed.returncode != 0:
        print(installed.stderr, file=sys.stderr)
        _say(f"apt-get install failed (exit {installed.returncode})")
        return 1
    _say(f"{offer.candidate} installed")
    return 0


def update_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(config_path(args))
    except ConfigError as exc:
        _say(str(exc))
        return 2
    try:
        return update(config, now=athens_now(), ignore_window=args.now)
    except (OSError, ValueError) as exc:
        _say(str(exc))
        return 2


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "update",
        help="install a new version from the chain's repository, inside the maintenance "
        "window and never while a sale is in flight (pos-agent-update.timer runs it)",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--now", action="store_true", help="ignore the maintenance window (a technician on site)"
    )
    parser.set_defaults(handler=update_command)
