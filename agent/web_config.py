"""TLS and basic auth for the metrics listener, read from a Prometheus exporter-toolkit web
config (https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md),
so an operator writes the same file as for node_exporter:

    tls_server_config:
      cert_file: /etc/pos-agent/metrics.crt
      key_file: /etc/pos-agent/metrics.key
    basic_auth_users:
      prometheus: $2b$12$...          # htpasswd -nBC 12 prometheus, or python3 -c 'import bcrypt…'

A key this agent does not implement is refused with its name rather than ignored: a TLS or auth
setting that silently does nothing is worse than a daemon that does not start.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ssl
from pathlib import Path
from typing import Annotated, Literal

import bcrypt
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from agent.config import ConfigError

# bcrypt looks at 72 bytes at most and the library refuses longer passwords.
BCRYPT_MAX_PASSWORD = 72
ClientAuth = Literal["NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]
_VERIFY = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsServerConfig(_Strict):
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    # RequestClientCert and RequireAnyClientCert (a certificate taken without verifying it)
    # cannot be expressed with Python's ssl module and are refused.
    client_auth_type: ClientAuth = "NoClientCert"
    min_version: Literal["TLS12", "TLS13"] = "TLS12"


def _bcrypt_hash(hashed: str) -> str:
    if not hashed.startswith(("$2a$", "$2b$", "$2y$")) or len(hashed) != 60:
        raise ValueError(
            "not a bcrypt hash (60 characters starting $2b$); make one with htpasswd -nBC 12 USER"
        )
    return hashed


class WebConfig(_Strict):
    tls_server_config: TlsServerConfig | None = None
    basic_auth_users: dict[str, Annotated[str, AfterValidator(_bcrypt_hash)]] = {}


def load_web_config(path: Path) -> WebConfig:
    """Parse and check the file and, with TLS, that the certificate and key load."""
    where = f"metrics.web_config_file {path}"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of tls_server_config, basic_auth_users")
    try:
        web = WebConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None
    if web.tls_server_config is not None:
        server_context(web.tls_server_config, where=where)
    return web


def server_context(tls: TlsServerConfig, *, where: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = _TLS_VERSIONS[tls.min_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{where}: tls_server_config: cannot load cert_file {tls.cert_file} with key_file "
            f"{tls.key_file}: {exc}"
        ) from None
    context.verify_mode = _VERIFY[tls.client_auth_type]
    if tls.client_auth_type != "NoClientCert":
        if tls.client_ca_file is None:
            raise ConfigError(
                f"{where}: tls_server_config.client_auth_type {tls.client_auth_type} needs "
                "client_ca_file"
            )
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{where}: tls_server_config.client_ca_file {tls.client_ca_file}: {exc}"
            ) from None
    return context


class BasicAuth:
    """Checks `Authorization: Basic` against the bcrypt hashes.

    bcrypt is slow by design (tens of ms per check), and the register's event loop also serves
    the till: each check runs in a worker thread, one at a time, and a user's password that
    matched once is remembered (as a keyed digest, never in clear) so that a scrape every 15 s
    costs one bcrypt check per daemon life, not one per scrape."""

    def __init__(self, users: dict[str, str]) -> None:
        self._users = {user: hashed.encode() for user, hashed in users.items()}
        self._key = hashlib.sha256(b"".join(sorted(self._users.values()))).digest()
        self._known: dict[str, bytes] = {}
        self._one_at_a_time = asyncio.Lock()

    async def allows(self, authorization: str | None) -> bool:
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        digest = hmac.new(self._key, user.encode() + b"\0" + password, "sha256").digest()
        known = self._known.get(user)
        if known is not None and hmac.compare_digest(known, digest):
            return True
        if not self._users or len(password) > BCRYPT_MAX_PASSWORD:
            return False
        # An unknown user is checked against a known user's hash (and refused whatever the
        # result): the same bcrypt cost, so the answer time does not tell which names exist.
        hashed = self._users.get(user) or next(iter(self._users.values()))
        async with self._one_at_a_time:
            matched = await asyncio.to_thread(bcrypt.checkpw, password, hashed)
        if matched and user in self._users:
            self._known[user] = digest
            return True
        return False


def _basic_credentials(authorization: str | None) -> tuple[str, bytes] | None:
    if authorization is None:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return user.decode("utf-8", "replace"), password
