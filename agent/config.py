"""The agent's configuration: one TOML file read with `tomllib` into pydantic models.

Secrets are not configuration: the API key is read by `agent.secrets` from the systemd credential
directory or from a 0600 file whose *path* is configured here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.secrets import ApiKey, load_api_key
from printers.codepages import code_page
from printers.layout import SUPPORTED_WIDTHS


class ConfigError(Exception):
    """The config file is unreadable or a key is wrong; the message names the key."""


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
    footer: list[str] = Field(default_factory=list, description="provider footer lines")


class SeriesConfig(_Section):
    """One series per document type; numbers are gap-free within a series."""

    receipt: str = "ΑΛΠ"  # 11.1
    credit: str = "ΠΛΠ"  # 11.4
    pos_receipt: str = "ΑΕΠ"  # 8.4
    pos_return: str = "ΑΕΠΕ"  # 8.5


class TerminalConfig(_Section):
    nsp_code: str = "CommonWeb"
    food_service: bool = Field(False, description="sign with H_2 instead of H_24")
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


class ClockConfig(_Section):
    max_offset_s: float = Field(300.0, gt=0)


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
    retention: RetentionConfig = RetentionConfig()
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
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"config file {path}: {problems}") from exc
