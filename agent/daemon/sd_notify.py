"""Tell systemd how the daemon is doing (sd_notify(3)) without a compiled dependency.

The protocol is one AF_UNIX datagram of newline-separated `KEY=value` assignments sent to the
address in `$NOTIFY_SOCKET`; a leading `@` means the Linux abstract namespace. Outside systemd
(tests, a technician running the daemon by hand) the variable is unset and every call is a no-op,
so callers never branch on "am I under systemd?".
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("pos_agent.sd_notify")


def notify(state: str) -> bool:
    """Send `state` to systemd; True if a datagram was sent, False if there is no one to tell.

    A failed send is logged, not raised: losing a STATUS line must never take the daemon down
    (a lost READY=1 shows up as a start timeout in the journal anyway).
    """
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        # Unset, empty, or a vsock address (VMs talking to the host); not our deployment.
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.warning("sd_notify to %r failed: %s", os.environ.get("NOTIFY_SOCKET"), exc)
        return False
    return True


def ready() -> bool:
    """Start-up is complete: database open, migrations applied, socket bound."""
    return notify("READY=1")


def stopping() -> bool:
    """Shutdown has begun; systemd stops expecting watchdog pings."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """One human line for `systemctl status`; newlines would start a new assignment, so fold them."""
    return notify("STATUS=" + " ".join(text.split()))


def watchdog() -> bool:
    """I am alive. Call only after checking real liveness, from the event loop itself."""
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """`WatchdogSec=` in seconds, or None when no watchdog is armed. Ping at half of it or faster.

    systemd sets `WATCHDOG_USEC` (and `WATCHDOG_PID`, the process it expects pings from). A value
    meant for another process, or a malformed one, means "not armed" — as in sd_watchdog_enabled(3).
    """
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        interval_us = int(usec)
    except ValueError:
        return None
    if interval_us <= 0:
        return None
    return interval_us / 1_000_000
