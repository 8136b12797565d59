"""Open a python-escpos printer for our own settings, and write to it with our own errors.

`PrinterSettings` is printers' own type: the agent maps its config onto it, so this package never
imports `agent`. Every python-escpos, pyusb, pyserial or socket failure surfaces as
`PrinterUnavailable(reason)`, which the spool treats as "try again later".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from escpos.escpos import Escpos
from escpos.exceptions import Error as EscposError
from escpos.printer import Dummy, File, Network, Serial, Usb

from printers.drawer import DrawerPulse
from printers.profile import PrinterProfile

Backend = Literal["usb", "network", "serial", "file", "dummy"]


class PrinterUnavailable(Exception):
    """The printer cannot be opened or written to now; `reason` is short and loggable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PrinterSettings:
    """Transport plus profile. `timeout_s` bounds every write: the USB default of 0 would let a
    printer with its cover open block the worker forever (docs/provider.md §12)."""

    backend: Backend = "dummy"
    host: str | None = None
    port: int = 9100
    usb_vendor_id: int | None = None
    usb_product_id: int | None = None
    serial_device: str | None = None
    baudrate: int = 19200
    path: Path | None = None
    timeout_s: float = 5.0
    width: int = 48
    profile: PrinterProfile = field(default_factory=PrinterProfile)
    drawer: DrawerPulse | None = None

    def __post_init__(self) -> None:
        required = {
            "usb": ("usb_vendor_id", "usb_product_id"),
            "network": ("host",),
            "serial": ("serial_device",),
            "file": ("path",),
            "dummy": (),
        }
        if self.backend not in required:
            raise ValueError(f"unknown printer backend {self.backend!r}")
        missing = [name for name in required[self.backend] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"printer backend {self.backend} needs {', '.join(missing)}")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


def open_connection(settings: PrinterSettings) -> Escpos:
    """A connected printer; nothing is written yet (the renderer sends ESC @ itself).

    ValueError is caught too: pyusb raises `NoBackendError(ValueError)` when libusb is missing.
    """
    try:
        printer = _create(settings)
        printer.open()
    except (EscposError, OSError, ValueError) as error:
        raise PrinterUnavailable(f"{settings.backend}: {_first_line(error)}") from error
    return printer


def write_raw(printer: Escpos, data: bytes) -> None:
    """Send one rendered job; transport errors and timeouts become PrinterUnavailable."""
    try:
        printer._raw(data)
    except (EscposError, OSError) as error:
        raise PrinterUnavailable(f"write failed: {_first_line(error)}") from error


def close_connection(printer: Escpos) -> None:
    """Close and forget; a failing close must not hide the outcome of the job."""
    try:
        printer.close()
    except (EscposError, OSError):
        return


def _create(settings: PrinterSettings) -> Escpos:
    if settings.backend == "usb":
        return Usb(
            settings.usb_vendor_id,
            settings.usb_product_id,
            timeout=int(settings.timeout_s * 1000),
        )
    if settings.backend == "network":
        return Network(settings.host or "", settings.port, timeout=settings.timeout_s)
    if settings.backend == "serial":
        return Serial(settings.serial_device, settings.baudrate, timeout=settings.timeout_s)
    if settings.backend == "file":
        return File(str(settings.path))
    return Dummy()


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())[:200]
