"""The sandbox's HTTP application: the provider endpoints and the `/_sandbox/*` admin endpoints.

Provider pipeline per document (docs/provider.md §6): validation (400) → issuer binding (401) → card
signatures (400) → uniqueness by UID (409, carrying the original MARK) → AADE (408 while
`aade_down`) → 201. Paths are matched case-insensitively, like the provider's ASP.NET routing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.fiscal.uid import bare_vat
from agent.json_codec import dumps, loads
from agent.sandbox.asgi import Endpoint, Request, Response, SandboxApp
from agent.sandbox.clock import SandboxClock
from agent.sandbox.credentials import Credentials
from agent.sandbox.documents import (
    CheckedDocument,
    InvalidDocument,
    check_invoice,
    check_receipt,
    loads_folded,
)
from agent.sandbox.faults import Faults, FaultSettings
from agent.sandbox.iris import MERCHANT_ID, IrisBook, IrisSettings, qr_text
from agent.sandbox.listing import (
    OPEN_ORDERS_PREFIX,
    PREFIX,
    list_documents,
    list_open_orders,
)
from agent.sandbox.orders import FnbFacts
from agent.sandbox.pos import DURATIONS, input_mark, input_uid, parse_signpos
from agent.sandbox.precise_timer import PreciseTimer
from agent.sandbox.signer import Signer
from agent.sandbox.store import IssuedSignature, Received, SandboxStore

DUPLICATE_MESSAGE = "Document has already been transmitted"
AADE_DOWN_MESSAGE = "Request Timeout: the IAPR service is down and cannot accept documents"
BUSY_MESSAGE = "Request Timeout: a request for this document is still being processed"

Handler = Callable[[Any, Request, bool], Response]


@dataclass
class SandboxState:
    """Everything a running sandbox owns; built by `server.py`, shared with the protocol layer."""

    clock: SandboxClock
    faults: Faults
    store: SandboxStore
    signer: Signer
    credentials: Credentials
    portal_url: str
    timer: PreciseTimer
    page_size: int = 50  # documents per page of getdocuments
    iris: IrisBook = field(default_factory=IrisBook)


def build_app(state: SandboxState) -> SandboxApp:
    endpoints = _Endpoints(state)
    provider = [
        ("/authentication/login", endpoints.login, False),
        ("/authentication/refresh", endpoints.refresh, False),
        ("/postransactions/signpos", endpoints.signpos, True),
        ("/postransactions/validate", endpoints.validate, True),
        ("/invoice/json", endpoints.invoice, True),
        ("/receipt", endpoints.receipt, True),
        ("/invoice/updatepayment", endpoints.update_payment, True),
    ]
    routes: dict[str, dict[str, Endpoint]] = {
        path: {"POST": endpoints.provider(handler, authenticated=auth)}
        for path, handler, auth in provider
    }
    routes["/irispayments/initiatepayment"] = {
        "POST": endpoints.provider(endpoints.iris_initiate, authenticated=True)
    }
    routes["/irispayments/getpaymentstatus"] = {
        "GET": endpoints.provider(endpoints.iris_status, authenticated=True, with_body=False)
    }
    routes |= {
        "/_sandbox/iris": {"GET": endpoints.iris_settings, "POST": endpoints.iris_settings},
        "/_sandbox/health": {"GET": endpoints.health},
        "/_sandbox/public-key": {"GET": endpoints.public_key},
        "/_sandbox/faults": {"GET": endpoints.faults, "POST": endpoints.faults},
        "/_sandbox/clock": {"GET": endpoints.clock, "POST": endpoints.clock},
        "/_sandbox/documents": {"GET": endpoints.documents},
        "/_sandbox/documents/lose": {"POST": endpoints.lose},
        "/_sandbox/orders": {"GET": endpoints.orders},
    }
    prefixed: dict[str, dict[str, Endpoint]] = {
        PREFIX: {"GET": endpoints.getdocuments},
        OPEN_ORDERS_PREFIX: {"GET": endpoints.getopenorders},
    }
    return SandboxApp(routes, state.clock, prefixed)


def _json(status: int, body: Any) -> Response:
    return Response(status, dumps(body))


def _naming_another_uid(response: Response) -> Response:
    """The answer as a confused provider would send it: another document's UID beside the MARK
    (the document itself was stored under its own UID)."""
    body = loads_folded(response.body) if response.status == 201 else None
    if not isinstance(body, dict) or not isinstance(body.get("uid"), str):
        return response
    uid: str = body["uid"]
    answer = loads(response.body)
    answer["uid"] = uid[::-1] if uid[::-1] != uid else uid + "0"
    return _json(response.status, answer)


def _answer_lost_then_bad_mark(response: Response) -> Response:
    """A new document is accepted but its answer is lost (500); the re-send's duplicate answer
    carries a MARK beyond xs:long instead of the one it was stored under."""
    if response.status == 201:
        return _failure(500, "Internal server error (sandbox fault bad_mark_409)")
    body = loads_folded(response.body) if response.status == 409 else None
    if not isinstance(body, dict):
        return response
    return _json(409, {**loads(response.body), "mark": 10**20})


def _failure(status: int, message: str, errors: list[tuple[str, str]] | None = None) -> Response:
    body: dict[str, Any] = {"success": False, "message": message}
    if errors is not None:
        body["myDataErrors"] = [{"key": key, "value": value} for key, value in errors]
    return _json(status, body)


def _rejected(errors: list[tuple[str, str]]) -> Response:
    key, value = errors[0]
    return _failure(400, f"Elise Basic Validation Exception: {key}: {value}", errors)


def _unauthorized(message: str = "Unauthorized") -> Response:
    return _failure(401, message)


class _Endpoints:
    def __init__(self, state: SandboxState) -> None:
        self._s = state

    # -- provider framing -------------------------------------------------------------------

    def provider(
        self, handler: Handler, *, authenticated: bool, with_body: bool = True
    ) -> Endpoint:
        """Faults, authentication and body parsing shared by every provider endpoint.

        Handlers get the body with its keys folded to lower case and run without awaiting, so
        a check-then-write is atomic on the event loop. The `slow` delay is the provider's
        answer time counted from the request's arrival, so "20 ms latency" answers 20 ms after
        the request came in, whatever the sandbox's own work took. The work is done first and
        the answer waits out the rest: the answer is late, not the effect, which is what makes
        a client time out on a document the provider did accept.
        """

        async def endpoint(request: Request) -> Response:
            fault = self._s.faults.answer_fault(request.path)
            if fault == "error500":
                response = _failure(500, "Internal server error (sandbox fault error500)")
            elif fault == "busy" and request.path.lower() == "/postransactions/signpos":
                response = _failure(408, BUSY_MESSAGE)
            elif authenticated and not self._authenticated(request):
                response = _unauthorized()
            else:
                try:
                    body = loads_folded(request.body) if with_body else None
                except ValueError:
                    response = _rejected([("$", "the body is not valid JSON")])
                else:
                    response = handler(body, request, fault == "aade_down")
                    if fault == "foreign_uid":
                        response = _naming_another_uid(response)
                    elif fault == "bad_mark_409":
                        response = _answer_lost_then_bad_mark(response)
            faults = self._s.faults
            delay = faults.delay_s(request.path)
            if delay:
                await self._s.timer.sleep_until(request.arrived + delay)
                faults.delayed.record(time.monotonic() - request.arrived)
            return response

        return endpoint

    def _authenticated(self, request: Request) -> bool:
        key = request.header(b"apikey")
        if key is not None:
            return self._s.credentials.key_matches(key)
        scheme, _, token = (request.header(b"authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and self._s.credentials.bearer_is_valid(token.strip())

    # -- authentication ---------------------------------------------------------------------

    def login(self, body: Any, request: Request, aade_down: bool) -> Response:
        body = body if isinstance(body, dict) else {}
        vat, key = body.get("vat"), body.get("key")
        if not isinstance(vat, str) or not isinstance(key, str):
            return _rejected([("vat", "vat and key are required")])
        tokens = self._s.credentials.login(vat, key)
        return _json(200, tokens) if tokens else _unauthorized("Invalid VAT or API key")

    def refresh(self, body: Any, request: Request, aade_down: bool) -> Response:
        scheme, _, access = (request.header(b"authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not isinstance(body, str):
            return _unauthorized("Refresh needs the access token and the refresh token")
        tokens = self._s.credentials.refresh(access.strip(), body)
        return _json(200, tokens) if tokens else _unauthorized("Invalid or expired refresh token")

    # -- POS signatures ---------------------------------------------------------------------

    def signpos(self, body: Any, request: Request, aade_down: bool) -> Response:
        """Signs without AADE, so `aade_down` does not apply here."""
        now = self._s.clock.now()
        try:
            sign = parse_signpos(body, now)
        except InvalidDocument as exc:
            return _rejected(exc.errors)
        if sign.issuer_vat != self._s.credentials.issuer_vat:
            return _unauthorized("The issuerTin doesn't match the API key")
        if sign.mark is not None:
            marked_uid = self._s.store.uid_of_mark(sign.mark, sign.issuer_vat)
            if marked_uid is None:
                return _rejected([("mark", f"MARK {sign.mark} was not found")])
            if marked_uid != sign.uid:
                return _rejected([("identifier", f"MARK {sign.mark} belongs to another document")])
        text = sign.input_string()
        signature = self._s.signer.sign(text)
        self._s.store.record_signature(
            IssuedSignature(
                input=text,
                signature=signature,
                uid=sign.uid,
                mark=sign.mark,
                issuer_vat=sign.issuer_vat,
                duration=sign.duration,
                issued_at=now,
                expires_at=now + DURATIONS[sign.duration],
            )
        )
        return _json(200, {"input": text, "signature": signature})

    # -- IRIS payments (agent/sandbox/iris.py) ---------------------------------------------

    def iris_initiate(self, body: Any, request: Request, aade_down: bool) -> Response:
        """Signs like signpos, with the IRIS merchant where a card's terminal goes; no AADE."""
        now = self._s.clock.now()
        merchant = {"terminalid": MERCHANT_ID, "signaturedurationtype": "H_2", "mark": None}
        try:
            sign = parse_signpos({**body, **merchant} if isinstance(body, dict) else body, now)
        except InvalidDocument as exc:
            return _rejected(exc.errors)
        if sign.issuer_vat != self._s.credentials.issuer_vat:
            return _unauthorized("The issuerTin doesn't match the API key")
        payment = self._s.iris.initiate(sign, now)
        signature = self._s.signer.sign(payment.signed_input)
        self._s.store.record_signature(
            IssuedSignature(
                input=payment.signed_input,
                signature=signature,
                uid=sign.uid,
                mark=None,
                issuer_vat=sign.issuer_vat,
                duration="H_2",
                issued_at=now,
                expires_at=now + DURATIONS["H_2"],
            )
        )
        return _json(
            200,
            {
                "qrCode": qr_text(payment, f"{sign.paid:.2f}"),
                "endToEndDiasId": payment.end_to_end_id,
                "authorisationRequestId": payment.authorisation_request_id,
                "merchantId": MERCHANT_ID,
                "signedDataInput": payment.signed_input,
                "signature": signature,
                "validUntil": payment.valid_until.isoformat(),
            },
        )

    def iris_status(self, body: Any, request: Request, aade_down: bool) -> Response:
        end_to_end_id = request.query("endToEndDiasId")
        if not end_to_end_id:
            return _rejected([("endToEndDiasId", "is required")])
        payment = self._s.iris.poll(end_to_end_id, self._s.clock.now())
        if payment is None:
            return _rejected([("endToEndDiasId", f"{end_to_end_id} is not a payment of ours")])
        return _json(200, {"endToEndDiasId": end_to_end_id, "status": payment.state})

    async def iris_settings(self, request: Request) -> Response:
        """`{"outcome": "complete"|"expire"|"fail", "after_polls": N, "validity_s": 60-180}`,
        for the payments started from now on."""
        if request.method == "POST":
            try:
                self._s.iris.settings = IrisSettings.of(loads(request.body))
            except (ValueError, TypeError) as exc:
                return _json(400, {"error": str(exc)})
        return _json(200, self._s.iris.settings.as_dict())

    def validate(self, body: Any, request: Request, aade_down: bool) -> Response:
        issuer = request.query("IssuerTin") or request.query("issuerTin")
        if not issuer or bare_vat(issuer) != self._s.credentials.issuer_vat:
            return _unauthorized("The IssuerTin doesn't match the API key")
        body = body if isinstance(body, dict) else {}
        text, signature = body.get("input"), body.get("signature")
        if not isinstance(text, str) or not isinstance(signature, str):
            return _rejected([("input", "input and signature are required")])
        issued = self._s.store.signature_for(text)
        valid = (
            issued is not None
            and issued.issuer_vat == self._s.credentials.issuer_vat
            and self._s.signer.verify(text, signature)
        )
        return _json(200, {"valid": valid})

    # -- documents --------------------------------------------------------------------------

    def invoice(self, body: Any, request: Request, aade_down: bool) -> Response:
        return self._document(body, "invoice", check_invoice, aade_down)

    def receipt(self, body: Any, request: Request, aade_down: bool) -> Response:
        return self._document(body, "receipt", check_receipt, aade_down)

    def _document(
        self,
        body: Any,
        endpoint: str,
        check: Callable[[Any], CheckedDocument],
        aade_down: bool,
    ) -> Response:
        try:
            doc = check(body)
        except InvalidDocument as exc:
            return _rejected(exc.errors)
        if doc.issuer_vat != self._s.credentials.issuer_vat:
            return _unauthorized("The VAT number on the issuer object doesn't match the API key")
        errors = [
            error
            for card in doc.card_payments
            for error in self._card_errors(card.path, card.pos_input, card.signature, doc.uid)
        ]
        if errors:
            return _rejected(errors)
        original = self._s.store.mark_of(doc.uid)
        if original is not None:
            return _json(
                409,
                {"success": False, "message": DUPLICATE_MESSAGE, "mark": original, "uid": doc.uid},
            )
        unknown = [
            (f"CorrelatedInvoices[{index}]", f"{mark} is not a MARK of this issuer")
            for index, mark in enumerate(doc.correlated)
            if self._s.store.uid_of_mark(mark, doc.issuer_vat) is None
        ]
        if unknown:
            return _rejected(unknown)
        fnb = FnbFacts.of(body, doc) if endpoint == "invoice" else None
        fnb_errors = self._s.store.orders.errors(fnb, doc.issuer_vat) if fnb else []
        if fnb_errors:
            return _rejected(fnb_errors)
        if aade_down:
            return _failure(408, AADE_DOWN_MESSAGE)
        authentication_code = secrets.token_hex(20).upper()
        signature = secrets.token_hex(24)
        mark = self._s.store.accept(
            doc,
            endpoint=endpoint,
            authentication_code=authentication_code,
            signature=signature,
            accepted_at=self._s.clock.now(),
        )
        self._s.store.record_received(mark, Received.of(body))
        if fnb is not None:
            self._s.store.orders.record(fnb, doc.issuer_vat, mark, self._s.clock.now())
        return _json(
            201,
            {
                "success": True,
                "status": "SUBMITTED",
                "mark": mark,
                "uid": doc.uid,
                "authenticationCode": authentication_code,
                "signature": signature,
                "url": f"{self._s.portal_url}/v/{signature}",
                "message": "Document transmitted successfully",
            },
        )

    def _card_errors(
        self, path: str, pos_input: str, signature: str, uid: str, mark: int | None = None
    ) -> list[tuple[str, str]]:
        """A card payment's signature must be ours, for this document (and MARK), and verify."""
        issued = self._s.store.signature_for(pos_input)
        if issued is None:
            return [(f"{path}.posInput", "was not issued by this provider")]
        if not self._s.signer.verify(pos_input, signature):
            return [(f"{path}.providersSignature", "does not verify over posInput")]
        if input_uid(pos_input) != uid:
            return [(f"{path}.posInput", f"was signed for UID {input_uid(pos_input)}, not {uid}")]
        if mark is not None and input_mark(pos_input) != mark:
            return [(f"{path}.posInput", f"was not signed for MARK {mark}")]
        return []

    def update_payment(self, body: Any, request: Request, aade_down: bool) -> Response:
        body = body if isinstance(body, dict) else {}
        mark = body.get("mark")
        vat = body.get("entityvatnumber")
        methods = body.get("paymentmethods")
        if isinstance(mark, bool) or not isinstance(mark, int):
            return _rejected([("mark", "is required")])
        if not isinstance(vat, str) or bare_vat(vat) != self._s.credentials.issuer_vat:
            return _unauthorized("The entityVatNumber doesn't match the API key")
        if not isinstance(methods, list) or not methods:
            return _rejected([("paymentMethods", "at least one payment method is required")])
        uid = self._s.store.uid_of_mark(mark, self._s.credentials.issuer_vat)
        if uid is None:
            return _rejected([("mark", f"MARK {mark} was not found")])
        if self._s.store.endpoint_of_mark(mark) == "receipt":
            return _rejected(
                [("mark", f"MARK {mark} is a POS receipt: its card lines are its payment")]
            )
        errors: list[tuple[str, str]] = []
        for index, method in enumerate(methods):
            path = f"paymentMethods[{index}]"
            pos_input = method.get("posinput") if isinstance(method, dict) else None
            signature = method.get("providerssignature") if isinstance(method, dict) else None
            if not isinstance(pos_input, str) or not isinstance(signature, str):
                errors.append((path, "providersSignature and posInput are required"))
                continue
            errors += self._card_errors(path, pos_input, signature, uid, mark)
        if errors:
            return _rejected(errors)
        if aade_down:
            return _failure(408, AADE_DOWN_MESSAGE)
        payment_mark = self._s.store.record_payment(mark, self._s.clock.now())
        return _json(200, {"success": True, "message": str(payment_mark)})

    # -- admin ------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return _json(
            200,
            {
                "status": "ok",
                "now": self._s.clock.now().isoformat(),
                "faults": self._s.faults.settings.as_dict(),
                "delayed_answers": self._s.faults.delayed.as_dict(),
                "held_requests": self._s.faults.held,
            },
        )

    async def public_key(self, request: Request) -> Response:
        return Response(200, self._s.signer.public_pem(), b"application/x-pem-file")

    async def faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = loads(request.body)
                settings = FaultSettings(
                    mode=body.get("mode", "ok"),
                    delay_ms=int(body.get("delay_ms", 0)),
                    percent=int(body.get("percent", 0)),
                )
            except (ValueError, TypeError, AttributeError) as exc:
                return _json(400, {"error": str(exc)})
            self._s.faults.set(settings)
        return _json(200, self._s.faults.settings.as_dict())

    async def clock(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self._s.clock.advance(float(loads(request.body)["advance_s"]))
            except (ValueError, TypeError, KeyError) as exc:
                return _json(400, {"error": f"advance_s: {exc}"})
        return _json(200, {"now": self._s.clock.now().isoformat()})

    async def documents(self, request: Request) -> Response:
        """`?after_mark=N`: only the documents accepted since MARK N (a harness's next look)."""
        after = request.query("after_mark") or "0"
        if not after.isdigit():
            return _json(400, {"error": "after_mark must be a MARK (digits)"})
        return _json(200, {"documents": self._s.store.documents(int(after))})

    async def getdocuments(self, request: Request) -> Response:
        """The issuer's documents of some days, by page (`listing.py`)."""
        faults = self._s.faults
        if faults.answer_fault(request.path) == "error500":
            return _failure(500, "Internal server error (sandbox fault error500)")
        if not self._authenticated(request):
            return _unauthorized()
        return list_documents(
            request,
            self._s.store,
            issuer_vat=self._s.credentials.issuer_vat,
            page_size=self._s.page_size,
            fault=faults.settings.mode,
        )

    async def getopenorders(self, request: Request) -> Response:
        """The issuer's open order slips (8.6), by page (`listing.py`)."""
        if self._s.faults.answer_fault(request.path) == "error500":
            return _failure(500, "Internal server error (sandbox fault error500)")
        if not self._authenticated(request):
            return _unauthorized()
        return list_open_orders(
            request,
            self._s.store,
            issuer_vat=self._s.credentials.issuer_vat,
            page_size=self._s.page_size,
            fault=self._s.faults.settings.mode,
        )

    async def lose(self, request: Request) -> Response:
        """`{"uid": …}`: the provider loses an accepted document (`store.lose`)."""
        try:
            uid = loads(request.body)["uid"]
        except (ValueError, TypeError, KeyError):
            return _json(400, {"error": "uid is required"})
        return _json(200 if self._s.store.lose(str(uid)) else 404, {"uid": uid})

    async def orders(self, request: Request) -> Response:
        """8.6 order slips with their state (open, cancelled, closed; `?table=` for one)."""
        table = request.query("table")
        return _json(200, {"orders": self._s.store.orders.orders(table)})
