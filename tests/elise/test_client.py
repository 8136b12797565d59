"""EliseClient against the sandbox provider over real loopback HTTP: one test per outcome,
bearer login/refresh/expiry on movable clocks, signatures, and no secret in any log line."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.config import ProviderConfig
from agent.elise.client import EliseClient
from agent.elise.outcomes import (
    AadeDown,
    Accepted,
    Duplicate,
    PaymentUpdated,
    Rejected,
    SignatureValidation,
    Signed,
    Unauthorized,
    Unreachable,
)
from agent.elise.requests import PaymentReference, SignPosRequest
from agent.fiscal.uid import document_uid
from agent.json_codec import dumps
from agent.sandbox.server import SandboxServer
from agent.secrets import ApiKey, CredentialError
from tests.conftest import SANDBOX_KEY, SANDBOX_VAT

T = TypeVar("T")
PORTAL = "https://portal.example"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class MovableClock:
    """The client's clock, moved by the test in step with the sandbox's."""

    def __init__(self) -> None:
        self._now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


def make_client(
    server: SandboxServer,
    *,
    auth: str = "apikey",
    key: str = SANDBOX_KEY,
    clock: Callable[[], datetime] | None = None,
    **timeouts: float,
) -> EliseClient:
    config = ProviderConfig(base_url=server.base_url, portal_url=PORTAL, auth=auth, **timeouts)
    return EliseClient(config, issuer_vat=SANDBOX_VAT, api_key=ApiKey(key), clock=clock)


def set_fault(server: SandboxServer, mode: str, **extra: int) -> None:
    answer = httpx.post(f"{server.base_url}/_sandbox/faults", json={"mode": mode, **extra})
    assert answer.status_code == 200


def advance_sandbox(server: SandboxServer, seconds: float) -> None:
    answer = httpx.post(f"{server.base_url}/_sandbox/clock", json={"advance_s": seconds})
    assert answer.status_code == 200


def sign_request(mark: int | None = None, number: str = "1") -> SignPosRequest:
    return SignPosRequest(
        payment=reference(number, datetime(2026, 3, 2, 8, 15, tzinfo=UTC)),  # 10:15 in Athens
        mark=mark,
        terminal_id="16000198",
        signature_duration="H_24",
        nsp_code="CommonWeb",
    )


def reference(number: str, issued: datetime) -> PaymentReference:
    return PaymentReference(
        issuer_tin=SANDBOX_VAT,
        issue_date=issued,
        branch_code=0,
        invoice_type_code="11.1",
        series="ΑΛΠ",
        identifier=number,
        payment_amount=Decimal("15.00"),
        total_net_amount=Decimal("12.09"),
        total_vat_amount=Decimal("2.91"),
        total_amount=Decimal("15.00"),
    )


def once(client: EliseClient, call: Callable[[EliseClient], Awaitable[T]]) -> T:
    """One call on a fresh client, which is closed afterwards."""

    async def scenario() -> T:
        try:
            return await call(client)
        finally:
            await client.aclose()

    return run(scenario())


def send_once(client: EliseClient, payload: bytes) -> Any:
    return once(client, lambda c: c.send_invoice(payload))


# -- one test per outcome ---------------------------------------------------------------------


def test_accepted(sandbox: SandboxServer, make_invoice: Callable[..., bytes]) -> None:
    client = make_client(sandbox)
    outcome = send_once(client, make_invoice(1))
    assert isinstance(outcome, Accepted)
    assert 10**14 <= outcome.mark < 10**15
    assert outcome.uid == document_uid(SANDBOX_VAT, date(2026, 3, 2), 0, "11.1", "ΑΛΠ", 1)
    assert outcome.authentication_code and len(outcome.authentication_code) == 40
    assert outcome.qr_url == outcome.raw["url"]
    assert client.last_success_at is not None and client.last_server_date is not None
    assert client.clock_offset_s is not None and abs(client.clock_offset_s) < 5


def test_duplicate_carries_the_original_mark(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes]
) -> None:
    async def scenario() -> tuple[Any, Any]:
        client = make_client(sandbox)
        try:
            return await client.send_invoice(make_invoice(1)), await client.send_invoice(
                make_invoice(1)
            )
        finally:
            await client.aclose()

    first, second = run(scenario())
    assert isinstance(first, Accepted)
    assert isinstance(second, Duplicate)
    assert second.mark == first.mark and "already been transmitted" in second.message


def test_duplicate_after_sandbox_restart(
    sandbox_factory: Callable[..., SandboxServer], make_invoice: Callable[..., bytes]
) -> None:
    first = sandbox_factory()
    accepted = send_once(make_client(first), make_invoice(1))
    first.stop()
    again = send_once(make_client(sandbox_factory()), make_invoice(1))
    assert isinstance(accepted, Accepted) and isinstance(again, Duplicate)
    assert again.mark == accepted.mark


def test_aade_down_is_408(sandbox: SandboxServer, make_invoice: Callable[..., bytes]) -> None:
    set_fault(sandbox, "aade_down")
    outcome = send_once(make_client(sandbox), make_invoice(1))
    assert isinstance(outcome, AadeDown) and "IAPR" in outcome.message


def test_rejected_carries_the_providers_messages(
    sandbox: SandboxServer, make_invoice_document: Callable[..., dict[str, Any]]
) -> None:
    doc = make_invoice_document(1)
    doc["Details"][0]["VatCategoryCode"] = 42
    outcome = send_once(make_client(sandbox), dumps(doc))
    assert isinstance(outcome, Rejected) and outcome.status == 400
    assert any(m.startswith("Details[0].VatCategoryCode: ") for m in outcome.messages)


def test_receipt_endpoint(sandbox: SandboxServer) -> None:
    receipt = {
        "isDelayedCode": 1,
        "series": "ΑΕΠ",
        "number": "7",
        "dateIssued": "2026-03-02T10:15:00",
        "invoiceTypeCode": "8.4",
        "totalAmount": Decimal("12.40"),
        "Issuer": {"Vat": SANDBOX_VAT, "BranchCode": 0},
        "cardlines": [{"lineNo": 1, "amount": Decimal("12.40"), "tipAmount": Decimal("1.00")}],
        "CounterParty": {"RegisteredName": "", "Vat": ""},
        "totalAmountAC": 0,
        "AdditionalDetails": {"TransmissionMethod": "A"},
        "internalDocumentId": "8.4_ΑΕΠ_7",
        "miscellaneousData": {"comments1": ""},
    }

    outcome = once(make_client(sandbox), lambda c: c.send_receipt(dumps(receipt)))
    assert isinstance(outcome, Accepted)
    listed = httpx.get(f"{sandbox.base_url}/_sandbox/documents").json()["documents"]
    assert listed[0]["is_delayed_code"] == 1 and listed[0]["type"] == "8.4"


@pytest.mark.parametrize("auth", ["apikey", "bearer"])
def test_unauthorized_for_a_wrong_key(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes], auth: str
) -> None:
    outcome = send_once(make_client(sandbox, auth=auth, key="wrong"), make_invoice(1))
    assert isinstance(outcome, Unauthorized)


@pytest.mark.parametrize("auth", ["apikey", "bearer"])
def test_unauthorized_for_another_issuers_vat(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes], auth: str
) -> None:
    outcome = send_once(make_client(sandbox, auth=auth), make_invoice(1, vat="EL090000045"))
    assert isinstance(outcome, Unauthorized) and "VAT" in outcome.message


def test_unreachable_when_down_is_a_connection_error(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes]
) -> None:
    set_fault(sandbox, "down")
    client = make_client(sandbox, connect_timeout_s=5, read_timeout_s=5, total_timeout_s=10)
    outcome = send_once(client, make_invoice(1))
    assert isinstance(outcome, Unreachable)
    assert not outcome.reason.startswith("timeout")  # a connection error, not a timeout


def test_unreachable_when_nothing_listens(make_invoice: Callable[..., bytes]) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ProviderConfig(base_url=f"http://127.0.0.1:{port}", portal_url=PORTAL)
    client = EliseClient(config, issuer_vat=SANDBOX_VAT, api_key=ApiKey(SANDBOX_KEY))
    outcome = send_once(client, make_invoice(1))
    assert isinstance(outcome, Unreachable) and "ConnectError" in outcome.reason


def test_blackhole_is_bounded_by_the_total_timeout(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes]
) -> None:
    set_fault(sandbox, "blackhole")
    client = make_client(sandbox, connect_timeout_s=5, read_timeout_s=5, total_timeout_s=0.3)
    outcome = send_once(client, make_invoice(1))
    assert isinstance(outcome, Unreachable) and "total timeout of 0.3" in outcome.reason


def test_slow_answer_beyond_the_read_timeout(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes]
) -> None:
    set_fault(sandbox, "slow", delay_ms=2000)
    client = make_client(sandbox, read_timeout_s=0.2, total_timeout_s=5)
    outcome = send_once(client, make_invoice(1))
    assert isinstance(outcome, Unreachable) and outcome.reason == "timeout: ReadTimeout"


def test_error500_is_unreachable(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes]
) -> None:
    set_fault(sandbox, "error500")
    outcome = send_once(make_client(sandbox), make_invoice(1))
    assert isinstance(outcome, Unreachable) and outcome.reason.startswith("HTTP 500")


# -- bearer tokens on movable clocks ---------------------------------------------------------


def _paths(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.args[1] for r in caplog.records if r.name == "pos_agent.elise" and r.args]


def test_bearer_logs_in_once_then_refreshes_before_expiry(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pos_agent.elise")
    clock = MovableClock()

    async def scenario() -> list[Any]:
        client = make_client(sandbox, auth="bearer", clock=clock)
        try:
            outcomes = [await client.send_invoice(make_invoice(1))]
            outcomes.append(await client.send_invoice(make_invoice(2)))
            clock.advance(14 * 60)  # inside the 2-minute renewal margin
            advance_sandbox(sandbox, 14 * 60)
            outcomes.append(await client.send_invoice(make_invoice(3)))
            clock.advance(14 * 60)  # the refreshed token is due again
            advance_sandbox(sandbox, 14 * 60)
            outcomes.append(await client.send_invoice(make_invoice(4)))
            return outcomes
        finally:
            await client.aclose()

    outcomes = run(scenario())
    assert all(isinstance(o, Accepted) for o in outcomes)
    assert _paths(caplog) == [
        "/Authentication/login",
        "/Invoice/json",
        "/Invoice/json",
        "/Authentication/Refresh",
        "/Invoice/json",
        "/Authentication/Refresh",
        "/Invoice/json",
    ]


def test_bearer_logs_in_again_on_a_401(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """The provider expired the token behind the client's back (its clock ran ahead)."""
    caplog.set_level(logging.DEBUG, logger="pos_agent.elise")

    async def scenario() -> list[Any]:
        client = make_client(sandbox, auth="bearer", clock=MovableClock())
        try:
            first = await client.send_invoice(make_invoice(1))
            advance_sandbox(sandbox, 16 * 60)
            return [first, await client.send_invoice(make_invoice(2))]
        finally:
            await client.aclose()

    assert all(isinstance(o, Accepted) for o in run(scenario()))
    assert _paths(caplog) == [
        "/Authentication/login",
        "/Invoice/json",
        "/Invoice/json",
        "/Authentication/login",
        "/Invoice/json",
    ]


def test_bearer_logs_in_again_when_the_refresh_token_ages_out(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pos_agent.elise")
    clock = MovableClock()

    async def scenario() -> Any:
        client = make_client(sandbox, auth="bearer", clock=clock)
        try:
            await client.send_invoice(make_invoice(1))
            clock.advance(7 * 24 * 3600)
            advance_sandbox(sandbox, 7 * 24 * 3600)
            return await client.send_invoice(make_invoice(2))
        finally:
            await client.aclose()

    assert isinstance(run(scenario()), Accepted)
    assert _paths(caplog).count("/Authentication/login") == 2
    assert "/Authentication/Refresh" not in _paths(caplog)


# -- POS signatures --------------------------------------------------------------------------


def test_signpos_signature_verifies_with_the_published_key(sandbox: SandboxServer) -> None:
    signed = once(make_client(sandbox), lambda c: c.sign_pos(sign_request()))
    assert isinstance(signed, Signed)
    uid = document_uid(SANDBOX_VAT, date(2026, 3, 2), 0, "11.1", "ΑΛΠ", "1")
    assert signed.input == f"{uid};;20260302101500;1209;291;1500;1500;16000198"
    public_key = serialization.load_pem_public_key(
        httpx.get(f"{sandbox.base_url}/_sandbox/public-key").content
    )
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(
        base64.b64decode(signed.signature), signed.input.encode(), ec.ECDSA(hashes.SHA256())
    )


def test_card_payment_flow_sign_send_validate_and_update_payment(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes]
) -> None:
    async def scenario() -> list[Any]:
        client = make_client(sandbox)
        try:
            accepted = await client.send_invoice(make_invoice(1))
            assert isinstance(accepted, Accepted)
            signed = await client.sign_pos(sign_request(mark=accepted.mark))
            assert isinstance(signed, Signed)
            body = {
                "mark": accepted.mark,
                "entityVatNumber": SANDBOX_VAT,
                "paymentMethods": [
                    {
                        "paymentMethodType": "POS",
                        "paymentMethodTypeCode": 7,
                        "amount": Decimal("15.00"),
                        "transactionId": "tr1",
                        "providersSignature": signed.signature,
                        "posInput": signed.input,
                        "terminalId": "16000198",
                    }
                ],
            }
            return [
                await client.validate_signature(signed.input, signed.signature),
                await client.validate_signature(signed.input, signed.signature[::-1]),
                await client.update_payment(dumps(body)),
                await client.update_payment(dumps({**body, "mark": 1})),
            ]
        finally:
            await client.aclose()

    valid, invalid, updated, unknown_mark = run(scenario())
    assert valid == SignatureValidation(True, {"valid": True})
    assert isinstance(invalid, SignatureValidation) and invalid.valid is False
    assert isinstance(updated, PaymentUpdated) and updated.payment_mark.isdigit()
    assert isinstance(unknown_mark, Rejected) and "MARK 1 was not found" in unknown_mark.messages[0]


def test_signpos_during_aade_down_still_signs(sandbox: SandboxServer) -> None:
    set_fault(sandbox, "aade_down")
    assert isinstance(once(make_client(sandbox), lambda c: c.sign_pos(sign_request())), Signed)


# -- probe and clock -------------------------------------------------------------------------


def test_probe(sandbox: SandboxServer) -> None:
    def probe(**kwargs: Any) -> bool:
        return once(make_client(sandbox, **kwargs), EliseClient.probe)

    assert probe() is True
    assert probe(auth="bearer") is True
    assert probe(key="wrong") is False
    set_fault(sandbox, "down")
    assert probe() is False


def test_clock_offset_follows_the_providers_date_header(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes]
) -> None:
    advance_sandbox(sandbox, 600)
    client = make_client(sandbox)
    send_once(client, make_invoice(1))
    assert client.clock_offset_s is not None and 595 <= client.clock_offset_s <= 605


# -- secrets never leak ----------------------------------------------------------------------


def test_no_secret_in_logs_reprs_or_messages(
    sandbox: SandboxServer,
    make_invoice: Callable[..., bytes],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # root, so httpx, httpcore and h11 are captured too
    for name in ("httpx", "httpcore", "pos_agent.elise"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    clock = MovableClock()
    seen: list[object] = []
    tokens: list[str] = []

    async def scenario(auth: str) -> None:
        client = make_client(sandbox, auth=auth, clock=clock)
        try:
            seen.append(await client.send_invoice(make_invoice(auth)))
            seen.append(await client.send_invoice(make_invoice(auth)))
            seen.append(await client.sign_pos(sign_request(number=auth)))
            seen.append(await client.validate_signature("x", "y"))
            seen.append(await client.update_payment(b"{}"))
            seen.append(await client.probe())
            clock.advance(14 * 60)
            advance_sandbox(sandbox, 14 * 60)
            seen.append(await client.send_invoice(make_invoice(auth + "-2")))
            advance_sandbox(sandbox, 16 * 60)
            seen.append(await client.send_invoice(make_invoice(auth + "-3")))
            set_fault(sandbox, "down")
            seen.append(await client.send_invoice(make_invoice(auth + "-4")))
            set_fault(sandbox, "ok")
            seen.extend([client, client._auth])
            if auth == "bearer":
                tokens.extend([client._auth._access or "", client._auth._refresh or ""])
        finally:
            await client.aclose()
        wrong = make_client(sandbox, auth=auth, key=SANDBOX_KEY + "-wrong")
        refused = await wrong.send_invoice(make_invoice(auth + "-5"))
        assert isinstance(refused, Unauthorized)
        seen.extend([refused, wrong])
        await wrong.aclose()

    run(scenario("apikey"))
    run(scenario("bearer"))
    assert all(tokens) and len(tokens) == 2
    captured = capfd.readouterr()
    text = "\n".join(
        [caplog.text, captured.out, captured.err]
        + [r.getMessage() for r in caplog.records]
        + [repr(item) for item in seen]
        + [str(item) for item in seen]
    )
    assert "POST /Authentication/login" in text and "HTTP Request" in text  # logs were captured
    for secret in [SANDBOX_KEY, *tokens]:
        assert secret not in text


def test_a_key_httpx_would_refuse_never_reaches_a_call() -> None:
    """h11 quotes a header value it refuses, and the reason lands in the store and the status:
    such a key is refused when it is loaded, without showing it."""
    with pytest.raises(CredentialError) as refused:
        ApiKey(SANDBOX_KEY + "\nsecond line of the key file")
    assert SANDBOX_KEY not in str(refused.value)


# -- request body ----------------------------------------------------------------------------


def test_signpos_body_uses_greek_local_time_and_exact_amounts() -> None:
    body = sign_request().to_json()
    assert b'"issueDate":"2026-03-02T10:15:00"' in body
    assert b'"issuerTin":"154697391"' in body
    assert b'"paymentAmount":15.00' in body and b'"mark":null' in body
    summer = SignPosRequest(
        payment=reference("1", datetime(2026, 7, 1, 9, 0, tzinfo=UTC)), mark=None, terminal_id="1"
    )
    assert b'"issueDate":"2026-07-01T12:00:00"' in summer.to_json()  # EEST, UTC+3
    with pytest.raises(ValueError):
        reference("1", datetime(2026, 7, 1, 9, 0))
