"""The local API on loopback TCP, through the real daemon: only callers with the bearer token
are served, and no request header can make a TCP caller look like a Unix socket peer (those
need no token) or change who the access log names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.tools.local_stack import LocalStack, StackSettings, free_tcp_port
from tests.e2e.stack import E2E_DEFAULTS, wait_for

pytestmark = pytest.mark.e2e

FORGED = "unix:uid=0:gid=0:pid=1"


@pytest.fixture(scope="module")
def tcp_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, str]]:
    port = free_tcp_port()
    settings = StackSettings(**E2E_DEFAULTS, api_tcp_port=port)
    with LocalStack(tmp_path_factory.mktemp("tcp-listener") / "stack", settings) as stack:
        yield stack, f"http://127.0.0.1:{port}"


def test_a_tcp_caller_needs_the_bearer_token(tcp_stack: tuple[LocalStack, str]) -> None:
    stack, url = tcp_stack
    assert httpx.get(f"{url}/v1/status").status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.get(f"{url}/v1/status", headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {stack.tcp_token}"}
    assert httpx.get(f"{url}/v1/status", headers=right).status_code == 200


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_no_header_makes_a_tcp_caller_a_socket_peer(
    tcp_stack: tuple[LocalStack, str], header: str
) -> None:
    """A proxy header naming a Unix peer (who needs no token) is not believed: nothing stands
    in front of this listener, so the caller is who the connection says."""
    stack, url = tcp_stack
    log = Path(stack.root / "daemon.log")
    before = log.stat().st_size
    value = f"for={FORGED}" if header == "Forwarded" else FORGED
    answer = httpx.get(f"{url}/v1/status", headers={header: value})
    assert answer.status_code == 401, answer.text[:200]

    def logged() -> str | None:
        """The access log's lines since the request, once its line is there (the daemon
        writes it after the answer has left)."""
        with log.open("rb") as lines:
            lines.seek(before)
            written = lines.read().decode("utf-8", errors="replace")
        return written if "GET /v1/status from 127.0.0.1 -> 401" in written else None

    written = wait_for(logged, timeout_s=10, what="the refused request in the daemon's log")
    assert FORGED not in written
