"""The agent's configuration: one TOML file read with `tomllib` into pydantic models.

Secrets are not configuration: the API key is read by `agent.secrets` from the systemd credential
directory or from a 0600 file whose *path* is configured here.
"""

from __future__ import annotations

import re
import tomllib
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.secrets import ApiKey, load_api_key
from printers.codepages import code_page
from printers.layout import SUPPORTED_WIDTHS


class ConfigError(Exception):
    """The config file is unreadable or a key is wrong; the message names the key."""


class ConfigUnreadable(ConfigError):
    """The config file exists but this user may not read it (it is 0640 root:pos-agent on a
    register). The technician's commands then fall back to what needs no config: the daemon's
    socket at its default path."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Address(_Section):
    street: str = ""
    number: str = ""
    city: str = ""
    postal: str = ""
    country_code: str = "GR"


class IssuerConfig(_Section):
    vat: str = Field(description="ΑΦΜ of the shop, with or without the EL prefix")
    name: str
    brand: str = ""
    tax_office: str = ""
    activity: str = ""
    branch: int = Field(0, ge=0, description="AADE branch number, 0 = head office")
    address: Address = Address()
    phone: str = ""


WEB_ADDRESS = re.compile(r"^(https?://)?([a-z0-9-]+\.)+[a-z]{2,}(/\S*)?$", re.IGNORECASE)


def _placeholder(value: str) -> bool:
    """The example config ships `<...>` placeholders that must be replaced before go-live."""
    return not value.strip() or (value.strip().startswith("<") and value.strip().endswith(">"))


class ProviderFooter(_Section):
    """The provider footer Α.1112/2025 art. 7 par. 5 wants at the bottom of every receipt
    (docs/provider.md §11 item 10): the provider's legal name, web address and licence number,
    each on its own line. Printed as given; `problems()` is what doctor and status report."""

    legal_name: str = Field("", description="the provider's legal name")
    web_address: str = Field("", description="the provider's web address")
    licence: str = Field("", description="the provider's licence number (Α.1112/2025)")

    def lines(self) -> tuple[str, ...]:
        return tuple(
            line for line in (self.legal_name, self.web_address, self.licence) if line.strip()
        )

    def problems(self) -> list[str]:
        """What a printed receipt would lack, one text per missing item, naming the key."""
        found = []
        for key, what in (
            ("legal_name", "the provider's legal name"),
            ("web_address", "the provider's web address"),
            ("licence", "the provider's licence number"),
        ):
            if _placeholder(getattr(self, key)):
                found.append(f"provider.footer.{key} is not set ({what})")
        web = self.web_address.strip()
        if not _placeholder(web) and not WEB_ADDRESS.match(web):
            found.append(f"provider.footer.web_address {web!r} is not a web address")
        return found


class ProviderConfig(_Section):
    base_url: str = Field(description="Elise REST API base, e.g. https://einvoice-demo.s1ecos.gr")
    portal_url: str = Field(description="Elise portal, used for the offline QR")
    auth: Literal["apikey", "bearer"] = "apikey"
    api_key_file: Path | None = None
    connect_timeout_s: float = Field(2.0, gt=0)
    read_timeout_s: float = Field(3.0, gt=0)
    total_timeout_s: float = Field(4.0, gt=0, description="upper bound the till ever waits")
    iapr_sign_policy: int = Field(2, ge=0, le=2)
    provider_id: str = Field("", description="AADE provider id handed to card terminals")
    footer: ProviderFooter = ProviderFooter()

    @field_validator("footer", mode="before")
    @classmethod
    def _footer_lines(cls, value: Any) -> Any:
        """The older form, a list of lines, is read in the printed order: legal name, web
        address, licence. Whatever it lacks is then reported by doctor and status, rather
        than the daemon refusing to start over a footer."""
        if isinstance(value, list):
            names = ("legal_name", "web_address", "licence")
            if len(value) > len(names):
                raise ValueError("at most 3 lines: legal name, web address, licence number")
            return dict(zip(names, value, strict=False))
        return value


class SeriesConfig(_Section):
    """One series per document type; numbers are gap-free within a series."""

    receipt: str = "ΑΛΠ"  # 11.1
    credit: str = "ΠΛΠ"  # 11.4
    pos_receipt: str = "ΑΕΠ"  # 8.4
    pos_return: str = "ΑΕΠΕ"  # 8.5
    order: str = "ΔΠΕ"  # 8.6 order slips (Δελτίο Παραγγελίας Εστίασης)


class TerminalConfig(_Section):
    nsp_code: str = "CommonWeb"
    food_service: bool = Field(
        False,
        description="sign with H_2 instead of H_24 (food service)",
    )
    reservation_timeout_s: int = Field(
        900, gt=0, description="after this a card reservation with no receipt may be reused"
    )


class PricingConfig(_Section):
    prices_include_vat: bool = True


class ApiConfig(_Section):
    socket_path: Path = Path("/run/pos-agent/agent.sock")
    socket_mode: int = 0o660
    socket_group: str | None = "pos"
    tcp_port: int | None = Field(None, ge=1, le=65535)
    tcp_token_file: Path | None = None
    max_body_bytes: int = Field(1_000_000, gt=0)
    # Local clients that hold connections open without a request must not lock the till out
    # (agent/api/peer_protocol.py): beyond the cap the longest-idle connection is closed, and
    # a connection that sends no request headers within the timeout is closed.
    max_connections: int = Field(256, ge=4)
    header_timeout_s: float = Field(10.0, gt=0)

    @field_validator("socket_group")
    @classmethod
    def _no_group(cls, value: str | None) -> str | None:
        """TOML has no null: an empty string means "keep the daemon's own group"."""
        return value or None

    @field_validator("socket_mode")
    @classmethod
    def _socket_closed_to_others(cls, value: int) -> int:
        """The socket's mode is the API's authentication: `660` (decimal, = 0o1224) or 0o666
        would open it to every local user."""
        if not 0 <= value <= 0o777:
            raise ValueError(f"{value} is not a file mode; write it in octal, e.g. 0o660")
        if value & 0o007:
            raise ValueError(f"{value:#o} lets others use the socket; use 0o660 (group pos)")
        return value


class SyncConfig(_Section):
    interval_s: float = Field(30.0, gt=0)
    jitter_s: float = Field(5.0, ge=0)
    concurrency: int = Field(4, ge=1, le=64)
    backoff_base_s: float = Field(5.0, gt=0)
    backoff_max_s: float = Field(600.0, gt=0)
    probe_interval_s: float = Field(10.0, gt=0)
    deadline_warning_hours: float = Field(12.0, gt=0)
    deadline_critical_hours: float = Field(4.0, gt=0)


class PrinterConfig(_Section):
    enabled: bool = True
    backend: Literal["usb", "network", "serial", "file", "dummy"] = "file"
    path: Path | None = Field(None, description="file/device node for the file backend")
    host: str | None = None
    port: int = 9100
    usb_vendor_id: int | None = None
    usb_product_id: int | None = None
    serial_device: str | None = None
    baudrate: int = 19200
    profile: str = Field("cp1253", description="Greek code page profile: cp1253, iso8859_7, cp737")
    native_qr: bool = True
    width_chars: int = Field(48, description="48 for 80 mm, 32 or 42 for 58 mm")
    timeout_s: float = Field(5.0, gt=0)
    preview_dir: Path | None = Field(None, description="also write a PNG preview of every print")
    kitchen_copy: bool = Field(
        False, description="print a second copy of every order slip without prices"
    )
    cash_drawer: Literal["none", "pin2", "pin5"] = Field(
        "none", description="the drawer's connector pin on the printer (ESC p m)"
    )
    drawer_pulse_on_ms: int = Field(100, ge=2, le=510, description="drawer pulse, on time")
    drawer_pulse_off_ms: int = Field(200, ge=2, le=510, description="drawer pulse, off time")
    drawer_on_cash: bool = Field(True, description="open the drawer on every cash receipt")

    @field_validator("profile")
    @classmethod
    def _known_code_page(cls, value: str) -> str:
        """Refused here, not by the printer worker at start or by doctor with a traceback."""
        code_page(value)
        return value

    @field_validator("width_chars")
    @classmethod
    def _supported_width(cls, value: int) -> int:
        """Any other width would make every print job fail as unprintable."""
        if value not in SUPPORTED_WIDTHS:
            raise ValueError(f"{value} is not one of {', '.join(map(str, SUPPORTED_WIDTHS))}")
        return value


class TablesConfig(_Section):
    """Food service: order slips (8.6) must become a receipt within the legal limit."""

    open_order_limit_hours: float = Field(24.0, gt=0, description="legal limit for an open 8.6")
    open_order_warning_hours: float = Field(
        4.0, ge=0, description="status warns this long before the limit"
    )


class ClosingConfig(_Section):
    """The daily closing (Z) and the reconciliation with the provider's list that follows it."""

    due_hour: int | None = Field(
        None,
        ge=0,
        le=23,
        description="status warns when a day's receipts are in no closing by this Athens hour of "
        "the next day (unset: no such warning)",
    )
    reconcile_after: bool = Field(
        True, description="after each closing, match the day with the provider's list"
    )
    open_orders_check_s: float = Field(
        3600.0,
        ge=0,
        description="on a food-service register (terminal.food_service), read the provider's "
        "open order slips (8.6) this often and match them with the open tables (0: only with "
        "a reconciliation)",
    )
    auto_at: str | None = Field(
        None,
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="close the day (Z) by itself at this Athens time, HH:MM, when anything was "
        "issued since the last closing (unset: only when asked)",
    )

    def auto_time(self) -> time | None:
        if self.auto_at is None:
            return None
        hours, minutes = self.auto_at.split(":")
        return time(int(hours), int(minutes))


class ClockConfig(_Section):
    max_offset_s: float = Field(300.0, gt=0)


class MetricsConfig(_Section):
    """The metrics-only listener for a central Prometheus (off unless `listen` is set)."""

    listen: str | None = Field(
        None, description='"ADDR:PORT" (IPv6 as "[::1]:9870"); serves GET /metrics only'
    )
    web_config_file: Path | None = Field(
        None, description="Prometheus exporter-toolkit web config: TLS and basic auth"
    )
    register_name: str = Field(
        "", description="the register's name in every series' `register` label; default: hostname"
    )

    @field_validator("listen")
    @classmethod
    def _address_and_port(cls, value: str | None) -> str | None:
        """Checked here so a typo is refused with the key's name, not at bind time."""
        if not value:
            return None
        listen_address(value)
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        return listen_address(self.listen) if self.listen else None


def listen_address(value: str) -> tuple[str, int]:
    """`"192.168.1.20:9870"`, `"0.0.0.0:9870"` or `"[::]:9870"` -> (host, port)."""
    host, colon, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f'{value!r} is not ADDR:PORT (e.g. "192.168.1.20:9870", "[::]:9870")')
    if "[" in host or "]" in host:
        raise ValueError(f'{value!r}: write an IPv6 address in brackets, e.g. "[::]:9870"')
    return host, int(port)


class RetentionConfig(_Section):
    live_days: int = Field(
        62,
        ge=31,
        description="accepted, printed receipts older than this (whole months) move to the "
        "monthly archive; at least 31 so the current and the previous month stay live",
    )
    archive_hour: int = Field(
        3, ge=0, le=23, description="Athens hour in which the daemon archives (a quiet hour)"
    )
    maintenance_interval_s: float = Field(
        60.0, gt=0, description="how often the background checks, packing and archiving run"
    )


class UpdatesConfig(_Section):
    """Fleet updates from the chain's APT repository (`pos-agent update`, run by
    pos-agent-update.timer once it is enabled)."""

    channel: Literal["stable", "canary"] = Field(
        "stable",
        description="the repository suite this register follows: canary registers take a "
        "version first, stable ones once the chain promotes it",
    )
    window: str = Field(
        "03:00-05:00",
        description="Athens time HH:MM-HH:MM in which a new version may be installed "
        "(may cross midnight, e.g. 23:30-01:00)",
    )
    sources_file: Path = Path("/etc/apt/sources.list.d/pos-agent.sources")
    in_flight_wait_s: float = Field(
        60.0, ge=0, description="how long to wait for sales in flight before trying next run"
    )

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        window_times(value)
        return value

    @property
    def window_times(self) -> tuple[time, time]:
        return window_times(self.window)


def window_times(value: str) -> tuple[time, time]:
    """`"03:00-05:00"` -> (03:00, 05:00); the two ends must differ."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError:
        raise ValueError(f'{value!r} is not HH:MM-HH:MM (e.g. "03:00-05:00")') from None
    if start == end:
        raise ValueError(f"{value!r}: a window needs two different times")
    return start, end


class AgentConfig(_Section):
    state_dir: Path = Path("/var/lib/pos-agent")
    issuer: IssuerConfig
    provider: ProviderConfig
    series: SeriesConfig = SeriesConfig()
    terminal: TerminalConfig = TerminalConfig()
    pricing: PricingConfig = PricingConfig()
    api: ApiConfig = ApiConfig()
    sync: SyncConfig = SyncConfig()
    printer: PrinterConfig = PrinterConfig()
    clock: ClockConfig = ClockConfig()
    metrics: MetricsConfig = MetricsConfig()
    tables: TablesConfig = TablesConfig()
    closing: ClosingConfig = ClosingConfig()
    retention: RetentionConfig = RetentionConfig()
    updates: UpdatesConfig = UpdatesConfig()
    default_delivery_print: bool = True

    @field_validator("state_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def database_path(self) -> Path:
        return self.state_dir / "pos-agent.sqlite3"

    @property
    def archive_dir(self) -> Path:
        """The monthly archive files (offline_store/archive.py), beside the database."""
        return self.state_dir / "archive"

    def api_key(self) -> ApiKey:
        return load_api_key(self.provider.api_key_file)


def load_config(path: Path) -> AgentConfig:
    """Parse and validate; every error names the TOML key (`printer.port: ...`)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except PermissionError as exc:
        raise ConfigUnreadable(
            f"config file {path} is not readable by this user; run as root (sudo)"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"config file {path}: {problems}") from exc
