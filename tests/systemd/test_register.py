"""The register, end to end: the .deb installed in a booted Debian 12 with systemd, as shipped.

One container for the whole module (tests/systemd/register.py boots it), checked in the order a
register lives: install without network → configure → the first till connection starts the
agent → receipts by a till in group `pos` → refusals and `status` → journal and credential →
SIGKILL, SIGSTOP, stop with a sale in flight → upgrade to the next build → a migration refused
(postinst fails, nothing changes) → remove, purge.
The tests depend on their predecessors' state and run in file order.

The provider is the sandbox on the host's loopback (the container shares the host's network).
Two builds of the package with different versions (`packaging/deb/build`, what `make deb` runs)
give the upgrade. A drop-in shortens the watchdog (WatchdogSec=5, TimeoutAbortSec=2) so the
SIGSTOP check does not wait the shipped 30 s; everything else is the shipped unit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.clock import ATHENS
from agent.json_codec import dumps
from agent.tools.local_stack import ISSUER_VAT, LocalStack, cash_receipt
from agent.tools.powercut_vm_image import base_root
from offline_store.migrations import MIGRATIONS
from tests.e2e.stack import wait_for
from tests.systemd.register import Register, missing_tools

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
PREVIOUS = f"{VERSION}~previous"
CONFIG = "/etc/pos-agent/pos-agent.toml"
SOURCES = "/etc/apt/sources.list.d/pos-agent.sources"
KEY = "/etc/pos-agent/provider-api-key"
DATABASE = "/var/lib/pos-agent/pos-agent.sqlite3"
TILL, OUTSIDER = "till", "visitor"
# apt in a network namespace of its own, with only a loopback that is down: nothing can be
# downloaded, as on a register without internet (systemctl reaches systemd by a path socket).
OFFLINE = ("unshare", "--net", "--")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="booting a container needs root"),
    pytest.mark.skipif(
        bool(missing_tools()),
        reason=f"needs {', '.join(missing_tools())} (apt install debootstrap systemd-container)",
    ),
    pytest.mark.skipif(
        not Path("/usr/bin/python3").exists() or shutil.which("dpkg-deb") is None,
        reason="building the .deb needs Debian's /usr/bin/python3 and dpkg-deb",
    ),
    pytest.mark.skipif(
        shutil.which("reprepro") is None or shutil.which("gpg") is None,
        reason="the signed repository needs reprepro and gpg (apt install reprepro gnupg)",
    ),
]

# A till: one request to the agent's socket as the POS software makes it, with the container's
# own python3 (stdlib only). Exit 13 when the socket is closed to this user.
TILL_SCRIPT = """\
import http.client, json, socket, sys

class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(60)
        self.sock.connect("/run/pos-agent/agent.sock")

method, path = sys.argv[1:3]
text = sys.argv[3:] == ["text"]  # print the answer's body as it is (/metrics)
body = sys.stdin.buffer.read() if method == "POST" else None
conn = Unix("pos-agent", timeout=60)
try:
    conn.request(method, path, body=body, headers={"content-type": "application/json"})
except PermissionError as exc:
    print(json.dumps({"refused": str(exc)}))
    sys.exit(13)
answer = conn.getresponse()
if text:
    print(answer.read().decode())
else:
    print(json.dumps({"status": answer.status, "body": json.loads(answer.read() or b"null")}))
"""

# The documents in the agent's database (path in argv[1]), read as root inside the container.
DOCUMENTS = """\
import json, sqlite3, sys
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
version = conn.execute("PRAGMA user_version").fetchone()[0]
docs = dict(conn.execute("SELECT request_id, state FROM documents").fetchall())
print(json.dumps({"version": version, "docs": docs}))
"""


# A till ringing up one cash sale after another (50 ms between an answer and the next sale) until
# the stop file appears, each outcome a JSON line: the load of a shop during an upgrade.
RINGING_TILL = """\
import http.client, json, os, socket, sys, time

template, prefix, stop, out = sys.argv[1:5]
body = open(template, encoding="utf-8").read()

class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(60)
        self.sock.connect("/run/pos-agent/agent.sock")

deadline = time.monotonic() + 300
number = 0
with open(out, "a", buffering=1) as log:
    while not os.path.exists(stop) and time.monotonic() < deadline:
        number += 1
        sale = {"request_id": f"{prefix}-{number}"}
        began = time.monotonic()
        try:
            conn = Unix("pos-agent", timeout=60)
            conn.request("POST", "/v1/receipts", body=body.replace("@ID@", sale["request_id"]).encode(),
                         headers={"content-type": "application/json"})
            answer = conn.getresponse()
            sale["status"] = answer.status
            sale["state"] = json.loads(answer.read()).get("state")
            conn.close()
        except OSError as exc:
            sale["error"] = f"{type(exc).__name__}: {exc}"
        sale["seconds"] = time.monotonic() - began
        log.write(json.dumps(sale) + "\\n")
        time.sleep(0.05)
"""
# How many sales the till rings before and after an upgrade. How long it waited for its slowest
# answer is a figure (register-figures.json, with the machine's load), never judged here: a
# timing assert fails on a busy machine and says nothing about the agent.
SALES_BEFORE = 5
SALES_AFTER_UPGRADE = 20
FIGURES = BUILD / "register-figures.json"


def record_figures(name: str, **figures: object) -> None:
    """Measured figures for the report (build/register-figures.json), one entry per case."""
    known = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    known[name] = figures
    FIGURES.write_text(json.dumps(known, indent=2) + "\n")


@dataclass
class InFlightSale:
    process: subprocess.Popen[str]

    def answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        with self.process.stdout:  # the till's own socket timeout bounds the read
            answer: dict[str, Any] = json.loads(self.process.stdout.read())
        self.process.wait(timeout=30)
        return answer


@dataclass
class RingingTill:
    register: Register
    process: subprocess.Popen[bytes]
    stop_file: str
    out: str

    def sales(self) -> list[dict[str, Any]]:
        text = self.register.run("cat", self.out, check=False).stdout
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def wait_for_sales(self, count: int) -> None:
        def rang() -> bool:
            assert self.process.poll() is None, "the till stopped ringing: see its stderr"
            return len(self.sales()) >= count

        wait_for(rang, timeout_s=120, what=f"{count} sales")

    def stop(self, *, after: int) -> list[dict[str, Any]]:
        """Let it ring `after` more sales, then stop it; every sale it rang."""
        self.wait_for_sales(len(self.sales()) + after)
        self.register.run("touch", self.stop_file)
        self.process.wait(timeout=120)
        return self.sales()


SET_VERSION = """\
import sqlite3, sys
sqlite3.connect(sys.argv[1]).execute(f"PRAGMA user_version = {int(sys.argv[2])}")
"""


@dataclass
class Shop:
    register: Register
    provider: LocalStack
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def till(self, method: str, path: str, body: Any = None, *, user: str = TILL) -> dict[str, Any]:
        result = self.register.run(
            "python3",
            "/mnt/share/till.py",
            method,
            path,
            user=user,
            input=dumps(body).decode() if body is not None else "",
            check=False,
        )
        assert result.returncode in (0, 13), result.stderr
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer

    def issue(self, name: str, body: dict[str, Any], state: str = "accepted") -> dict[str, Any]:
        answer = self.till("POST", "/v1/receipts", body)
        assert answer["status"] == 201, answer
        assert answer["body"]["state"] == state, answer
        self.receipts[name] = answer["body"]
        return answer["body"]

    def show(self, *properties: str) -> dict[str, str]:
        out = self.register.run(
            "systemctl", "show", "pos-agent.service", *(f"--property={p}" for p in properties)
        ).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def active(self) -> str:
        return self.register.run("systemctl", "is-active", "pos-agent", check=False).stdout.strip()

    def documents(self) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(
            self.register.run("python3", "-c", DOCUMENTS, DATABASE).stdout
        )
        return answer

    def journal(self, *options: str) -> str:
        return self.register.run(
            "journalctl", "--no-pager", "-o", "cat", "-u", "pos-agent", *options
        ).stdout

    def restarted_from(self, pid: str, timeout_s: float = 60) -> str:
        def new_pid() -> str | None:
            state = self.show("MainPID", "ActiveState")
            fresh = state["ActiveState"] == "active" and state["MainPID"] not in ("0", pid)
            return state["MainPID"] if fresh else None

        return wait_for(new_pid, timeout_s=timeout_s, what="pos-agent to run again")

    def run_update(self) -> str:
        """Start pos-agent-update.service as its timer does; its Result= once it is done."""
        self.register.run("systemctl", "start", "pos-agent-update.service", check=False)
        return self.register.run(
            "systemctl", "show", "--property=Result", "--value", "pos-agent-update.service"
        ).stdout.strip()

    def updates(self) -> str:
        return self.register.run(
            "journalctl", "--no-pager", "-o", "cat", "-u", "pos-agent-update.service"
        ).stdout

    def sale_in_flight(self, request_id: str) -> InFlightSale:
        """A sale sent in the background, returned once the agent has it at the provider."""
        process = subprocess.Popen(
            self.register.command(
                "python3", "/mnt/share/till.py", "POST", "/v1/receipts", user=TILL
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdin is not None
        process.stdin.write(dumps(cash_receipt(request_id)).decode())
        process.stdin.close()
        wait_for(
            lambda: self.documents()["docs"].get(request_id) == "pending",
            timeout_s=30,
            what="the sale to reach the provider",
        )
        return InFlightSale(process)

    def ringing_till(self, prefix: str) -> RingingTill:
        out, stop = f"/tmp/{prefix}-sales.jsonl", f"/tmp/{prefix}-stop"
        process = subprocess.Popen(
            self.register.command(
                "python3",
                "/mnt/share/ringing_till.py",
                "/mnt/share/sale.json",
                prefix,
                stop,
                out,
                user=TILL,
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        till = RingingTill(self.register, process, stop, out)
        till.wait_for_sales(SALES_BEFORE)
        return till

    def all_receipts_kept(self) -> None:
        for name, issued in self.receipts.items():
            answer = self.till("GET", f"/v1/receipts/{issued['receipt_id']}")
            assert answer["status"] == 200, (name, answer)
            for key in ("uid", "series", "number"):
                assert answer["body"][key] == issued[key], (name, key)


def _build(version: str) -> Path:
    completed = subprocess.run(
        [str(REPO / "packaging/deb/build"), version, str(BUILD)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return Path(completed.stdout.strip().splitlines()[-1])


def _repositories(gnupg: Path, share: Path) -> None:
    """What `make repo` builds, three times: the chain's repository signed with its key
    (previous in stable, current in canary), the same signed with another key, and unsigned."""
    keys = {}
    for name in ("chain", "stranger"):
        keys[name] = subprocess.run(
            [str(REPO / "packaging/repo/test-key"), str(gnupg), f"pos-agent {name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    for repo, key, channels in (
        ("repo", keys["chain"], (("stable", "previous.deb"), ("canary", "current.deb"))),
        ("repo-other-key", keys["stranger"], (("stable", "current.deb"),)),
        ("repo-unsigned", "none", (("stable", "current.deb"),)),
    ):
        for suite, deb in channels:
            subprocess.run(
                [str(REPO / "packaging/repo/build"), str(share / repo), suite, str(share / deb)],
                env={
                    **os.environ,
                    "GNUPGHOME": str(gnupg),
                    "REPO_SIGNING_KEY": key,
                    "REPO_URL": f"file:/mnt/share/{repo}/public",
                },
                capture_output=True,
                check=True,
            )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    work = tmp_path_factory.mktemp("register")
    share = work / "share"
    share.mkdir()
    for name, version in (("previous.deb", PREVIOUS), ("current.deb", VERSION)):
        shutil.copy(_build(version), share / name)
    (share / "till.py").write_text(TILL_SCRIPT)
    (share / "ringing_till.py").write_text(RINGING_TILL)
    (share / "sale.json").write_bytes(dumps(cash_receipt("@ID@")))
    _repositories(work / "gnupg", share)
    register = Register(root=base_root(BUILD / "register"), share=share)
    provider = LocalStack(work / "provider")
    try:
        provider.start_sandbox()
        register.boot()
        yield Shop(register, provider)
    finally:
        register.shutdown()
        provider.stop()


def test_installs_without_network_and_waits_for_the_key(shop: Shop) -> None:
    r = shop.register
    installed = r.run(*OFFLINE, "apt-get", "install", "-y", "/mnt/share/previous.deb")

    assert "pos-agent: installed but NOT started: the provider API key is missing" in (
        installed.stdout
    )
    assert r.run("systemctl", "is-enabled", "pos-agent.socket").stdout.strip() == "enabled"
    assert r.run("systemctl", "is-active", "pos-agent.socket").stdout.strip() == "active"
    assert shop.active() == "inactive"
    assert r.run("pos-agent", "--version").stdout == f"pos-agent {PREVIOUS}\n"
    assert r.run("readlink", "-f", "/opt/pos-agent/venv/bin/python").stdout.strip() == (
        "/usr/bin/python3.11"
    )
    modes = r.run("stat", "-c", "%n %a %U:%G", "/etc/pos-agent", CONFIG, "/run/pos-agent").stdout
    assert modes.splitlines() == [
        "/etc/pos-agent 750 root:pos-agent",
        f"{CONFIG} 640 root:pos-agent",
        "/run/pos-agent 2750 pos-agent:pos",
    ]
    assert r.run("stat", "-c", "%a %U:%G", "/run/pos-agent/agent.sock").stdout.strip() == (
        "660 pos-agent:pos"
    )


def test_configured_the_first_till_connection_starts_it(shop: Shop) -> None:
    r = shop.register
    port = shop.provider.sandbox_url.rsplit(":", 1)[1]
    r.run(
        "sed",
        "-i",
        "-e",
        f's|^vat = .*|vat = "{ISSUER_VAT}"|',
        "-e",
        f"s|127.0.0.1:8800|127.0.0.1:{port}|g",
        # Room for the sale held in flight by the slow provider when `systemctl stop` comes
        # (a loaded machine must not turn it into an offline receipt).
        "-e",
        "s|^read_timeout_s = .*|read_timeout_s = 8.0|",
        "-e",
        "s|^total_timeout_s = .*|total_timeout_s = 10.0|",
        # The technician fills the provider footer (the placeholders fail status until then).
        "-e",
        's|^legal_name = "<.*>"|legal_name = "SANDBOX ΠΑΡΟΧΟΣ Α.Ε."|',
        "-e",
        's|^web_address = "<.*>"|web_address = "www.sandbox.example"|',
        "-e",
        's|^licence = "<.*>"|licence = "ΑΔΑ-0000"|',
        CONFIG,
    )
    key = shop.provider.api_key_file.read_text()
    r.run("sh", "-c", f"install -m 0600 /dev/null {KEY} && cat > {KEY}", input=key)
    r.run("mkdir", "-p", "/etc/systemd/system/pos-agent.service.d")
    r.run(
        "sh",
        "-c",
        "cat > /etc/systemd/system/pos-agent.service.d/test.conf",
        input="[Service]\nWatchdogSec=5\nTimeoutAbortSec=2\n",
    )
    r.run("systemctl", "daemon-reload")
    r.run("useradd", "--create-home", "--groups", "pos", TILL)
    r.run("useradd", "--create-home", OUTSIDER)
    assert shop.active() == "inactive"

    answer = shop.till("GET", "/v1/health")

    assert answer["status"] == 200, answer
    # Type=notify: "active" only after READY=1; then the STATUS= line.
    state = shop.show("ActiveState", "StatusText", "Type", "NRestarts")
    assert state == {
        "ActiveState": "active",
        "StatusText": "serving on /run/pos-agent/agent.sock",
        "Type": "notify",
        "NRestarts": "0",
    }


def test_a_till_in_group_pos_issues_cash_card_and_offline_receipts(shop: Shop) -> None:
    cash = shop.issue("cash", cash_receipt("register-cash-1"))
    assert cash["mark"]

    lines = [
        {
            "description": "Τοστ",
            "quantity": Decimal(2),
            "unit_price": Decimal("4.20"),
            "vat_category": 2,
        }
    ]
    signed = shop.till(
        "POST",
        "/v1/payments/sign",
        {
            "request_id": "register-card-sign",
            "terminal_id": "TID00042",
            "document_type": "11.1",
            "lines": lines,
            "amount": Decimal("8.40"),
        },
    )
    assert signed["status"] == 201, signed
    card = {
        "method": 7,
        "amount": Decimal("8.40"),
        "terminal_id": "TID00042",
        "transaction_id": "TX-REGISTER-1",
        "signature_id": signed["body"]["signature_id"],
    }
    issued = shop.issue(
        "card", {"request_id": "register-card-1", "lines": lines, "payments": [card]}
    )
    assert issued["receipt_id"] == signed["body"]["receipt_id"]

    shop.provider.set_faults("down")
    offline = shop.issue("offline", cash_receipt("register-offline-1"), state="delayed")
    assert offline["offline_qr_url"]


def test_the_journal_has_priorities_the_key_does_not_reach_it(shop: Shop) -> None:
    warnings = shop.journal("-p", "warning")
    assert re.search(r"POST \S+ failed after \d+ ms: \w+Error", warnings), warnings
    everything = shop.journal()
    assert "pos-agent ready" in everything
    assert "pos-agent ready" not in warnings  # info stays info
    assert not re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d", everything, re.MULTILINE)

    key = shop.provider.api_key_file.read_text().strip()
    r = shop.register
    whole_journal = r.run("journalctl", "--no-pager", "-o", "verbose").stdout
    assert key not in whole_journal
    credential = "/run/credentials/pos-agent.service/provider-api-key"
    assert r.run("cat", credential).stdout.strip() == key
    assert r.run("stat", "-c", "%a %U:%G", KEY).stdout.strip() == "600 root:root"

    shop.provider.set_faults("ok")
    synced = r.run("pos-agent", "sync", check=False)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert shop.documents()["docs"]["register-offline-1"] == "accepted"


def test_outside_group_pos_is_refused_and_status_answers_everyone(shop: Shop) -> None:
    refused = shop.till("GET", "/v1/health", user=OUTSIDER)
    assert "Permission denied" in refused["refused"]

    r = shop.register
    as_root = r.run("pos-agent", "status", check=False)
    as_till = r.run("pos-agent", "status", user=TILL, check=False)
    as_outsider = r.run("pos-agent", "status", user=OUTSIDER, check=False)

    assert as_root.returncode == 0, as_root.stdout + as_root.stderr
    assert as_till.returncode == 0, as_till.stdout + as_till.stderr
    assert "Traceback" not in as_till.stdout + as_till.stderr
    assert as_till.stdout.splitlines()[0].startswith("pos-agent status: OK")
    assert as_outsider.returncode == 3, as_outsider.stdout + as_outsider.stderr
    assert "Traceback" not in as_outsider.stdout + as_outsider.stderr
    assert "permission denied on /run/pos-agent/agent.sock: run as root or as a member" in (
        as_outsider.stdout
    )


def test_sigkill_restarts_and_loses_nothing(shop: Shop) -> None:
    pid = shop.show("MainPID")["MainPID"]

    shop.register.run("systemctl", "kill", "--signal=KILL", "--kill-whom=main", "pos-agent")

    shop.restarted_from(pid)
    assert shop.show("NRestarts")["NRestarts"] == "1"
    shop.all_receipts_kept()
    shop.issue("after-kill", cash_receipt("register-after-kill"))


def test_sigstop_trips_the_watchdog(shop: Shop) -> None:
    pid = shop.show("MainPID")["MainPID"]

    shop.register.run("systemctl", "kill", "--signal=STOP", "--kill-whom=main", "pos-agent")

    shop.restarted_from(pid)
    assert (
        "Watchdog timeout"
        in shop.register.run(
            "journalctl", "--no-pager", "-o", "cat", "-u", "pos-agent", "--grep", "Watchdog"
        ).stdout
    )
    shop.all_receipts_kept()


def test_stop_drains_a_sale_in_flight(shop: Shop) -> None:
    shop.provider.set_faults("slow", delay_ms=3000)
    sale = subprocess.Popen(
        shop.register.command("python3", "/mnt/share/till.py", "POST", "/v1/receipts", user=TILL),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sale.stdin is not None
    sale.stdin.write(dumps(cash_receipt("register-in-flight")).decode())
    sale.stdin.close()
    wait_for(
        lambda: shop.documents()["docs"].get("register-in-flight") == "pending",
        timeout_s=30,
        what="the sale to reach the provider",
    )

    shop.register.run("systemctl", "stop", "pos-agent")

    assert sale.stdout is not None
    answer = json.loads(sale.stdout.read())  # the till's own socket timeout bounds the wait
    sale.wait(timeout=30)
    assert answer["status"] == 201 and answer["body"]["state"] == "accepted", answer
    assert shop.active() == "inactive"
    assert "stopping: draining requests" in shop.journal("--grep", "draining")
    shop.receipts["in-flight"] = answer["body"]
    shop.provider.set_faults("ok")
    shop.register.run("systemctl", "start", "pos-agent")


def test_upgrade_under_a_ringing_till_refuses_no_sale(shop: Shop) -> None:
    """The socket keeps listening through `apt-get install` of the next version: the till's
    sales wait in its backlog while the service restarts and the new daemon answers them."""
    r = shop.register
    pid = shop.show("MainPID")["MainPID"]
    config_before = r.run("cat", CONFIG).stdout
    before = shop.documents()
    assert shop.till("GET", "/v1/health")["body"]["version"] == PREVIOUS
    till = shop.ringing_till("upgrade")

    began = time.monotonic()
    upgraded = r.run(*OFFLINE, "apt-get", "install", "-y", "/mnt/share/current.deb")
    install_s = time.monotonic() - began
    sales = till.stop(after=SALES_AFTER_UPGRADE)

    assert r.run("dpkg-query", "-W", "-f", "${Version}", "pos-agent").stdout == VERSION
    assert "pos-agent: started" in upgraded.stdout
    shop.restarted_from(pid)
    assert shop.till("GET", "/v1/health")["body"]["version"] == VERSION
    assert f"up, version {VERSION}," in r.run("pos-agent", "status", check=False).stdout
    exposition = r.run("python3", "/mnt/share/till.py", "GET", "/metrics", "text", user=TILL).stdout
    assert re.search(
        rf'^pos_agent_build_info{{.*version="{re.escape(VERSION)}".*}} 1\.0$', exposition, re.M
    )
    assert re.search(r"^pos_agent_build_timestamp_seconds{.*} 1\.\d+e\+09$", exposition, re.M)
    latest = MIGRATIONS[-1].version
    assert f"{DATABASE} is at schema v{latest}, the latest" in shop.journal("--grep", "schema")
    assert r.run("cat", CONFIG).stdout == config_before  # a conffile: never overwritten
    failed = [sale for sale in sales if sale.get("status") != 201]
    assert not failed, failed
    slowest = max(sale["seconds"] for sale in sales)
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    record_figures(
        "upgrade_under_load",
        sales=len(sales),
        refused_or_failed=len(failed),
        slowest_answer_s=round(slowest, 3),
        apt_get_install_s=round(install_s, 3),
        load_per_cpu=round(load, 1),
    )
    after = shop.documents()
    assert after["version"] == latest
    assert {k: v for k, v in after["docs"].items() if k in before["docs"]} == before["docs"]
    for sale in sales:
        assert after["docs"][sale["request_id"]] == "accepted", sale
    shop.all_receipts_kept()


def test_downgrade_keeps_the_data(shop: Shop) -> None:
    """Rollback: the previous version installed over the current one, same schema: the old
    agent takes over the database as it is, every receipt kept."""
    r = shop.register
    pid = shop.show("MainPID")["MainPID"]
    before = shop.documents()

    downgraded = r.run(
        *OFFLINE, "apt-get", "install", "-y", "--allow-downgrades", "/mnt/share/previous.deb"
    )

    assert "pos-agent: started" in downgraded.stdout
    assert r.run("dpkg-query", "-W", "-f", "${Version}", "pos-agent").stdout == PREVIOUS
    shop.restarted_from(pid)
    assert shop.till("GET", "/v1/health")["body"]["version"] == PREVIOUS
    assert shop.documents() == before
    shop.all_receipts_kept()
    shop.issue("after-downgrade", cash_receipt("register-after-downgrade"))


def test_installs_and_upgrades_from_the_signed_repository(shop: Shop) -> None:
    """The chain's repository with its key as Signed-By: on channel stable the register has the
    newest (previous); moved to canary, `apt-get update && apt-get install pos-agent` upgrades."""
    r = shop.register
    r.run("rm", "-f", "/etc/apt/sources.list")  # the register reaches no Debian mirror here
    r.run(
        "install",
        "-m",
        "0644",
        "/mnt/share/repo/public/pos-agent-archive-keyring.gpg",
        "/usr/share/keyrings/pos-agent-archive-keyring.gpg",
    )
    r.run("install", "-m", "0644", "/mnt/share/repo/public/pos-agent.sources", SOURCES)

    r.run(*OFFLINE, "apt-get", "update")
    stable = r.run(*OFFLINE, "apt-get", "install", "-y", "pos-agent")

    assert f"pos-agent is already the newest version ({PREVIOUS})" in stable.stdout
    pid = shop.show("MainPID")["MainPID"]
    r.run("sed", "-i", "s/^Suites: stable$/Suites: canary/", SOURCES)

    r.run(*OFFLINE, "apt-get", "update")
    canary = r.run(*OFFLINE, "apt-get", "install", "-y", "pos-agent")

    assert "pos-agent: started" in canary.stdout
    assert r.run("dpkg-query", "-W", "-f", "${Version}", "pos-agent").stdout == VERSION
    shop.restarted_from(pid)
    assert shop.till("GET", "/v1/health")["body"]["version"] == VERSION
    shop.all_receipts_kept()


@pytest.mark.parametrize(
    ("repo", "why"),
    [("repo-unsigned", "is not signed"), ("repo-other-key", "NO_PUBKEY")],
)
def test_an_unsigned_or_wrongly_signed_repository_is_refused(
    shop: Shop, repo: str, why: str
) -> None:
    r = shop.register
    untrusted = "/etc/apt/sources.list.d/untrusted.sources"
    r.run(
        "sh",
        "-c",
        f"sed 's|/mnt/share/repo/|/mnt/share/{repo}/|' {SOURCES} > {untrusted}",
    )
    try:
        refused = r.run(*OFFLINE, "apt-get", "update", check=False)
        offered = r.run("apt-cache", "madison", "pos-agent").stdout
    finally:
        r.run("rm", untrusted)

    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert f"file:/mnt/share/{repo}/public canary" in output, output
    assert why in output and "is not signed" in output, output
    assert f"/mnt/share/{repo}/" not in offered, offered
    assert "/mnt/share/repo/public canary/main" in offered, offered


def test_a_downgrade_onto_a_newer_schema_is_refused_and_changes_nothing(shop: Shop) -> None:
    """The previous version meets a database the current one has moved to a schema it does not
    know: it refuses it, by name, never reads it; postinst fails, the file stays byte for byte,
    the agent stays stopped; once fixed, `dpkg --configure -a` completes."""
    r = shop.register
    latest = MIGRATIONS[-1].version
    r.run("systemctl", "stop", "pos-agent.socket", "pos-agent.service")
    r.run("python3", "-c", SET_VERSION, DATABASE, str(latest + 1))
    digest = r.run("sha256sum", DATABASE).stdout

    refused = r.run(
        *OFFLINE,
        "apt-get",
        "install",
        "-y",
        "--allow-downgrades",
        "/mnt/share/previous.deb",
        check=False,
    )

    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    newer = (
        f"database schema version {latest + 1} is newer than this agent knows ({latest}); "
        "install the newer pos-agent again instead of downgrading"
    )
    assert newer in output, output
    assert "the database was NOT migrated and is unchanged; the agent stays stopped" in output
    assert r.run("sha256sum", DATABASE).stdout == digest
    assert shop.active() == "inactive"
    status = r.run("dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Version}", "pos-agent")
    assert status.stdout.split() == ["iF", PREVIOUS]  # installed, half-configured
    assert newer in r.run("pos-agent", "status", check=False).stdout  # not read either
    assert "newer than this agent knows" in shop.journal("--grep", "newer than")

    r.run("python3", "-c", SET_VERSION, DATABASE, str(latest))
    configured = r.run("dpkg", "--configure", "-a")

    assert "pos-agent: started" in configured.stdout
    wait_for(lambda: shop.active() == "active", timeout_s=30, what="pos-agent to start")
    shop.all_receipts_kept()


def test_the_update_timer_takes_its_channel_in_the_window_and_never_mid_sale(shop: Shop) -> None:
    """`pos-agent update` as pos-agent-update.timer starts it: the channel comes from the
    register's config, nothing happens outside the window, a sale waiting for the provider holds
    the update back (exit 75, tried again next run), and then the canary version is installed."""
    r = shop.register
    r.run("sed", "-i", "s/^Suites: canary$/Suites: stable/", SOURCES)
    now = datetime.now(ATHENS)
    later = f"{(now + timedelta(hours=2)):%H:%M}-{(now + timedelta(hours=3)):%H:%M}"
    around = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=1)):%H:%M}"
    r.run(
        "sed",
        "-i",
        "-e",
        's/^channel = "stable"$/channel = "canary"/',
        "-e",
        f's/^window = ".*"$/window = "{later}"/',
        "-e",
        "s/^in_flight_wait_s = .*/in_flight_wait_s = 2.0/",
        CONFIG,
    )

    assert shop.run_update() == "success"
    assert f"outside the maintenance window {later} (Athens); nothing done" in shop.updates()
    assert r.run("grep", "^Suites:", SOURCES).stdout.strip() == "Suites: canary"
    assert r.run("dpkg-query", "-W", "-f", "${Version}", "pos-agent").stdout == PREVIOUS

    r.run("sed", "-i", f's/^window = ".*"$/window = "{around}"/', CONFIG)
    shop.provider.set_faults("slow", delay_ms=7000)
    sale = shop.sale_in_flight("register-during-update")
    try:
        assert shop.run_update() == "success"  # 75: held back, not a failure
    finally:
        answer = sale.answer()
        shop.provider.set_faults("ok")
    assert f"a sale is in flight after 2 s; {VERSION} waits for the next run" in shop.updates()
    assert answer["status"] == 201 and answer["body"]["state"] == "accepted", answer
    shop.receipts["during-update"] = answer["body"]
    assert r.run("dpkg-query", "-W", "-f", "${Version}", "pos-agent").stdout == PREVIOUS
    pid = shop.show("MainPID")["MainPID"]

    assert shop.run_update() == "success"

    assert f"installing {VERSION} over {PREVIOUS} (channel canary)" in shop.updates()
    assert r.run("dpkg-query", "-W", "-f", "${Version}", "pos-agent").stdout == VERSION
    shop.restarted_from(pid)
    assert shop.till("GET", "/v1/health")["body"]["version"] == VERSION
    shop.all_receipts_kept()


def test_remove_keeps_the_data_and_purge_removes_only_the_config(shop: Shop) -> None:
    r = shop.register
    removed = r.run("apt-get", "remove", "-y", "pos-agent")

    assert "Kept: /var/lib/pos-agent" in removed.stdout
    assert r.run("test", "-f", DATABASE, check=False).returncode == 0
    assert r.run("test", "-f", CONFIG, check=False).returncode == 0
    assert r.run("test", "-e", "/usr/bin/pos-agent", check=False).returncode == 1
    assert r.run("systemctl", "is-active", "pos-agent.socket", check=False).stdout.strip() != (
        "active"
    )

    purged = r.run("apt-get", "purge", "-y", "pos-agent")

    assert "/var/lib/pos-agent is KEPT" in purged.stdout
    assert r.run("test", "-e", "/etc/pos-agent", check=False).returncode == 1
    assert r.run("test", "-f", DATABASE, check=False).returncode == 0


def test_a_fresh_install_from_the_signed_repository(shop: Shop) -> None:
    r = shop.register

    installed = r.run(*OFFLINE, "apt-get", "install", "-y", "pos-agent")

    assert "pos-agent: installed but NOT started" in installed.stdout
    assert r.run("dpkg-query", "-W", "-f", "${Version}", "pos-agent").stdout == VERSION
    assert r.run("systemctl", "is-active", "pos-agent.socket").stdout.strip() == "active"
