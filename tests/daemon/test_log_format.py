"""The daemon's log lines: journald's priority prefix under systemd, timestamps on a terminal.

The handler writes to a real file; JOURNAL_STREAM names that file's device:inode exactly as
systemd names the stream it connects to stderr.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from agent.daemon.log_format import configure_logging, syslog_priority


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[TextIO]:
    with (tmp_path / "stderr").open("w+", encoding="utf-8") as stream:
        yield stream
    logging.basicConfig(handlers=[logging.NullHandler()], force=True)


def _journal_stream(stream: TextIO) -> str:
    info = os.fstat(stream.fileno())
    return f"{info.st_dev}:{info.st_ino}"


def _emit(stream: TextIO) -> list[str]:
    log = logging.getLogger("pos_agent.test")
    log.info("pos-agent ready")
    log.warning("provider unreachable; issuing offline")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("sync failed")
    stream.flush()
    stream.seek(0)
    return stream.read().splitlines()


def test_under_journald_every_line_carries_its_priority_and_no_timestamp(log_file: TextIO) -> None:
    configure_logging(
        verbose=False, stream=log_file, environ={"JOURNAL_STREAM": _journal_stream(log_file)}
    )

    lines = _emit(log_file)

    assert lines[:3] == [
        "<6>pos_agent.test: pos-agent ready",
        "<4>pos_agent.test: provider unreachable; issuing offline",
        "<3>pos_agent.test: sync failed",
    ]
    # The traceback stays at priority 3 line by line (journald reads each line on its own).
    assert lines[3] == "<3>Traceback (most recent call last):"
    assert lines[-1] == "<3>RuntimeError: boom"
    assert all(re.match(r"<\d>", line) for line in lines)
    assert not any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", line) for line in lines)


def test_on_a_terminal_lines_keep_their_timestamp(log_file: TextIO) -> None:
    configure_logging(verbose=False, stream=log_file, environ={})

    lines = _emit(log_file)

    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING pos_agent.test: provider unreachable; "
        r"issuing offline",
        lines[1],
    )
    assert not lines[0].startswith("<")


def test_a_redirected_stderr_under_a_unit_is_not_the_journal(
    log_file: TextIO, tmp_path: Path
) -> None:
    """`pos-agent run 2>file` inside a unit: JOURNAL_STREAM names another stream."""
    with (tmp_path / "journal").open("w") as journal:
        configure_logging(
            verbose=False, stream=log_file, environ={"JOURNAL_STREAM": _journal_stream(journal)}
        )

    assert not _emit(log_file)[0].startswith("<")


@pytest.mark.parametrize(
    ("level", "priority"),
    [(logging.DEBUG, 7), (logging.INFO, 6), (25, 6), (logging.WARNING, 4), (logging.ERROR, 3)],
)
def test_syslog_priorities(level: int, priority: int) -> None:
    assert syslog_priority(level) == priority
