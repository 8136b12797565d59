"""The metrics-only listener's app and its exporter-toolkit web config, without a daemon."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from agent.api.metrics_app import MetricsOnlyApp
from agent.config import ConfigError
from agent.web_config import BasicAuth, load_web_config
from tests.api.certificates import self_signed

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
EXPOSITION = b"# HELP pos_agent_breaker_open x\n"


def call(app: MetricsOnlyApp, method: str, path: str, headers: dict[str, str] | None = None):
    """One ASGI request; (status, headers, body)."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("10.8.0.1", 40000),
    }

    async def receive() -> dict[str, Any]:
        raise AssertionError("the metrics app never reads a body")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def test_only_get_metrics_without_a_body_is_served() -> None:
    scrapes = []
    app = MetricsOnlyApp(lambda: scrapes.append(1) or EXPOSITION)
    status, headers, body = call(app, "GET", "/metrics")
    assert (status, body) == (200, EXPOSITION)
    assert headers[b"content-type"].startswith(b"text/plain; version=0.0.4")
    for path in ("/", "/v1/status", "/v1/receipts", "/metrics/", "/openapi.json"):
        assert call(app, "GET", path)[0] == 404, path
    status, headers, _ = call(app, "POST", "/metrics")
    assert (status, headers[b"allow"]) == (405, b"GET")
    assert call(app, "GET", "/metrics", {"content-length": "5"})[0] == 400
    assert call(app, "GET", "/metrics", {"transfer-encoding": "chunked"})[0] == 400
    assert len(scrapes) == 1  # nothing but the one good request scraped


def test_basic_auth_wants_a_known_user_and_the_right_password() -> None:
    app = MetricsOnlyApp(lambda: EXPOSITION, BasicAuth({"prometheus": HASH}))
    status, headers, _ = call(app, "GET", "/metrics")
    assert status == 401 and headers[b"www-authenticate"].startswith(b"Basic")
    assert call(app, "GET", "/metrics", basic("prometheus", "wrong"))[0] == 401
    assert call(app, "GET", "/metrics", basic("other", "s3cret"))[0] == 401
    assert call(app, "GET", "/metrics", {"authorization": "Bearer s3cret"})[0] == 401
    assert call(app, "GET", "/metrics", {"authorization": "Basic !!!"})[0] == 401
    assert call(app, "GET", "/metrics", basic("prometheus", "x" * 100))[0] == 401
    assert call(app, "GET", "/metrics", basic("prometheus", "s3cret"))[0] == 200
    # Unauthenticated callers learn nothing about the paths either.
    assert call(app, "GET", "/v1/status")[0] == 401
    assert call(app, "GET", "/v1/status", basic("prometheus", "s3cret"))[0] == 404


def test_a_matched_password_is_not_hashed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = BasicAuth({"prometheus": HASH})
    checks = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda p, h: checks.append(1) or real(p, h))

    async def scrapes() -> list[bool]:
        return [await auth.allows(basic("prometheus", "s3cret")["authorization"]) for _ in range(5)]

    assert asyncio.run(scrapes()) == [True] * 5
    assert len(checks) == 1


def test_a_failing_scrape_is_a_503_not_a_crash() -> None:
    def broken() -> bytes:
        raise OSError("disk gone")

    assert call(MetricsOnlyApp(broken), "GET", "/metrics")[0] == 503


def test_web_config_with_tls_and_users_loads(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    path = tmp_path / "web.yml"
    path.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  prometheus: '{HASH}'\n"
    )
    web = load_web_config(path)
    assert web.tls_server_config is not None and web.tls_server_config.cert_file == cert
    assert web.basic_auth_users == {"prometheus": HASH}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("basic_auth_users:\n  prometheus: plaintext\n", "basic_auth_users.prometheus"),
        ("http_server_config:\n  http2: false\n", "http_server_config"),
        (
            "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
            "cannot load cert_file /nonexistent.crt",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequestClientCert\n",
            "client_auth_type",
        ),
        ("[1, 2]\n", "expected a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_a_wrong_web_config_is_refused_naming_the_key(
    tmp_path: Path, text: str, names: str
) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"metrics\.web_config_file") as refused:
        load_web_config(path)
    assert names in str(refused.value)


def test_client_certificates_need_a_ca(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    path = tmp_path / "web.yml"
    path.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
    )
    with pytest.raises(ConfigError, match="needs client_ca_file"):
        load_web_config(path)
