"""Local programs holding the API socket's connections open must not lock the till out.

Before: ~1,100 idle connections used up the daemon's 1024 file descriptors; every new till
connection timed out, the daemon burned a CPU and `socket.accept() out of system resource`
filled the log. Here the daemon starts with a small file limit (160) and 300 idle clients
connect: the till still gets its receipt, the idle clients are closed, and the log holds no
flood. A client that never finishes its request headers is closed after the header timeout."""

from __future__ import annotations

import resource
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from agent.core.answers import Health
from agent.tools.local_stack import LocalStack, cash_receipt, post_json
from tests.e2e.stack import parsed, quiet_settings, running_stack, wait_for

pytestmark = pytest.mark.e2e

DAEMON_FILE_LIMIT = 160
IDLE_CLIENTS = 300
TILL_TOTAL_TIMEOUT_S = 4.0


def start_with_file_limit(stack: LocalStack, limit: int) -> None:
    """The children inherit the soft limit in force when they are started."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        stack.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def limited_stack(tmp_path: Path) -> Iterator[LocalStack]:
    # Only the connection cap can save the till here: no header timeout comes to help.
    stack = LocalStack(tmp_path, quiet_settings(header_timeout_s=3600.0))
    try:
        start_with_file_limit(stack, DAEMON_FILE_LIMIT)
        yield stack
    finally:
        stack.stop()


def closed_by_peer(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_idle_clients_cannot_lock_the_till_out(limited_stack: LocalStack) -> None:
    stack = limited_stack
    with ExitStack() as idle_clients:
        idle: list[socket.socket] = []
        for _ in range(IDLE_CLIENTS):
            client = idle_clients.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            client.settimeout(TILL_TOTAL_TIMEOUT_S)
            client.connect(str(stack.socket_path))
            idle.append(client)

        with stack.client(timeout_s=TILL_TOTAL_TIMEOUT_S) as till:
            response = post_json(till, "/v1/receipts", cash_receipt("limits-1"))
        assert response.status_code == 201, response.text

        closed = wait_for(
            lambda: sum(closed_by_peer(client) for client in idle) or None,
            timeout_s=10,
            what="the daemon closing idle connections",
        )
        assert closed >= IDLE_CLIENTS - DAEMON_FILE_LIMIT, closed
    log = (stack.root / "daemon.log").read_text(encoding="utf-8")
    assert log.count("out of system resource") <= 1, "the accept errors flood the log"


def test_a_client_that_never_finishes_its_headers_is_closed(tmp_path: Path) -> None:
    with running_stack(tmp_path, quiet_settings(header_timeout_s=0.5)) as stack:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:
            slow.connect(str(stack.socket_path))
            slow.sendall(b"GET /v1/health HTTP/1.1\r\nHost: pos-agent\r\n")  # no final CRLF
            wait_for(lambda: closed_by_peer(slow), timeout_s=10, what="the slow client closed")
        with stack.client(timeout_s=TILL_TOTAL_TIMEOUT_S) as till:  # a normal client still works
            assert parsed(till.get("/v1/health"), Health, 200).status == "ok"
