"""`pos-agent demo` (`make demo`): a guided tour for a POS integrator, on a throw-away register.

It starts the sandbox provider and the daemon as real processes in a temporary state directory
(file printer, PNG previews on) and walks through, showing each request and the key fields of the
answer: a cash receipt; a card payment (sign, simulated terminal, issue) with the provider's
signature verified against the sandbox public key; an 8.4 POS receipt and the 11.1 connected to
it; a café table (two 8.6 order slips, the closing 11.1 paid in cash, the cash drawer opened on
request); the provider going down (offline receipts with IsDelayedCode 1, the legend and the offline
QR); AADE going down (code 2); `pos-agent status` before recovery; recovery and `pos-agent sync`;
`pos-agent status` after.

The ESC/POS bytes of every print and the PNG previews are copied to `demo-output/` (or
`--keep DIR`). Every step checks what it expects; the exit code is 0 only if all did. The stack
is stopped in `finally`, also on Ctrl-C, so nothing is left running.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from agent.commands.common import paint, use_colour
from agent.core.status_report import Level, StatusReport
from agent.core.sync_report import SyncReport
from agent.json_codec import dumps, loads
from agent.tools.local_stack import (
    LocalStack,
    StackSettings,
    card_payment,
    cash_receipt,
    post_json,
    sale_line,
)

DEFAULT_OUTPUT = Path("demo-output")
TERMINAL_ID = "DEMO0001"
WAIT_S = 10.0


class StepFailed(Exception):
    """A step did not behave as expected."""


class Demo:
    def __init__(self, stack: LocalStack, output: Path, *, colour: bool) -> None:
        self.stack = stack
        self.output = output
        self.colour = colour
        self.client = stack.client(timeout_s=30.0)
        self.step_no = 0
        self.failures: list[str] = []
        self.printed: list[Path] = []
        self.previews: list[Path] = []

    # -- output -------------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.step_no += 1
        print()
        print(
            paint(f"== {self.step_no}. {title} ", Level.OK, self.colour, bold=True).ljust(60, "=")
        )

    def say(self, text: str) -> None:
        print(f"   {text}")

    def show(self, label: str, value: Any) -> None:
        print(f"   {label:<18} {value}")

    def expect(self, condition: bool, what: str) -> None:
        if condition:
            print("   " + paint(f"✓ {what}", Level.OK, self.colour))
        else:
            print("   " + paint(f"✗ {what}", Level.CRITICAL, self.colour, bold=True))
            self.failures.append(f"step {self.step_no}: {what}")

    # -- the POS side -------------------------------------------------------------------------

    def post(self, path: str, body: dict[str, Any], *, expect_status: int = 201) -> dict[str, Any]:
        print("   " + paint(f"POST {path}", Level.WARN, self.colour) + f" {_compact(body)}")
        response = post_json(self.client, path, body)
        answer = response.json()
        if response.status_code != expect_status:
            raise StepFailed(f"POST {path} answered {response.status_code}: {answer}")
        return answer

    def get(self, path: str) -> dict[str, Any]:
        response = self.client.get(path)
        response.raise_for_status()
        return response.json()

    def show_receipt(self, answer: dict[str, Any]) -> None:
        self.show(
            "receipt",
            f"{answer['series']}/{answer['number']} (id {answer['receipt_id']}, type {answer['type']}, total {answer['total']} €)",
        )
        self.show("state", answer["state"])
        if answer.get("mark"):
            self.show("MARK", answer["mark"])
        self.show("UID", answer["uid"])
        if answer.get("authentication_code"):
            self.show("auth code", answer["authentication_code"])
        if answer.get("qr_url"):
            self.show("QR", answer["qr_url"])
        if answer.get("delayed_code"):
            self.show("IsDelayedCode", answer["delayed_code"])
            self.show("legend", answer.get("legend"))
            self.show("offline QR", answer.get("offline_qr_url"))
            self.show("send by", answer.get("due_at"))

    def wait_printed(self, receipt_id: int, label: str) -> None:
        """The file printer holds the last job only: copy it once this receipt's job is done."""
        deadline = time.monotonic() + WAIT_S
        state = None
        while time.monotonic() < deadline:
            answer = self.get(f"/v1/receipts/{receipt_id}")
            state = answer["delivery"]["print"].get("state")
            if state == "printed":
                break
            time.sleep(0.05)
        self.expect(state == "printed", f"receipt {receipt_id} printed")
        if state == "printed" and self.stack.printer_path.exists():
            target = self.output / "escpos" / f"{label}.bin"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.stack.printer_path, target)
            self.printed.append(target)
            self.show("ESC/POS", f"{target} ({target.stat().st_size} bytes)")

    # -- the tour -----------------------------------------------------------------------------

    def run(self) -> None:
        self.cash_sale()
        self.card_receipt()
        pos, sale = self.pos_receipt()
        self.card_refund(pos, sale)
        self.cafe_table()
        self.provider_down()
        self.aade_down()
        self.status("status before recovery", expected=Level.WARN)
        self.recovery()
        self.status("status after recovery", expected=Level.OK)

    def cash_sale(self) -> None:
        self.step("A cash receipt (11.1), online")
        body = cash_receipt("demo-cash-1", description="Καφές φρέντο", quantity="2", price="2.50")
        answer = self.post("/v1/receipts", body)
        self.show_receipt(answer)
        self.expect(answer["state"] == "accepted" and bool(answer["mark"]), "accepted with a MARK")
        self.wait_printed(answer["receipt_id"], "01-cash-receipt")

    def card_receipt(self) -> None:
        self.step("A card payment: sign → terminal → issue")
        lines = [
            sale_line("Τοστ γαλοπούλα", "1", "4.20", 2),
            sale_line("Πορτοκαλάδα", "1", "2.30", 2),
        ]
        total = Decimal("6.50")
        self.say("1) before charging the card, ask the agent for the provider's signature")
        signed = self.post(
            "/v1/payments/sign",
            {
                "request_id": "demo-card-sign-1",
                "terminal_id": TERMINAL_ID,
                "amount": total,
                "document_type": "11.1",
                "lines": lines,
            },
        )
        self.show("signature_id", signed["signature_id"])
        self.show("reserved", f"{signed['series']}/{signed['number']} (UID {signed['uid']})")
        self.show("signed input", signed["input"])
        self.show("signature", signed["signature"][:48] + "…")
        self.say("2) the terminal checks the signature with the provider's public key")
        valid = _verify_signature(self.stack.sandbox_url, signed["input"], signed["signature"])
        self.expect(valid, "ECDSA P-256 signature verifies with GET /_sandbox/public-key")
        transaction_id = f"TX{secrets.randbelow(10**10):010d}"
        self.say(
            f"3) simulated terminal charges {total} € and returns transaction {transaction_id}"
        )
        self.say("4) issue the receipt with the card payment")
        answer = self.post(
            "/v1/receipts",
            {
                "request_id": "demo-card-1",
                "lines": lines,
                "payments": [card_payment(TERMINAL_ID, total, transaction_id, signed)],
            },
        )
        self.show_receipt(answer)
        self.expect(answer["state"] == "accepted", "accepted")
        self.expect(
            (answer["series"], answer["number"]) == (signed["series"], signed["number"]),
            "issued on the signed reservation (same series/number, so the signed UID holds)",
        )
        self.wait_printed(answer["receipt_id"], "02-card-receipt")

    def pos_receipt(self) -> tuple[dict[str, Any], dict[str, Any]]:
        self.step("An 8.4 POS receipt, then the 11.1 connected to it")
        amount = Decimal("12.00")
        signed = self.post(
            "/v1/payments/sign",
            {
                "request_id": "demo-pos-sign-1",
                "terminal_id": TERMINAL_ID,
                "amount": amount,
                "document_type": "8.4",
            },
        )
        self.show("signature_id", signed["signature_id"])
        transaction_id = f"TX{secrets.randbelow(10**10):010d}"
        pos = self.post(
            "/v1/pos-receipts",
            {
                "request_id": "demo-pos-1",
                "type": "8.4",
                "payments": [card_payment(TERMINAL_ID, amount, transaction_id, signed)],
            },
        )
        self.show_receipt(pos)
        self.expect(pos["state"] == "accepted" and bool(pos["mark"]), "8.4 accepted with a MARK")
        self.wait_printed(pos["receipt_id"], "03-pos-receipt-8.4")
        self.say(
            "the sales receipt points at the 8.4 by its MARK and carries its card payment "
            "(no signature: the 8.4 has it), printed with a line naming the 8.4"
        )
        sale = self.post(
            "/v1/receipts",
            {
                "request_id": "demo-connected-1",
                "lines": [sale_line("Σάντουιτς", "2", "6.00", 1)],
                "connected_marks": [pos["mark"]],
            },
        )
        self.show_receipt(sale)
        self.expect(sale["state"] == "accepted", "connected 11.1 accepted")
        self.wait_printed(sale["receipt_id"], "04-connected-receipt")
        return pos, sale

    def card_refund(self, pos: dict[str, Any], sale: dict[str, Any]) -> None:
        self.step("A refund to the card: sign the 8.5 → terminal pays back → 8.5 → 11.4")
        amount = Decimal(pos["total"])
        signed = self.post(
            "/v1/payments/sign",
            {
                "request_id": "demo-refund-sign-1",
                "terminal_id": TERMINAL_ID,
                "amount": amount,
                "document_type": "8.5",
            },
        )
        self.show("signature_id", signed["signature_id"])
        valid = _verify_signature(self.stack.sandbox_url, signed["input"], signed["signature"])
        self.expect(valid, "the refund's signature verifies")
        transaction_id = f"TX{secrets.randbelow(10**10):010d}"
        self.say(f"simulated terminal refunds {amount} € to the card: transaction {transaction_id}")
        returned = self.post(
            "/v1/pos-receipts",
            {
                "request_id": "demo-refund-85",
                "type": "8.5",
                "payments": [card_payment(TERMINAL_ID, amount, transaction_id, signed)],
                "connected_marks": [pos["mark"]],
            },
        )
        self.show_receipt(returned)
        self.expect(returned["state"] == "accepted", "8.5 POS return accepted")
        self.wait_printed(returned["receipt_id"], "04b-pos-return-8.5")
        self.say("the 11.4 credit for the goods carries the refund's card payment")
        credit = self.post(
            "/v1/receipts",
            {
                "request_id": "demo-refund-114",
                "type": "11.4",
                "lines": [sale_line("Σάντουιτς", "2", "6.00", 1)],
                "correlated_marks": [sale["mark"]],
                "connected_marks": [returned["mark"]],
            },
        )
        self.show_receipt(credit)
        self.expect(credit["state"] == "accepted", "11.4 credit accepted")
        self.wait_printed(credit["receipt_id"], "04c-credit-11.4")

    def cafe_table(self) -> None:
        self.step("A café table: two order slips (8.6), then the table is closed (11.1)")
        marks = []
        orders = [
            [sale_line("Φρέντο εσπρέσο", "2", "3.50", 2), sale_line("Τοστ", "1", "4.00", 2)],
            [sale_line("Νερό 500ml", "2", "0.50", 2)],
        ]
        for index, lines in enumerate(orders, start=1):
            body = {"request_id": f"demo-order-{index}", "table": "5", "waiter": "Μαρία"}
            answer = self.post("/v1/orders", {**body, "lines": lines})
            self.show_receipt(answer)
            self.show("table / waiter", f"{answer['table']} / {answer['waiter']}")
            self.expect(
                answer["type"] == "8.6" and answer["state"] == "accepted" and bool(answer["mark"]),
                "order slip 8.6 accepted with a MARK (it stays open for the table)",
            )
            marks.append(answer["mark"])
            self.wait_printed(answer["receipt_id"], f"{6 + index:02d}-order-slip-{index}")
            self.show_preview(answer["receipt_id"])
        table = loads(self.client.get("/v1/tables/5").raise_for_status().content)
        self.show("table 5", f"{table['open_orders']} open orders, total {table['total']} €")
        self.say("the waiter brings the bill; the customer pays cash:")
        closed = self.post(
            "/v1/tables/5/close",
            {
                "request_id": "demo-close-5",
                "payments": [{"method": 3, "amount": table["closing_total"]}],
            },
        )
        self.show_receipt(closed)
        self.expect(closed["state"] == "accepted", "closing receipt 11.1 accepted")
        ledger = httpx.get(
            f"{self.stack.sandbox_url}/_sandbox/orders", params={"table": "5"}, timeout=5
        ).json()["orders"]
        for row in ledger:
            self.show(f"8.6 {row['mark']}", f"{row['state']} by {row['settled_by']}")
        self.expect(
            sorted(row["mark"] for row in ledger if row["settled_by"] == closed["mark"])
            == sorted(marks),
            "the provider shows both order slips closed by this receipt's MARK",
        )
        self.wait_printed(closed["receipt_id"], "09-table-close")
        self.expect(self.get("/v1/tables")["tables"] == [], "no table left open")
        self.say("the cashier opens the drawer for change (journaled with the caller's uid):")
        before = self.drawer_opened()
        opened = self.post("/v1/drawer/open", {"request_id": "demo-drawer-1"})
        self.show("caller", opened["caller"])
        deadline = time.monotonic() + WAIT_S
        while self.drawer_opened() <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        pulse = self.stack.printer_path.read_bytes()
        self.show("printer got", pulse.hex(" "))
        self.expect(pulse == b"\x1bp\x00\x32\x64", "ESC p, pin 2, 100 ms on / 200 ms off")

    def drawer_opened(self) -> int:
        stored = StatusReport.model_validate(self.get("/v1/status")).store
        return stored.drawer.opened if stored is not None and stored.drawer is not None else 0

    def show_preview(self, receipt_id: int) -> None:
        """The spool writes the preview right after the job is marked printed."""
        deadline = time.monotonic() + WAIT_S
        found: list[Path] = []
        while not found and time.monotonic() < deadline:
            found = sorted(self.stack.preview_dir.glob(f"receipt-{receipt_id}-job-*.png"))
            time.sleep(0.05)
        self.expect(bool(found), f"PNG preview of order slip {receipt_id}")
        for png in found:
            self.show("PNG preview", f"previews/{png.name}")

    def provider_down(self) -> None:
        self.step("The provider goes down: offline receipts with IsDelayedCode 1")
        self.stack.set_faults("down")
        self.say("sandbox fault 'down': every connection to the provider is reset")
        for index in (1, 2):
            started = time.perf_counter()
            body = cash_receipt(
                f"demo-down-{index}", description="Εσπρέσο", quantity="1", price="1.80"
            )
            answer = self.post("/v1/receipts", body)
            elapsed = (time.perf_counter() - started) * 1000
            self.show_receipt(answer)
            self.show("answered in", f"{elapsed:.0f} ms")
            self.expect(
                answer["state"] == "delayed" and answer["delayed_code"] == 1,
                "delayed with IsDelayedCode 1, legend and offline QR",
            )
            self.expect(
                "/TransmissionFailure?" in (answer.get("offline_qr_url") or ""),
                "offline QR points at the provider's TransmissionFailure page",
            )
            self.wait_printed(answer["receipt_id"], f"05-offline-code1-{index}")

    def aade_down(self) -> None:
        self.step("AADE goes down (the provider answers 408): IsDelayedCode 2")
        self.stack.set_faults("aade_down")
        self.say("the register re-checks the provider (here at once, via POST /v1/sync):")
        report = SyncReport.model_validate(self.post("/v1/sync", {}, expect_status=200))
        self.show("sync", f"{report.attempted} sent, {report.still_delayed} still delayed")
        body = cash_receipt("demo-aade-1", description="Cappuccino", quantity="1", price="3.20")
        answer = self.post("/v1/receipts", body)
        self.show_receipt(answer)
        self.expect(
            answer["state"] == "delayed" and answer["delayed_code"] == 2,
            "delayed with IsDelayedCode 2 and the AADE legend",
        )
        self.wait_printed(answer["receipt_id"], "06-offline-code2")
        self.say("card signing goes on: the provider signs without AADE")
        lines = [sale_line("Χυμός", "1", "3.50", 2)]
        signed = self.post(
            "/v1/payments/sign",
            {
                "request_id": "demo-aade-sign-1",
                "terminal_id": TERMINAL_ID,
                "amount": Decimal("3.50"),
                "document_type": "11.1",
                "lines": lines,
            },
        )
        valid = _verify_signature(self.stack.sandbox_url, signed["input"], signed["signature"])
        self.expect(valid, "signed while AADE is down, and the signature verifies")
        card = self.post(
            "/v1/receipts",
            {
                "request_id": "demo-aade-card-1",
                "lines": lines,
                "payments": [
                    card_payment(
                        TERMINAL_ID, Decimal("3.50"), f"TX{secrets.randbelow(10**10):010d}", signed
                    )
                ],
            },
        )
        self.show_receipt(card)
        self.expect(
            card["state"] == "delayed" and card["delayed_code"] == 2,
            "the card receipt goes out with IsDelayedCode 2",
        )
        self.wait_printed(card["receipt_id"], "07-card-code2")

    def status(self, title: str, *, expected: int) -> None:
        self.step(f"{title}: pos-agent status")
        code = self.cli("status")
        self.expect(code == expected, f"exit code {code} (expected {expected})")

    def recovery(self) -> None:
        self.step("Recovery: the provider and AADE are back; pos-agent sync")
        self.stack.set_faults("ok")
        time.sleep(self.stack.settings.backoff_max_s + 0.1)  # every retry is due by then
        code = self.cli("sync")
        self.expect(code == 0, f"pos-agent sync exit code {code} (expected 0: nothing left)")
        receipts = self.get("/v1/receipts?limit=50")["receipts"]
        left = [r for r in receipts if r["state"] != "accepted"]
        self.expect(not left, f"all {len(receipts)} documents accepted with a MARK")
        self.wait_queue_empty()

    def wait_queue_empty(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            printer = StatusReport.model_validate(self.get("/v1/status")).printer
            if printer is not None and not printer.queued:
                return
            time.sleep(0.05)

    def cli(self, *args: str) -> int:
        command = [sys.executable, "-m", "agent", *args, "--config", str(self.stack.config_path)]
        print("   " + paint("$ pos-agent " + " ".join(args), Level.WARN, self.colour))
        env = dict(os.environ)
        if not self.colour:
            env["NO_COLOR"] = "1"
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        for line in (result.stdout + result.stderr).rstrip().splitlines():
            print("   | " + line)
        self.show("exit code", result.returncode)
        return result.returncode

    def collect(self) -> None:
        """Copy the spool's PNG previews out of the temporary state directory."""
        previews = self.output / "previews"
        previews.mkdir(parents=True, exist_ok=True)
        for png in sorted(self.stack.preview_dir.glob("*.png")):
            target = previews / png.name
            shutil.copyfile(png, target)
            self.previews.append(target)


def _compact(body: dict[str, Any]) -> str:
    text = dumps(body).decode()
    return text if len(text) <= 160 else text[:157] + "…"


def _verify_signature(sandbox_url: str, text: str, signature: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = httpx.get(f"{sandbox_url}/_sandbox/public-key", timeout=5).content
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(base64.b64decode(signature), text.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def demo_settings() -> StackSettings:
    """Background probe and sync slower than the demo, so the steps show each transition;
    short retry backoff, so `pos-agent sync` finds every document due."""
    return StackSettings(
        printer_backend="file",
        preview_dir=True,
        food_service=True,
        cash_drawer="pin2",
        sync_interval_s=300.0,
        probe_interval_s=300.0,
        backoff_base_s=0.05,
        backoff_max_s=0.2,
    )


def demo_command(args: argparse.Namespace) -> int:
    colour = use_colour(sys.stdout)
    output = (args.keep or DEFAULT_OUTPUT).resolve()
    if output.exists():
        for old in ("escpos", "previews"):
            shutil.rmtree(output / old, ignore_errors=True)
    output.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pos-agent-demo-") as tmp:
        stack = LocalStack(Path(tmp), demo_settings())
        demo: Demo | None = None
        try:
            print(
                paint(
                    "pos-agent demo: a throw-away register against the sandbox provider",
                    Level.OK,
                    colour,
                    bold=True,
                )
            )
            stack.start()
            print(f"   sandbox provider   {stack.sandbox_url}")
            print(
                f"   daemon socket      {stack.socket_path}  (ready in {stack.last_ready_ms:.0f} ms)"
            )
            print(f"   state directory    {stack.state_dir} (temporary)")
            demo = Demo(stack, output, colour=colour)
            demo.run()
        except KeyboardInterrupt:
            print("\ninterrupted: stopping the sandbox and the daemon")
            return 130
        except (StepFailed, RuntimeError, httpx.HTTPError) as exc:
            print(paint(f"demo failed: {exc}", Level.CRITICAL, colour, bold=True))
            for log in ("daemon.log", "sandbox.log"):
                path = Path(tmp) / log
                if path.exists():
                    tail = path.read_text(errors="replace").splitlines()[-15:]
                    print(f"--- last lines of {log}:")
                    print("\n".join(tail))
            return 1
        finally:
            if demo is not None:
                demo.client.close()
            stack.stop()
            if demo is not None:
                demo.collect()
    print()
    print(paint("== Output ", Level.OK, colour, bold=True).ljust(60, "="))
    print(
        f"   ESC/POS files      {output / 'escpos'} ({len(demo.printed)} files, as sent to the printer)"
    )
    print(f"   PNG previews       {output / 'previews'} ({len(demo.previews)} receipts)")
    print(f"   took {time.monotonic() - started:.1f} s; sandbox and daemon stopped")
    if len(demo.previews) < len(demo.printed):
        demo.failures.append("fewer PNG previews than printed receipts")
    if demo.failures:
        print(
            paint(
                f"demo FAILED: {len(demo.failures)} check(s) did not hold:",
                Level.CRITICAL,
                colour,
                bold=True,
            )
        )
        for failure in demo.failures:
            print(f"   - {failure}")
        return 1
    print(paint("demo OK: every step behaved as expected", Level.OK, colour, bold=True))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="guided tour against the sandbox provider (needs nothing installed)"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where to put the ESC/POS files and PNG previews (default: ./{DEFAULT_OUTPUT})",
    )
    parser.set_defaults(handler=demo_command)
