"""The metrics-only listener of a real daemon: TLS and basic auth from an exporter-toolkit web
config, GET /metrics and nothing else, the same series as /metrics on the API socket."""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.tools.local_stack import LocalStack, StackSettings, free_tcp_port
from tests.api.certificates import self_signed
from tests.e2e.stack import E2E_DEFAULTS, cash_receipt, post_json, wait_for

pytestmark = pytest.mark.e2e
PASSWORD = "scrape-me"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, str, Path]]:
    root = tmp_path_factory.mktemp("metrics-listener")
    cert, key = self_signed(root)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web = root / "web-config.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    port = free_tcp_port()
    settings = StackSettings(
        **E2E_DEFAULTS,
        metrics_listen=f"127.0.0.1:{port}",
        metrics_web_config=web,
        register_name="till-7",
    )
    with LocalStack(root / "stack", settings) as stack:
        yield stack, f"https://127.0.0.1:{port}", cert


def names(exposition: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(exposition) for s in f.samples}


def test_tls_and_basic_auth_guard_the_same_series_as_the_socket(
    secured: tuple[LocalStack, str, Path],
) -> None:
    stack, url, cert = secured
    with stack.client() as local:
        assert post_json(local, "/v1/receipts", cash_receipt("listener-1")).status_code == 201
        on_socket = local.get("/metrics").text
    with httpx.Client(
        base_url=url, verify=ssl.create_default_context(cafile=str(cert)), timeout=10
    ) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", auth=("prometheus", "wrong")).status_code == 401
        scraped = client.get("/metrics", auth=("prometheus", PASSWORD))
        assert scraped.status_code == 200
        for path in ("/v1/status", "/v1/health", "/openapi.json", "/"):
            assert client.get(path, auth=("prometheus", PASSWORD)).status_code == 404, path
        assert client.post("/metrics", auth=("prometheus", PASSWORD)).status_code == 405
        with_body = client.request(
            "GET", "/metrics", content=b"x" * 10, auth=("prometheus", PASSWORD)
        )
        assert with_body.status_code == 400
    assert names(scraped.text) == names(on_socket)
    [build] = [
        s
        for f in text_string_to_metric_families(scraped.text)
        for s in f.samples
        if s.name == "pos_agent_build_info"
    ]
    assert build.labels["register"] == "till-7" and build.labels["vat"] == "094019245"
    with pytest.raises(httpx.HTTPError):  # plain HTTP is not answered on a TLS listener
        httpx.get(url.replace("https", "http") + "/metrics", timeout=5)


def test_refused_requests_are_logged_and_a_scrape_is_not(
    secured: tuple[LocalStack, str, Path],
) -> None:
    stack, url, cert = secured
    with httpx.Client(
        base_url=url, verify=ssl.create_default_context(cafile=str(cert)), timeout=10
    ) as client:
        client.get("/metrics", auth=("prometheus", PASSWORD))
        client.get("/secret-probe")
    refused = "GET /secret-probe from 127.0.0.1 -> 401"

    def logged() -> str | None:  # the daemon writes the line after it has answered
        text = (stack.root / "daemon.log").read_text()
        return text if refused in text else None

    log = wait_for(logged, timeout_s=10, what="the refused request in the daemon's log")
    assert "GET /metrics from 127.0.0.1 -> 200" not in log
    assert PASSWORD not in log


def listening_tcp_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on, from /proc (its socket inodes in LISTEN)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_the_listener_is_off_unless_configured(
    secured: tuple[LocalStack, str, Path], tmp_path: Path
) -> None:
    stack, url, _ = secured
    assert stack.daemon is not None
    assert listening_tcp_ports(stack.daemon.pid) == {int(url.rsplit(":", 1)[1])}
    with LocalStack(tmp_path / "plain", StackSettings(**E2E_DEFAULTS)) as plain:
        assert plain.daemon is not None
        assert listening_tcp_ports(plain.daemon.pid) == set()
