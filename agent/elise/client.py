"""The Elise client: one connection pool, one typed outcome per call, nothing secret logged.

It talks to its transport (`ProviderTransport`, see its module for why it is ours) rather than
through httpx's `AsyncClient`: every call is a POST of bytes the daemon already froze, to one
host, with fixed headers, so the client layer's URL merging, cookie jar, auth and redirect
hooks did nothing here but cost about a third of the agent's CPU per document (measured in the
sync). httpx still parses the provider's URLs (once per path) and names the exceptions.

Every public call is bounded twice: the connect/read/write/pool timeouts per exchange, and
`total_timeout_s` over the whole call (including a login or refresh it needs), so the till never
waits longer than configured. Payload bytes are posted exactly as given: the daemon froze them
before the first attempt, and the send method travels inside them
(`AdditionalDetails.TransmissionMethod`), never as a URL parameter.

Logged per exchange (logger `pos_agent.elise`): method, path, status, latency, at DEBUG for an
answer (the access log has a line per till request and the sync one per run; a line per synced
document cost a tenth of the sync's CPU) and at WARNING for a failure. Never headers, bodies,
query strings or tokens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TypeVar

import httpx

from agent import __version__
from agent.config import ProviderConfig
from agent.elise.auth import ApiKeyAuth, AuthenticationFailed, BearerAuth
from agent.elise.outcomes import (
    IrisInitiateOutcome,
    IrisStatusOutcome,
    ListOutcome,
    OrderListOutcome,
    Rejected,
    SendOutcome,
    SignatureValidation,
    SignOutcome,
    Unauthorized,
    Unreachable,
    UpdateOutcome,
    ValidateOutcome,
)
from agent.elise.requests import IrisPaymentRequest, SignPosRequest
from agent.elise.responses import (
    document_page,
    iris_initiated_outcome,
    iris_status_outcome,
    order_page,
    send_outcome,
    sign_outcome,
    update_outcome,
    validate_outcome,
)
from agent.elise.transport import ProviderAnswer, ProviderTransport, Target, Timeouts
from agent.fiscal.uid import prefixed_vat
from agent.json_codec import dumps
from agent.secrets import ApiKey

log = logging.getLogger("pos_agent.elise")

Outcome = TypeVar("Outcome")

# "Retrieve Open Order Documents (FnB)": the page's name is public, its path is assumed beside
# GetDocuments (docs/provider.md §15).
OPEN_ORDERS_PATH = "/Invoice/GetOpenOrderDocuments"

# A well-formed input nobody signed: the provider can only answer "not valid" (or 400).
PROBE_INPUT = "0" * 40 + ";;20000101000000;0;0;0;0;PROBE"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _by_body(classify: Callable[[int, bytes], Outcome]) -> Callable[[ProviderAnswer], Outcome]:
    """A classifier of the status and body (every call but the document list)."""
    return lambda response: classify(response.status_code, response.content)


class EliseClient:
    def __init__(
        self,
        config: ProviderConfig,
        *,
        issuer_vat: str,
        api_key: ApiKey,
        transport: ProviderTransport | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._config = config
        self._issuer_vat = prefixed_vat(issuer_vat)
        self._clock = clock or _utc_now
        self._auth: ApiKeyAuth | BearerAuth = (
            BearerAuth(issuer_vat, api_key, self._clock)
            if config.auth == "bearer"
            else ApiKeyAuth(api_key)
        )
        # No proxy, netrc or certificate settings picked up from the environment (the service's
        # behaviour must come from its config, and .netrc could add credentials), no redirects
        # (a 3xx is classified like any other unexpected answer), no retries.
        self._transport = transport or ProviderTransport()
        self._base_url = str(config.base_url).rstrip("/")
        self._targets: dict[str, Target] = {}
        self._timeouts = Timeouts(
            connect=config.connect_timeout_s,
            read=config.read_timeout_s,
            write=config.read_timeout_s,
            pool=config.connect_timeout_s,
        )
        self._headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": f"pos-agent/{__version__}",
        }
        self._last_server_date: datetime | None = None
        self._last_date_header = ""
        self._clock_offset_s: float | None = None
        self.last_success_at: datetime | None = None
        # Exchanges begun: a request that saw another count after a refused write may have been
        # acted on by the provider, so the API does not run it again by itself.
        self.exchanges_begun = 0

    def __repr__(self) -> str:
        return f"EliseClient(base_url={self._config.base_url!r}, auth={self._config.auth!r})"

    @property
    def last_server_date(self) -> datetime | None:
        """The provider's `Date` header from the last answer (for the clock check)."""
        return self._last_server_date

    @property
    def clock_offset_s(self) -> float | None:
        """Provider time minus local time at the last answer; positive = we are behind."""
        return self._clock_offset_s

    async def send_invoice(self, payload: bytes) -> SendOutcome:
        """`POST /Invoice/json` with an EliseCoreDocument (11.1, 11.4, …)."""
        return await self._call("/Invoice/json", payload, _by_body(self._send_outcome))

    async def send_receipt(self, payload: bytes) -> SendOutcome:
        """`POST /Receipt` with a camelCase POS receipt (8.4, 8.5)."""
        return await self._call("/Receipt", payload, _by_body(self._send_outcome))

    async def sign_pos(self, request: SignPosRequest) -> SignOutcome:
        return await self._call(
            "/PosTransactions/signpos", request.to_json(), _by_body(sign_outcome)
        )

    async def update_payment(self, body: bytes) -> UpdateOutcome:
        return await self._call("/Invoice/updatePayment", body, _by_body(update_outcome))

    async def validate_signature(self, input: str, signature: str) -> ValidateOutcome:
        return await self._call(
            "/PosTransactions/validate",
            dumps({"input": input, "signature": signature}),
            _by_body(validate_outcome),
            params={"IssuerTin": self._issuer_vat},
        )

    async def list_documents(self, first: date, last: date, page: int) -> ListOutcome:
        """`GET /Invoice/GetDocuments/{vat}/{page}/?From=&To=`: one page of the documents the
        provider holds for those days, and the next page's number (docs/provider.md §14)."""
        return await self._call(
            f"/Invoice/GetDocuments/{self._issuer_vat}/{page}/",
            b"",
            partial(document_page, page=page),
            params={"From": f"{first:%Y%m%d}", "To": f"{last:%Y%m%d}"},
            method="GET",
        )

    async def list_open_orders(self, page: int) -> OrderListOutcome:
        """`GET /Invoice/GetOpenOrderDocuments/{vat}/{page}/`: one page of the order slips (8.6)
        the provider holds open for the issuer, any day (docs/provider.md §15, assumed shape)."""
        return await self._call(
            f"{OPEN_ORDERS_PATH}/{self._issuer_vat}/{page}/",
            b"",
            partial(order_page, page=page),
            method="GET",
        )

    async def initiate_iris(self, request: IrisPaymentRequest) -> IrisInitiateOutcome:
        return await self._call(
            "/IrisPayments/InitiatePayment", request.to_json(), _by_body(iris_initiated_outcome)
        )

    async def iris_status(self, end_to_end_id: str) -> IrisStatusOutcome:
        return await self._call(
            "/IrisPayments/GetPaymentStatus",
            b"",
            _by_body(iris_status_outcome),
            params={"endToEndDiasId": end_to_end_id},
            method="GET",
        )

    async def probe(self) -> bool:
        """Is the provider reachable and does it take our credentials?

        Uses `/PosTransactions/validate` with an input nobody signed: it has no side effect (no
        document, no signature, nothing sent to AADE), needs authentication in both modes (in
        bearer mode it also exercises login/refresh), and does not depend on AADE being up. A
        200 verdict or a 400 (the provider may refuse the dummy) both prove an answering
        provider; 401, 408, 5xx and network errors do not.
        """
        outcome = await self.validate_signature(PROBE_INPUT, "")
        return isinstance(outcome, SignatureValidation | Rejected)

    async def aclose(self) -> None:
        await self._transport.aclose()

    def _send_outcome(self, status: int, content: bytes) -> SendOutcome:
        return send_outcome(status, content, self._config.portal_url)

    async def _call(
        self,
        path: str,
        content: bytes,
        classify: Callable[[ProviderAnswer], Outcome],
        params: dict[str, str] | None = None,
        method: str = "POST",
    ) -> Outcome | Rejected | Unauthorized | Unreachable:
        total = self._config.total_timeout_s
        post = partial(self._post, params=params, method=method)
        try:
            async with asyncio.timeout(total):
                headers = await self._auth.headers(self._post)
                response = await post(path, content, headers)
                if response.status_code == 401 and await self._auth.renew(self._post, headers):
                    headers = await self._auth.headers(self._post)
                    response = await post(path, content, headers)
        except TimeoutError:
            log.warning("%s %s gave up after the total timeout of %.1f s", method, path, total)
            return Unreachable(f"timeout: no answer within the total timeout of {total} s")
        except AuthenticationFailed as exc:
            return exc.outcome
        except httpx.TimeoutException as exc:
            return Unreachable(f"timeout: {type(exc).__name__}")
        except httpx.LocalProtocolError as exc:
            # A header with a control byte: it may be the API key or a token, so not quoted.
            return Unreachable(f"{type(exc).__name__}: the request could not be sent")
        except httpx.HTTPError as exc:
            return Unreachable(f"{type(exc).__name__}: {exc}")
        outcome = classify(response)
        if not isinstance(outcome, Unreachable):
            self.last_success_at = self._clock()
        return outcome

    async def _post(
        self,
        path: str,
        content: bytes,
        headers: dict[str, str],
        params: dict[str, str] | None = None,
        method: str = "POST",
    ) -> ProviderAnswer:
        """One exchange, logged without headers, body or query, and its `Date` noted."""
        started = time.perf_counter()
        target = self._target(path, params)
        self.exchanges_begun += 1
        try:
            answer = await self._transport.exchange(
                method, target, {**self._headers, **headers}, content, self._timeouts
            )
        except httpx.HTTPError as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.warning(
                "%s %s failed after %.0f ms: %s", method, path, elapsed_ms, type(exc).__name__
            )
            raise
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug("%s %s -> %d in %.0f ms", method, path, answer.status_code, elapsed_ms)
        self._note_date(answer.headers.get("date"))
        return answer

    def _target(self, path: str, params: dict[str, str] | None) -> Target:
        """Parsed once per path: parsing it per call was a tenth of the sync's CPU."""
        if params:
            return Target.of(httpx.URL(self._base_url + path, params=params))
        target = self._targets.get(path)
        if target is None:
            target = self._targets[path] = Target.of(httpx.URL(self._base_url + path))
        return target

    def _note_date(self, value: str | None) -> None:
        """The offset is taken at every answer; the header, which changes once a second, is
        parsed only when it changed."""
        if not value:
            return
        if value != self._last_date_header:
            try:
                server_date = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return
            if server_date.tzinfo is None:
                server_date = server_date.replace(tzinfo=UTC)
            self._last_server_date = server_date
            self._last_date_header = value
        assert self._last_server_date is not None
        self._clock_offset_s = (self._last_server_date - self._clock()).total_seconds()
