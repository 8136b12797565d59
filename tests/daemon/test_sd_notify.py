import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.daemon import sd_notify


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket playing systemd's part, at a filesystem path."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def test_ready_status_watchdog_stopping_arrive(receiver: socket.socket) -> None:
    assert sd_notify.ready()
    assert receiver.recv(4096) == b"READY=1"
    assert sd_notify.status("backlog 3, oldest 12 min")
    assert receiver.recv(4096) == b"STATUS=backlog 3, oldest 12 min"
    assert sd_notify.watchdog()
    assert receiver.recv(4096) == b"WATCHDOG=1"
    assert sd_notify.stopping()
    assert receiver.recv(4096) == b"STOPPING=1"


def test_status_is_one_line_and_utf8(receiver: socket.socket) -> None:
    assert sd_notify.status("εκτός σύνδεσης\nREADY=1")
    assert receiver.recv(4096) == "STATUS=εκτός σύνδεσης READY=1".encode()


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"pos-agent-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sd_notify.notify("READY=1\nSTATUS=up")
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_noop_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert sd_notify.watchdog() is False


def test_vsock_address_is_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert sd_notify.ready() is False


def test_dead_receiver_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert sd_notify.ready() is False
    assert "sd_notify" in caplog.text


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 30.0),
        ("30000000", "self", 30.0),
        ("1500000", "self", 1.5),
        ("30000000", "1", None),  # armed for another process
        ("0", None, None),
        ("-5", None, None),
        ("soon", None, None),
        ("30000000", "me", None),
        (None, None, None),
    ],
)
def test_watchdog_interval(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None, expected: float | None
) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(os.getpid()) if value == "self" else value)
    assert sd_notify.watchdog_interval() == expected
