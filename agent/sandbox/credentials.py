"""Who is calling: the one API key bound to one issuer VAT, and the bearer tokens it bought.

Access tokens live 15 minutes and refresh tokens 7 days on the sandbox clock, the lifetimes the
provider documents (docs/provider.md §3).
Tokens are kept in memory only: after a restart clients log in again, as with a real provider
that rotates its signing keys.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.fiscal.uid import bare_vat
from agent.sandbox.clock import SandboxClock
from agent.secrets import ApiKey

ACCESS_LIFETIME = timedelta(minutes=15)
REFRESH_LIFETIME = timedelta(days=7)


@dataclass
class _Session:
    refresh_token: str
    refresh_expires_at: datetime
    access_token: str
    access_expires_at: datetime


class Credentials:
    def __init__(self, api_key: ApiKey, issuer_vat: str, clock: SandboxClock) -> None:
        self._api_key = api_key
        self.issuer_vat = bare_vat(issuer_vat)
        self._clock = clock
        self._by_access: dict[str, _Session] = {}
        self._by_refresh: dict[str, _Session] = {}

    def __repr__(self) -> str:
        return f"Credentials(issuer_vat={self.issuer_vat!r})"

    def key_matches(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self._api_key.reveal().encode())

    def bearer_is_valid(self, access_token: str) -> bool:
        session = self._by_access.get(access_token)
        return session is not None and self._clock.now() < session.access_expires_at

    def login(self, vat: str, key: str) -> dict[str, object] | None:
        if not (self.key_matches(key) and bare_vat(vat) == self.issuer_vat):
            return None
        now = self._clock.now()
        session = _Session(
            refresh_token=secrets.token_urlsafe(32),
            refresh_expires_at=now + REFRESH_LIFETIME,
            access_token="",
            access_expires_at=now,
        )
        self._by_refresh[session.refresh_token] = session
        return self._issue_access(session)

    def refresh(self, access_token: str, refresh_token: str) -> dict[str, object] | None:
        """A new access token for a live refresh token presented with its session's access token.

        The presented access token may already have expired (refresh "shortly before/after" the
        15 minutes, as the provider's docs put it); it must belong to the same session.
        """
        session = self._by_refresh.get(refresh_token)
        if session is None or session.access_token != access_token:
            return None
        if self._clock.now() >= session.refresh_expires_at:
            del self._by_refresh[refresh_token]
            return None
        self._by_access.pop(session.access_token, None)
        return self._issue_access(session)

    def _issue_access(self, session: _Session) -> dict[str, object]:
        session.access_token = secrets.token_urlsafe(32)
        session.access_expires_at = self._clock.now() + ACCESS_LIFETIME
        self._by_access[session.access_token] = session
        return {
            "accessToken": session.access_token,
            "refreshToken": {
                "token": session.refresh_token,
                "expires": session.refresh_expires_at.isoformat(),
            },
        }
