"""The sandbox provider over real loopback HTTP, spoken to with plain httpx."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.fiscal.uid import document_uid
from agent.json_codec import dumps, loads
from agent.sandbox.server import SandboxServer
from tests.conftest import SANDBOX_KEY, SANDBOX_VAT
from tests.fiscal.qa_shapes import qa_body

HEADERS = {"APIKey": SANDBOX_KEY, "Content-Type": "application/json"}


def post(server: SandboxServer, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else dumps(body)
    return httpx.post(server.base_url + path, content=content, headers=HEADERS, **kwargs)


def signpos_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nspCode": "CommonWeb",
        "issuerTin": "154697391",
        "issueDate": "2026-03-02T10:15:00",
        "branchCode": 0,
        "invoiceTypeCode": "11.1",
        "series": "ΑΛΠ",
        "identifier": "1",
        "mark": None,
        "paymentAmount": Decimal("15.00"),
        "totalNetAmount": Decimal("12.09"),
        "totalVatAmount": Decimal("2.91"),
        "totalAmount": Decimal("15.00"),
        "terminalId": "16000198",
        "signatureDurationType": "H_24",
    }
    body.update(overrides)
    return body


def test_accepts_then_409_with_original_mark_even_after_restart(
    sandbox_factory: Callable[..., SandboxServer], make_invoice: Callable[..., bytes]
) -> None:
    first = sandbox_factory()
    accepted = post(first, "/Invoice/json", make_invoice(1))
    assert accepted.status_code == 201
    body = loads(accepted.content)
    assert len(str(body["mark"])) == 15
    assert body["uid"] == document_uid(SANDBOX_VAT, date(2026, 3, 2), 0, "11.1", "ΑΛΠ", 1)
    assert len(body["authenticationCode"]) == 40
    assert body["url"] == f"{first.base_url}/v/{body['signature']}"
    first.stop()

    restarted = sandbox_factory()
    again = post(restarted, "/Invoice/json", make_invoice(1))
    assert again.status_code == 409
    assert loads(again.content)["mark"] == body["mark"]
    assert "already been transmitted" in loads(again.content)["message"]
    listed = httpx.get(restarted.base_url + "/_sandbox/documents").json()["documents"]
    assert [(d["mark"], d["submissions"]) for d in listed] == [(body["mark"], 2)]


def test_an_accepted_document_survives_a_kill_9_of_the_sandbox(
    tmp_path: Path, make_invoice: Callable[..., bytes]
) -> None:
    """Commits are WAL appends without fsync and checkpoints run off the event loop: SIGKILL
    right after the 201 must still leave the UID known to the next sandbox on the same state."""
    key_file = tmp_path / "key"
    key_file.write_text(SANDBOX_KEY)
    key_file.chmod(0o600)
    command = [sys.executable, "-m", "agent.sandbox", "--port", "0", "--state", str(tmp_path)]
    command += ["--api-key-file", str(key_file), "--issuer-vat", SANDBOX_VAT]
    answers = []
    for _ in range(2):
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().split()[-1]
            answers.append(
                httpx.post(base_url + "/Invoice/json", content=make_invoice(1), headers=HEADERS)
            )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
    first, second = answers
    assert (first.status_code, second.status_code) == (201, 409)
    assert loads(second.content)["mark"] == loads(first.content)["mark"]


def test_marks_increase(sandbox: SandboxServer, make_invoice: Callable[..., bytes]) -> None:
    marks = [loads(post(sandbox, "/Invoice/json", make_invoice(n)).content)["mark"] for n in (1, 2)]
    assert marks[0] < marks[1]


@pytest.mark.parametrize(
    ("breakage", "key"),
    [
        (lambda d: d.pop("Series"), "Series"),
        (lambda d: d["Details"][0].update(Total=Decimal("10.01")), "Details[0].Total"),
        (lambda d: d["Summaries"].update(TotalNetAmount=Decimal(1)), "Summaries.TotalNetAmount"),
        (lambda d: d["Details"][0].update(VatCategoryCode=11), "Details[0].VatCategoryCode"),
        (
            lambda d: d["Details"][0].update(VatCategoryCode=7),
            "Details[0].VatExemptionCategoryCode",
        ),
        (
            lambda d: d["PaymentDetails"]["PaymentMethods"][0].update(Amount=Decimal(1)),
            "PaymentDetails.PaymentMethods",
        ),
        (lambda d: d.pop("DistributionDetails"), "DistributionDetails.InternalDocumentId"),
        (
            lambda d: d.update(CounterParty={"RegisteredName": "Α.Ε.", "Vat": "EL094019245"}),
            "CounterParty.Vat",
        ),
    ],
)
def test_invalid_documents_get_400_with_mydata_errors(
    sandbox: SandboxServer,
    make_invoice_document: Callable[..., dict[str, Any]],
    breakage: Callable[[dict[str, Any]], object],
    key: str,
) -> None:
    doc = make_invoice_document(1)
    breakage(doc)
    response = post(sandbox, "/Invoice/json", doc)
    assert response.status_code == 400
    body = loads(response.content)
    assert body["success"] is False and body["message"]
    assert key in [error["key"] for error in body["myDataErrors"]]


def qa_pos_receipt(number: int) -> dict[str, Any]:
    """The provider's QA 8.4 body (tests/fiscal/qa_payloads) with its per-run values filled in,
    and no card signature (as the QA's TC 04 step 1 sends it)."""
    body = qa_body("receipt_8_4.json")
    body.update(
        number=str(number),
        dateIssued="2026-03-02T10:15:00",
        providerSignatureIdentifier=str(number),
    )
    body["cardlines"][0].update(transactionId=f"tx-{number}", providersSignature="", posInput="")
    return body


@pytest.mark.parametrize("key", ["CounterParty", "totalAmountAC", "miscellaneousData"])
def test_a_pos_receipt_needs_what_the_qa_bodies_always_carry(
    sandbox: SandboxServer, key: str
) -> None:
    assert post(sandbox, "/Receipt", qa_pos_receipt(1)).status_code == 201
    body = qa_pos_receipt(2)
    del body[key]
    response = post(sandbox, "/Receipt", body)
    assert response.status_code == 400, response.text
    assert key in [error["key"] for error in loads(response.content)["myDataErrors"]]


def test_keys_match_case_insensitively_and_exemption_code_is_accepted(
    sandbox: SandboxServer, make_invoice_document: Callable[..., dict[str, Any]]
) -> None:
    doc = make_invoice_document(1, lines=[("10.00", "0.00", "10.00", 7)])
    doc["Details"][0]["VatExemptionCategoryCode"] = 1
    doc["dateIssued"] = doc.pop("DateIssued")
    doc["SERIES"] = doc.pop("Series")
    assert post(sandbox, "/invoice/json", doc).status_code == 201


def test_issuer_vat_must_match_the_api_key(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes]
) -> None:
    assert post(sandbox, "/Invoice/json", make_invoice(1, vat="EL090000045")).status_code == 401
    wrong_key = httpx.post(
        sandbox.base_url + "/Invoice/json", content=make_invoice(1), headers={"APIKey": "nope"}
    )
    assert wrong_key.status_code == 401


def test_is_delayed_code_is_recorded(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes]
) -> None:
    assert post(sandbox, "/Invoice/json", make_invoice(1, delayed_code=2)).status_code == 201
    documents = httpx.get(sandbox.base_url + "/_sandbox/documents").json()["documents"]
    assert documents[0]["is_delayed_code"] == 2


def test_the_documents_list_from_a_mark_on(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes]
) -> None:
    """A harness looking again asks only for what came since the last MARK it saw."""
    marks = [loads(post(sandbox, "/Invoice/json", make_invoice(n)).content)["mark"] for n in (1, 2)]
    listed = httpx.get(sandbox.base_url + "/_sandbox/documents", params={"after_mark": marks[0]})
    assert [doc["mark"] for doc in listed.json()["documents"]] == marks[1:]
    everything = httpx.get(sandbox.base_url + "/_sandbox/documents").json()["documents"]
    assert [doc["mark"] for doc in everything] == marks
    refused = httpx.get(sandbox.base_url + "/_sandbox/documents", params={"after_mark": "x"})
    assert refused.status_code == 400


def test_signpos_signature_verifies_with_the_published_key(sandbox: SandboxServer) -> None:
    response = post(sandbox, "/PosTransactions/signpos", signpos_body())
    assert response.status_code == 200
    signed = loads(response.content)
    uid = document_uid(SANDBOX_VAT, date(2026, 3, 2), 0, "11.1", "ΑΛΠ", "1")
    assert signed["input"] == f"{uid};;20260302101500;1209;291;1500;1500;16000198"
    pem = httpx.get(sandbox.base_url + "/_sandbox/public-key").content
    public_key = serialization.load_pem_public_key(pem)
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    public_key.verify(  # raises InvalidSignature on failure
        base64.b64decode(signed["signature"]),
        signed["input"].encode("ascii"),
        ec.ECDSA(hashes.SHA256()),
    )


def test_card_payment_must_carry_a_signature_we_issued_for_this_document(
    sandbox: SandboxServer, make_invoice_document: Callable[..., dict[str, Any]]
) -> None:
    signed = loads(post(sandbox, "/PosTransactions/signpos", signpos_body()).content)
    card = {
        "PaymentMethodTypeCode": 7,
        "Amount": Decimal("15.00"),
        "transactionId": "T-1",
        "providersSignature": signed["signature"],
        "posInput": signed["input"],
        "terminalId": "16000198",
    }
    other_doc = make_invoice_document(2, payments=[card])
    assert post(sandbox, "/Invoice/json", other_doc).status_code == 400
    forged = make_invoice_document(1, payments=[{**card, "posInput": signed["input"] + "0"}])
    assert post(sandbox, "/Invoice/json", forged).status_code == 400
    assert (
        post(sandbox, "/Invoice/json", make_invoice_document(1, payments=[card])).status_code == 201
    )


def test_update_payment_on_a_marked_document(
    sandbox: SandboxServer, make_invoice: Callable[..., bytes]
) -> None:
    mark = loads(post(sandbox, "/Invoice/json", make_invoice(1)).content)["mark"]
    signed = loads(post(sandbox, "/PosTransactions/signpos", signpos_body(mark=mark)).content)
    assert signed["input"].split(";")[1] == str(mark)
    body = {
        "mark": mark,
        "entityVatNumber": SANDBOX_VAT,
        "paymentMethods": [
            {
                "paymentMethodTypeCode": 7,
                "amount": Decimal("15.00"),
                "transactionId": "T-2",
                "providersSignature": signed["signature"],
                "posInput": signed["input"],
                "terminalId": "16000198",
            }
        ],
    }
    response = post(sandbox, "/Invoice/updatePayment", body)
    assert response.status_code == 200
    answer = loads(response.content)
    assert answer["success"] is True and int(answer["message"]) > mark
    unknown = post(sandbox, "/Invoice/updatePayment", {**body, "mark": mark + 999})
    assert unknown.status_code == 400


def test_validate(sandbox: SandboxServer) -> None:
    signed = loads(post(sandbox, "/PosTransactions/signpos", signpos_body()).content)
    url = "/PosTransactions/validate?IssuerTin=EL154697391"
    assert loads(post(sandbox, url, signed).content) == {"valid": True}
    tampered = {**signed, "input": signed["input"].replace("1500", "1501")}
    assert loads(post(sandbox, url, tampered).content) == {"valid": False}


def test_admin_endpoints_work_in_every_mode_and_faults_apply_to_provider_calls(
    sandbox: SandboxServer, sandbox_admin: httpx.Client, make_invoice: Callable[..., bytes]
) -> None:
    assert sandbox_admin.post("/_sandbox/faults", json={"mode": "down"}).status_code == 200
    with pytest.raises(httpx.TransportError):
        post(sandbox, "/Invoice/json", make_invoice(1))
    assert sandbox_admin.get("/_sandbox/health").json()["faults"]["mode"] == "down"
    sandbox_admin.post("/_sandbox/faults", json={"mode": "error500"})
    assert post(sandbox, "/Invoice/json", make_invoice(1)).status_code == 500
    sandbox_admin.post("/_sandbox/faults", json={"mode": "aade_down"})
    assert post(sandbox, "/Invoice/json", make_invoice(1)).status_code == 408
    assert post(sandbox, "/PosTransactions/signpos", signpos_body()).status_code == 200
    sandbox_admin.post("/_sandbox/faults", json={"mode": "ok"})
    assert post(sandbox, "/Invoice/json", make_invoice(1)).status_code == 201  # 408 did not lock
    assert sandbox_admin.post("/_sandbox/faults", json={"mode": "bogus"}).status_code == 400
    assert sandbox_admin.post("/_sandbox/faults", content=b"{nope").status_code == 400
    assert sandbox_admin.post("/_sandbox/clock", content=b"{nope").status_code == 400


def test_slow_answers_count_from_arrival_and_are_never_early(
    sandbox: SandboxServer, sandbox_admin: httpx.Client, make_invoice: Callable[..., bytes]
) -> None:
    """Eight requests at once with a 300 ms delay: each answer waits its own 300 ms from its
    arrival, never less."""
    sandbox_admin.post("/_sandbox/faults", json={"mode": "slow", "delay_ms": 300})

    async def scenario() -> list[int]:
        async with httpx.AsyncClient(base_url=sandbox.base_url, headers=HEADERS) as client:
            answers = await asyncio.gather(
                *(client.post("/Invoice/json", content=make_invoice(n)) for n in range(1, 9))
            )
        return [answer.status_code for answer in answers]

    assert asyncio.run(scenario()) == [201] * 8
    delayed = sandbox_admin.get("/_sandbox/health").json()["delayed_answers"]
    assert delayed["count"] == 8 and delayed["min_ms"] >= 300
    sandbox_admin.post("/_sandbox/faults", json={"mode": "ok"})
    assert sandbox_admin.get("/_sandbox/health").json()["delayed_answers"]["count"] == 0


def test_flaky_fails_about_the_given_share(
    sandbox_factory: Callable[..., SandboxServer], make_invoice: Callable[..., bytes]
) -> None:
    server = sandbox_factory(seed=7)
    httpx.post(server.base_url + "/_sandbox/faults", json={"mode": "flaky", "percent": 50})
    failures = timeouts = 0
    with httpx.Client(timeout=httpx.Timeout(0.2), headers=HEADERS) as client:
        for n in range(60):
            try:
                response = client.post(server.base_url + "/Invoice/json", content=make_invoice(n))
            except httpx.TimeoutException:
                timeouts += 1
            except httpx.TransportError:
                failures += 1
            else:
                failures += response.status_code != 201
    # A timeout counts as the fault only if the sandbox really held a request: on a loaded
    # machine an ordinary answer can also take longer than the client's 0.2 s.
    held = httpx.get(server.base_url + "/_sandbox/health").json()["held_requests"]
    assert held >= 1
    failures += min(timeouts, held)
    assert 15 <= failures <= 45


def test_date_header_follows_the_sandbox_clock(sandbox_admin: httpx.Client) -> None:
    def date_header() -> datetime:
        return parsedate_to_datetime(sandbox_admin.get("/_sandbox/health").headers["date"])

    before = date_header()
    assert sandbox_admin.post("/_sandbox/clock", json={"advance_s": 3600}).status_code == 200
    after = date_header()
    clock = datetime.fromisoformat(sandbox_admin.get("/_sandbox/clock").json()["now"])
    # Order only, no bound on how long the calls took: the hour moved the header, and the
    # header never runs ahead of the sandbox clock read after it.
    assert before + timedelta(hours=1) <= after <= clock


def test_unknown_paths_and_methods_get_plain_404_and_405(sandbox: SandboxServer) -> None:
    missing = httpx.get(sandbox.base_url + "/Invoice/nope")
    assert (missing.status_code, missing.text) == (404, "Not Found")
    wrong = httpx.put(sandbox.base_url + "/_sandbox/faults")
    assert (wrong.status_code, wrong.text) == (405, "Method Not Allowed")
    assert wrong.headers["allow"] == "GET, HEAD, POST"
    assert httpx.get(sandbox.base_url + "/INVOICE/JSON").headers["allow"] == "POST"
    head = httpx.head(sandbox.base_url + "/_sandbox/health")
    assert head.status_code == 200 and head.content == b"" and "date" in head.headers


def test_cli_starts_the_sandbox_as_a_process(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SANDBOX_KEY)
    key_file.chmod(0o600)
    key_args = ["--api-key-file", str(key_file), "--issuer-vat", SANDBOX_VAT]
    state_args = ["--state", str(tmp_path)]
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "sandbox", "--port", "0", *state_args, *key_args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().split()[-1]
        assert httpx.get(base_url + "/_sandbox/health", timeout=5).json()["status"] == "ok"
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM as the exit status.
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)


def test_cli_refuses_a_key_file_others_can_read(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SANDBOX_KEY)
    key_file.chmod(0o644)
    key_args = ["--api-key-file", str(key_file), "--issuer-vat", SANDBOX_VAT]
    result = subprocess.run(
        [sys.executable, "-m", "agent.sandbox", "--state", str(tmp_path), *key_args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "0600" in result.stderr
