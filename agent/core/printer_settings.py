"""Our printer config mapped onto the printers package's own settings type.

Used by the daemon's print spool and by doctor's printer checks; `printers` never imports
`agent`, so the mapping lives on this side.
"""

from __future__ import annotations

from agent.config import PrinterConfig
from printers.connections import PrinterSettings
from printers.drawer import DrawerPulse
from printers.profile import PrinterProfile


def printer_settings(config: PrinterConfig) -> PrinterSettings:
    return PrinterSettings(
        backend=config.backend,
        host=config.host,
        port=config.port,
        usb_vendor_id=config.usb_vendor_id,
        usb_product_id=config.usb_product_id,
        serial_device=config.serial_device,
        baudrate=config.baudrate,
        path=config.path,
        timeout_s=config.timeout_s,
        width=config.width_chars,
        profile=PrinterProfile(codepage=config.profile, native_qr=config.native_qr),
        drawer=drawer_pulse(config),
    )


def drawer_pulse(config: PrinterConfig) -> DrawerPulse | None:
    """`printer.cash_drawer` "pin2"/"pin5" with the configured pulse; None for "none"."""
    match config.cash_drawer:
        case "pin2":
            return DrawerPulse(2, config.drawer_pulse_on_ms, config.drawer_pulse_off_ms)
        case "pin5":
            return DrawerPulse(5, config.drawer_pulse_on_ms, config.drawer_pulse_off_ms)
        case _:
            return None
