"""Start the printer worker for the daemon: map our config onto the printers package's settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.config import PrinterConfig
from agent.daemon.print_spool import PrintSpool
from printers.connections import PrinterSettings
from printers.profile import PrinterProfile

if TYPE_CHECKING:
    from agent.core.services import Services


class NoPrinter:
    """`printer.enabled = false`: nothing is queued (see `issuing._wants_print`)."""

    def stop(self) -> None:
        return None


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
    )


def start_printing(services: Services) -> PrintSpool | NoPrinter:
    rt = services.runtime
    if not rt.config.printer.enabled:
        return NoPrinter()
    spool = PrintSpool(
        rt.config.database_path,
        printer_settings(rt.config.printer),
        clock=rt.clock,
        preview_dir=rt.config.printer.preview_dir,
    )
    spool.start()
    rt.wake_printer.append(spool.notify)
    services.printer_state = lambda: spool.last_state.value
    return spool
