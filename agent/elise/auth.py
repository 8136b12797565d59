"""The two ways to authenticate to Elise: a static `APIKey` header, or a bearer token.

The token is bought with the key at `/Authentication/login` and renewed at
`/Authentication/Refresh` (docs/provider.md §3). The provider documents no expiry fields in the
token response, so lifetimes are tracked here on the injected clock: renew 2 minutes before the
documented 15 minutes, log in again when the 7-day refresh token is near its end or when the
provider says 401. Secrets stay inside these objects;
their reprs show none of them, and no log line or exception message is built from them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from agent.elise.outcomes import AadeDown, Rejected, Unauthorized, Unreachable
from agent.elise.responses import failure, fold_keys, json_object
from agent.elise.transport import ProviderAnswer
from agent.fiscal.uid import prefixed_vat
from agent.json_codec import dumps
from agent.secrets import ApiKey

Post = Callable[[str, bytes, dict[str, str]], Awaitable[ProviderAnswer]]

LOGIN_PATH = "/Authentication/login"
REFRESH_PATH = "/Authentication/Refresh"
ACCESS_LIFETIME = timedelta(minutes=15)
REFRESH_LIFETIME = timedelta(days=7)
RENEW_MARGIN = timedelta(minutes=2)


class AuthenticationFailed(Exception):
    """Login did not produce a token; `outcome` says why (401 → Unauthorized, 5xx → Unreachable)."""

    def __init__(self, outcome: Rejected | Unauthorized | Unreachable) -> None:
        super().__init__(type(outcome).__name__)
        self.outcome = outcome


class ApiKeyAuth:
    """`APIKey: <key>` on every call; nothing to renew, so a 401 is final."""

    def __init__(self, api_key: ApiKey) -> None:
        self._api_key = api_key

    def __repr__(self) -> str:
        return "ApiKeyAuth(***)"

    async def headers(self, post: Post) -> dict[str, str]:
        return {"APIKey": self._api_key.reveal()}

    async def renew(self, post: Post, rejected: dict[str, str]) -> bool:
        return False


class BearerAuth:
    """`Authorization: Bearer <access token>`, shared by concurrent calls behind one lock."""

    def __init__(self, issuer_vat: str, api_key: ApiKey, clock: Callable[[], datetime]) -> None:
        self._vat = prefixed_vat(issuer_vat)
        self._api_key = api_key
        self._clock = clock
        self._lock = asyncio.Lock()
        self._access: str | None = None
        self._refresh: str | None = None
        self._renew_access_at: datetime | None = None
        self._login_again_at: datetime | None = None

    def __repr__(self) -> str:
        return f"BearerAuth(vat={self._vat!r}, token={'***' if self._access else None})"

    async def headers(self, post: Post) -> dict[str, str]:
        async with self._lock:
            now = self._clock()
            if self._login_again_at is None or now >= self._login_again_at:
                await self._login(post)
            elif self._renew_access_at is None or now >= self._renew_access_at:
                await self._renew_access(post)
            return self._header()

    async def renew(self, post: Post, rejected: dict[str, str]) -> bool:
        """After a 401: log in again once, unless a concurrent call already replaced the token."""
        async with self._lock:
            if self._access is not None and rejected != self._header():
                return True
            await self._login(post)
            return True

    def _header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._access}"}

    async def _login(self, post: Post) -> None:
        self._access = self._refresh = None
        self._renew_access_at = self._login_again_at = None
        started = self._clock()
        body = dumps({"vat": self._vat, "key": self._api_key.reveal()})
        response = await post(LOGIN_PATH, body, {})
        if response.status_code != 200:
            outcome = failure(response.status_code, response.content)
            if isinstance(outcome, AadeDown):  # AADE has no part in a login
                outcome = Unreachable(f"login answered 408: {outcome.message}")
            raise AuthenticationFailed(outcome)
        if not self._take_tokens(response.content, started):
            raise AuthenticationFailed(Unreachable("login answered without tokens"))

    async def _renew_access(self, post: Post) -> None:
        """Refresh with the current access token; any failure falls back to a fresh login."""
        started = self._clock()
        assert self._refresh is not None
        response = await post(REFRESH_PATH, dumps(self._refresh), self._header())
        if response.status_code != 200 or not self._take_tokens(response.content, started):
            await self._login(post)

    def _take_tokens(self, content: bytes, started: datetime) -> bool:
        """Keep `accessToken` and `refreshToken.token`; lifetimes count from the request start."""
        body = json_object(content)
        access = body.get("accesstoken")
        refresh = body.get("refreshtoken")
        if isinstance(refresh, dict):
            refresh = fold_keys(refresh).get("token")
        fresh_refresh = isinstance(refresh, str) and bool(refresh) and refresh != self._refresh
        if not isinstance(access, str) or not access or not (fresh_refresh or self._refresh):
            return False
        self._access = access
        self._renew_access_at = started + ACCESS_LIFETIME - RENEW_MARGIN
        if fresh_refresh:
            assert isinstance(refresh, str)
            self._refresh = refresh
            self._login_again_at = started + REFRESH_LIFETIME - RENEW_MARGIN
        return True
