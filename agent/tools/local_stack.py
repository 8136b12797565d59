"""A sandbox provider and a daemon as real processes in one state directory.

The demo, the benchmark, the crash harness and the end-to-end tests all need the same thing: a
throw-away register with its own config, API key file (0600), sandbox and daemon, with the POS
side on the real Unix socket. READY is observed the way systemd observes it: through a
NOTIFY_SOCKET datagram socket of our own.

Also here, because every one of them does it the same way: a till's JSON request (amounts as
Decimal, through `agent.json_codec`), a read-only look at the agent's store, and the `--keep`
directory and JSON report of the harness commands.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from agent.json_codec import dumps

ISSUER_VAT = "EL094019245"
DATABASE_NAME = "pos-agent.sqlite3"
JSON_HEADERS = {"content-type": "application/json"}


def _write_secret(path: Path, text: str) -> None:
    """A new secret in a file only its owner reads (an existing one is kept: a restart of the
    stack keeps its credentials)."""
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def free_tcp_port() -> int:
    """A port nothing listens on right now on 127.0.0.1 (for a listener started next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class StackSettings:
    printer_backend: str = "file"
    sync_interval_s: float = 30.0
    probe_interval_s: float = 1.0
    sync_concurrency: int = 4
    connect_timeout_s: float = 1.0
    read_timeout_s: float = 2.0
    total_timeout_s: float = 3.0
    backoff_base_s: float = 0.2
    backoff_max_s: float = 2.0
    reservation_timeout_s: int = 900
    preview_dir: bool = True
    max_connections: int = 256
    header_timeout_s: float = 10.0
    # The metrics-only listener ("127.0.0.1:PORT") and its web config; off when None.
    metrics_listen: str | None = None
    metrics_web_config: Path | None = None
    register_name: str = ""
    food_service: bool = False
    cash_drawer: str = "none"
    kitchen_copy: bool = False
    printer_port: int | None = None  # the "network" backend on 127.0.0.1 (a printer emulator)
    sandbox_page_size: int = 50  # documents per page of the sandbox's getdocuments
    # The local API also on 127.0.0.1:PORT, for callers with the bearer token
    # (`LocalStack.tcp_token`); off when None.
    api_tcp_port: int | None = None


@dataclass
class LocalStack:
    root: Path
    settings: StackSettings = field(default_factory=StackSettings)
    sandbox: subprocess.Popen[str] | None = None
    daemon: subprocess.Popen[bytes] | None = None
    sandbox_url: str = ""
    last_ready_ms: float | None = None
    _notify: socket.socket | None = None

    @property
    def socket_path(self) -> Path:
        return self.root / "run" / "agent.sock"

    @property
    def config_path(self) -> Path:
        return self.root / "pos-agent.toml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def printer_path(self) -> Path:
        return self.root / "printer.bin"

    @property
    def preview_dir(self) -> Path:
        return self.root / "previews"

    @property
    def api_key_file(self) -> Path:
        return self.root / "provider-api-key"

    @property
    def tcp_token_file(self) -> Path:
        return self.root / "api-tcp-token"

    @property
    def tcp_token(self) -> str:
        """The bearer token TCP callers of the local API send (written by `write_config`)."""
        return self.tcp_token_file.read_text(encoding="utf-8").strip()

    @property
    def database_path(self) -> Path:
        return self.state_dir / DATABASE_NAME

    def _write_credentials(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_secret(self.api_key_file, secrets.token_hex(16))

    def start_sandbox(self) -> str:
        self._write_credentials()
        with (self.root / "sandbox.log").open("a") as log:  # the child keeps its own copy
            self.sandbox = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agent.sandbox",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--state",
                    str(self.root / "sandbox"),
                    "--api-key-file",
                    str(self.api_key_file),
                    "--issuer-vat",
                    ISSUER_VAT,
                    "--page-size",
                    str(self.settings.sandbox_page_size),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.sandbox.stdout is not None
        line = self.sandbox.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"sandbox did not start: {line!r}; see {self.root / 'sandbox.log'}")
        self.sandbox_url = line.strip().rsplit(" ", 1)[-1]
        return self.sandbox_url

    def write_config(self) -> Path:
        s = self.settings
        preview = f"preview_dir = {_toml_string(str(self.preview_dir))}\n" if s.preview_dir else ""
        metrics = f"register_name = {_toml_string(s.register_name)}\n"
        if s.metrics_listen is not None:
            metrics += f"listen = {_toml_string(s.metrics_listen)}\n"
        if s.metrics_web_config is not None:
            metrics += f"web_config_file = {_toml_string(str(s.metrics_web_config))}\n"
        network = f'host = "127.0.0.1"\nport = {s.printer_port}' if s.printer_port else ""
        tcp = ""
        if s.api_tcp_port is not None:
            _write_secret(self.tcp_token_file, secrets.token_urlsafe(24) + "\n")
            tcp = (
                f"tcp_port = {s.api_tcp_port}\n"
                f"tcp_token_file = {_toml_string(str(self.tcp_token_file))}\n"
            )
        self.config_path.write_text(
            f"""state_dir = {_toml_string(str(self.state_dir))}

[issuer]
vat = "{ISSUER_VAT}"
name = "ΚΑΦΕΝΕΙΟ Η ΩΡΑΙΑ ΕΛΛΑΣ Ο.Ε."
brand = "Ωραία Ελλάς"
tax_office = "Δ.Ο.Υ. ΑΘΗΝΩΝ Α'"
activity = "Καφετέρια"
branch = 0
phone = "2101234567"

[issuer.address]
street = "Ερμού"
number = "12"
city = "Αθήνα"
postal = "10563"

[provider]
base_url = {_toml_string(self.sandbox_url)}
portal_url = {_toml_string(self.sandbox_url)}
api_key_file = {_toml_string(str(self.api_key_file))}
connect_timeout_s = {s.connect_timeout_s}
read_timeout_s = {s.read_timeout_s}
total_timeout_s = {s.total_timeout_s}
provider_id = "999"

[provider.footer]
legal_name = "SANDBOX ΠΑΡΟΧΟΣ - ΔΕΝ ΑΠΟΤΕΛΕΙ ΦΟΡΟΛΟΓΙΚΟ ΣΤΟΙΧΕΙΟ"
web_address = "sandbox.pos-agent.invalid"
licence = "SANDBOX-0000 (pos-agent demo)"

[terminal]
food_service = {"true" if s.food_service else "false"}
reservation_timeout_s = {s.reservation_timeout_s}

[api]
socket_path = {_toml_string(str(self.socket_path))}
socket_group = ""
max_connections = {s.max_connections}
header_timeout_s = {s.header_timeout_s}
{tcp}
[sync]
interval_s = {s.sync_interval_s}
jitter_s = 0.1
concurrency = {s.sync_concurrency}
probe_interval_s = {s.probe_interval_s}
backoff_base_s = {s.backoff_base_s}
backoff_max_s = {s.backoff_max_s}

[printer]
backend = "{s.printer_backend}"
path = {_toml_string(str(self.printer_path))}
{network}
profile = "cp1253"
cash_drawer = "{s.cash_drawer}"
kitchen_copy = {"true" if s.kitchen_copy else "false"}
{preview}
[metrics]
{metrics}""",
            encoding="utf-8",
        )
        return self.config_path

    def start_daemon(
        self, *, timeout_s: float = 20.0, extra_env: dict[str, str] | None = None
    ) -> float:
        """Start `pos-agent run`; returns milliseconds from exec to READY=1. `extra_env` goes
        to the daemon only (e.g. libfaketime's, to step its wall clock). A daemon not ready in
        `timeout_s` is killed before the error: a caller that starts again (the chaos run's
        restarts) would otherwise have two daemons on one database."""
        if not self.config_path.exists():
            self.write_config()
        notify_path = self.root / "notify.sock"
        if self._notify is not None:
            self._notify.close()
            self._notify = None
        notify_path.unlink(missing_ok=True)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        notify.settimeout(0.2)
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), **(extra_env or {})}
        env.pop("CREDENTIALS_DIRECTORY", None)
        # As the unit does (Environment=ESCPOS_CAPABILITIES_PICKLE_DIR=%C/pos-agent): without
        # it python-escpos re-parses its YAML printer database into a new temp dir every start.
        env.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(self.root / "cache"))
        (self.root / "cache").mkdir(exist_ok=True)
        started = time.perf_counter()
        with (self.root / "daemon.log").open("a") as log:  # the child keeps its own copy
            daemon = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", "--config", str(self.config_path)],
                stdout=log,
                stderr=log,
                env=env,
            )
        self.daemon = daemon
        try:
            deadline = started + timeout_s
            while time.perf_counter() < deadline:
                if daemon.poll() is not None:
                    raise RuntimeError(
                        f"daemon exited with {daemon.returncode}: {self._last_log_line()}"
                    )
                try:
                    message = notify.recv(4096).decode()
                except TimeoutError:
                    continue
                if "READY=1" in message.split("\n"):
                    self.last_ready_ms = (time.perf_counter() - started) * 1000
                    # Kept open until stop: the daemon sends STATUS and STOPPING later.
                    self._notify = notify
                    return self.last_ready_ms
            raise RuntimeError(
                f"daemon not ready after {timeout_s} s; see {self.root / 'daemon.log'}"
            )
        except BaseException:
            notify.close()
            if daemon.poll() is None:  # not ready is not started: a retry must not find it
                daemon.kill()
                daemon.wait()
            raise

    def _last_log_line(self) -> str:
        """The daemon's last log line (its reason for exiting), so a failed start says why
        even after the temporary directory holding the log is gone."""
        log = self.root / "daemon.log"
        lines = (
            log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
        )
        return (lines[-1] if lines else "no log") + f" (log: {log})"

    def start(self) -> LocalStack:
        """Sandbox, config, daemon. If a step fails, what did start is stopped again: callers
        (and `with`) only stop a stack whose start returned."""
        try:
            self.start_sandbox()
            self.write_config()
            self.start_daemon()
        except BaseException:
            self.stop()
            raise
        return self

    def client(self, timeout_s: float = 30.0) -> httpx.Client:
        transport = httpx.HTTPTransport(uds=str(self.socket_path))
        return httpx.Client(transport=transport, base_url="http://pos-agent", timeout=timeout_s)

    def async_client(self, timeout_s: float = 30.0) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(uds=str(self.socket_path))
        return httpx.AsyncClient(
            transport=transport, base_url="http://pos-agent", timeout=timeout_s
        )

    def provider(self) -> httpx.Client:
        return httpx.Client(base_url=self.sandbox_url, timeout=30.0)

    def set_faults(self, mode: str, **options: Any) -> None:
        with self.provider() as client:
            client.post("/_sandbox/faults", json={"mode": mode, **options}).raise_for_status()

    def sandbox_health(self) -> dict[str, Any]:
        with self.provider() as client:
            response = client.get("/_sandbox/health")
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

    def provider_documents(self) -> list[dict[str, Any]]:
        with self.provider() as client:
            response = client.get("/_sandbox/documents")
            response.raise_for_status()
            body = response.json()
            return body["documents"] if isinstance(body, dict) else body

    def open_store(self) -> sqlite3.Connection:
        """A read-only view of the agent's store, as the status CLI reads it (the daemon keeps
        writing); the caller closes it."""
        import offline_store as store  # only the harnesses that look inside pay for it

        return store.open_database(self.database_path, read_only=True)

    def unsent_count(self) -> int:
        """Documents the provider has not taken yet (pending or delayed)."""
        conn = self.open_store()
        try:
            row = conn.execute(
                "SELECT COUNT(*) FROM documents WHERE state IN ('pending', 'delayed')"
            ).fetchone()
            return int(row[0])
        finally:
            conn.close()

    def kill_daemon(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGKILL)
            self.daemon.wait()

    def stop_daemon(self, timeout_s: float = 15.0) -> int:
        if self.daemon is None or self.daemon.poll() is not None:
            return self.daemon.returncode if self.daemon else 0
        self.daemon.send_signal(signal.SIGTERM)
        try:
            return self.daemon.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
            raise

    def stop(self) -> None:
        try:
            self.stop_daemon()
        finally:
            if self._notify is not None:
                self._notify.close()
                self._notify = None
            if self.sandbox is not None and self.sandbox.poll() is None:
                self.sandbox.terminate()
                try:
                    self.sandbox.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.sandbox.kill()
                    self.sandbox.wait()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the POS side ------------------------------------------------------------------------------


def sale_line(description: str, quantity: str, price: str, vat_category: int) -> dict[str, Any]:
    """One receipt line of the local API; quantity and price as Decimal, never float."""
    return {
        "description": description,
        "quantity": Decimal(quantity),
        "unit_price": Decimal(price),
        "vat_category": vat_category,
    }


def cash_receipt(
    request_id: str, *, description: str = "Καφές φρέντο", quantity: str = "2", price: str = "2.50"
) -> dict[str, Any]:
    """A valid one-line 11.1 paid in cash (method 3), VAT category 2."""
    total = (Decimal(quantity) * Decimal(price)).quantize(Decimal("0.01"))
    return {
        "request_id": request_id,
        "lines": [sale_line(description, quantity, price, 2)],
        "payments": [{"method": 3, "amount": total}],
    }


def post_json(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    """POST as a till does: the body through `agent.json_codec`, so Decimal amounts stay exact."""
    return client.post(path, content=dumps(body), headers=JSON_HEADERS)


# -- the harness commands (bench, chaos) -------------------------------------------------------


@contextmanager
def work_dir(keep: Path | None, prefix: str) -> Iterator[Path]:
    """`--keep DIR` (created, and left for its logs and DB) or a temporary directory."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def write_report(path: Path, report: dict[str, Any]) -> None:
    """`--json PATH`: the whole report, indented, Greek text as is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")


def print_verdict(report: dict[str, Any], ok: bool, json_path: Path | None) -> int:
    """A harness's end: the summary as one JSON line, its problems, PASS or FAIL, the whole
    report to `--json PATH` when asked; the exit code (0 only when the run passed)."""
    print(json.dumps({k: v for k, v in report.items() if k != "details"}, ensure_ascii=False))
    for problem in report["details"]["problems"]:
        print(f"  {problem}")
    print("PASS" if ok else "FAIL")
    if json_path is not None:
        write_report(json_path, report)
    return 0 if ok else 1


def card_payment(
    terminal_id: str, amount: Decimal, transaction_id: str, signed: dict[str, Any]
) -> dict[str, Any]:
    """A card payment on `terminal_id`, carrying the provider's signature from the sign call
    (the till sends exactly this after the terminal charged the card)."""
    return {
        "method": 7,
        "amount": amount,
        "terminal_id": terminal_id,
        "transaction_id": transaction_id,
        "signature_id": signed["signature_id"],
    }
