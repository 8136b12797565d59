"""How the daemon's log lines look: journald's conventions under systemd, readable on a terminal.

Under systemd, stderr is a stream to journald, which stamps every line with its own time and
reads a syslog priority from a leading `<N>` (sd-daemon(3)). Without that prefix every line is
priority 6 (info) and `journalctl -p warning` shows nothing, not even an error; a timestamp of our
own would only repeat journald's. So under journald each line is `<N>logger: message`, and every
line of a multi-line message (a traceback) carries the prefix, or its tail would be info again.

systemd sets JOURNAL_STREAM to the device:inode of the stream it connected; the format switches
only when stderr is still that stream (sd-daemon(3)), so `pos-agent run 2>file` under a unit
writes the terminal format.

Every logger of ours lives under `pos_agent.` (one namespace to filter on); third-party loggers
keep their names.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TextIO

NAMESPACE = "pos_agent"
TERMINAL_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# logging level → syslog priority (RFC 5424): err 3, warning 4, info 6, debug 7.
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a logging level; levels in between take the next more severe."""
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return _PRIORITY[logging.DEBUG]


class JournalFormatter(logging.Formatter):
    """`<priority>logger: message`, no timestamp, the prefix on every line."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def stderr_is_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """True when `stream` is the very stream systemd connected to journald."""
    expected = environ.get("JOURNAL_STREAM", "")
    device, _, inode = expected.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return (info.st_dev, info.st_ino) == (int(device), int(inode))


def configure_logging(
    *, verbose: bool, stream: TextIO, environ: Mapping[str, str] | None = None
) -> None:
    """One handler on the root logger, writing `stream` in the format its reader expects."""
    handler = logging.StreamHandler(stream)
    journal = stderr_is_journal(stream, os.environ if environ is None else environ)
    handler.setFormatter(JournalFormatter() if journal else logging.Formatter(TERMINAL_FORMAT))
    # force: python-escpos calls logging.basicConfig() when imported (escpos/capabilities.py),
    # which would leave ours a no-op - no INFO lines in the daemon's log.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
