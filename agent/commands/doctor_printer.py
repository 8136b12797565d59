"""The printer's checks of `pos-agent doctor`: the code page, the device or file, its status,
and with `--print-test` a test slip (never a fiscal document)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from agent.commands.checks import Check, fail, ok, warn, whoami
from agent.config import AgentConfig

if TYPE_CHECKING:  # python-escpos is imported only by the printer checks that need it
    from printers.blocks import Layout
    from printers.connections import PrinterSettings
    from printers.status import PrinterState

TEST_SLIP_TEXT = "ΔΟΚΙΜΗ ΕΚΤΥΠΩΤΗ — ΑΒΓΔ αβγδ €"
_STATUS_BACKENDS = ("usb", "network", "serial")


def print_test_layout(width: int) -> Layout:
    """The `--print-test` slip: Greek in bold, then a line saying it is not a fiscal document."""
    from printers.blocks import Align, Block, Cut, Feed, Layout, Separator, Style, TextLine
    from printers.wrap import wrap_text

    center = Style(align=Align.CENTER)
    bold_center = Style(bold=True, align=Align.CENTER)
    blocks: list[Block] = [TextLine(line, bold_center) for line in wrap_text(TEST_SLIP_TEXT, width)]
    blocks += [
        Separator("-"),
        TextLine("pos-agent doctor --print-test"[:width], center),
        TextLine("ΔΕΝ ΕΙΝΑΙ ΦΟΡΟΛΟΓΙΚΟ ΣΤΟΙΧΕΙΟ"[:width], center),
        Feed(3),
        Cut(),
    ]
    return Layout(width=width, blocks=tuple(blocks))


def check_printer(config: AgentConfig, *, print_test: bool) -> list[Check]:
    from agent.core.printer_settings import printer_settings

    printer = config.printer
    if not printer.enabled:
        return [ok("printer", "disabled in the config (receipts are not printed)")]
    checks = [_check_code_page(printer.profile)]
    try:
        settings = printer_settings(printer)
    except ValueError as exc:
        return [*checks, fail("printer", str(exc), "complete the [printer] section")]
    if printer.backend == "dummy":
        checks.append(
            warn(
                "printer",
                "dummy backend: nothing is printed",
                "set printer.backend for the real printer",
            )
        )
    elif printer.backend == "file":
        assert printer.path is not None
        checks.append(_check_printer_file(printer.path))
    if printer.backend in _STATUS_BACKENDS or print_test:
        checks.extend(_check_device(config, settings, print_test=print_test))
    return checks


def _check_code_page(profile: str) -> Check:
    from printers.codepages import code_page

    page = code_page(profile)
    missing = page.unencodable(TEST_SLIP_TEXT)
    if missing:
        return fail(
            "code page",
            f"{profile}: cannot print {''.join(sorted(missing))}",
            "choose printer.profile cp1253, iso8859_7 or cp737",
        )
    euro = page.prepare("€")
    return ok(
        "code page", f"{profile} (ESC t {page.escpos_table}): Greek encodes; € prints as {euro!r}"
    )


def _check_printer_file(path: Path) -> Check:
    """A device node or file: all we can tell without printing is whether we may write it."""
    exists = path.exists()
    writable = os.access(path, os.W_OK) if exists else os.access(path.parent, os.W_OK | os.X_OK)
    kind = "device" if exists and stat.S_ISCHR(path.stat().st_mode) else "file"
    if writable:
        return ok("printer", f"{kind} {path} writable; status cannot be read on a file transport")
    return warn(
        "printer",
        f"{kind} {path} not writable by {whoami()}",
        "the service user needs it (group lp, see 60-pos-agent-printers.rules); "
        "run doctor as that user to be sure",
    )


def _check_device(
    config: AgentConfig, settings: PrinterSettings, *, print_test: bool
) -> list[Check]:
    """Open the printer, read its status where the transport answers, print the slip if asked."""
    from printers.connections import (
        PrinterUnavailable,
        close_connection,
        open_connection,
        write_raw,
    )
    from printers.escpos_render import render_escpos
    from printers.status import printer_status

    target = _printer_target(config)
    try:
        device = open_connection(settings)
    except PrinterUnavailable as exc:
        return [
            fail(
                "printer",
                f"{target}: cannot open: {exc.reason}",
                "check power, cable and [printer] settings; for USB the udev rule and group lp",
            )
        ]
    checks: list[Check] = []
    try:
        if config.printer.backend in _STATUS_BACKENDS:
            checks.append(_check_status(target, printer_status(device)))
        if print_test:
            layout = print_test_layout(config.printer.width_chars)
            write_raw(device, render_escpos(layout, settings.profile))
            checks.append(
                ok(
                    "test slip",
                    f"sent to {target}: check that it reads «{TEST_SLIP_TEXT}» "
                    "(€ may be EUR on cp737)",
                )
            )
    except PrinterUnavailable as exc:
        checks.append(fail("test slip", f"{target}: {exc.reason}", "check the printer"))
    finally:
        close_connection(device)
    return checks


def _check_status(target: str, state: PrinterState) -> Check:
    from printers.status import PrinterState

    if state is PrinterState.OK:
        return ok("printer", f"{target}: status ok")
    if state is PrinterState.UNKNOWN:
        return warn(
            "printer",
            f"{target}: opened, but the printer did not answer DLE EOT status",
            "fine for printers without status; otherwise check the cable",
        )
    if state is PrinterState.PAPER_NEAR_END:
        return warn("printer", f"{target}: paper near end", "load a new roll soon")
    return fail(
        "printer",
        f"{target}: {state.value.replace('_', ' ')}",
        "close the cover / load paper / switch the printer on",
    )


def _printer_target(config: AgentConfig) -> str:
    p = config.printer
    if p.backend == "network":
        return f"network {p.host}:{p.port}"
    if p.backend == "usb":
        return f"usb {p.usb_vendor_id or 0:04x}:{p.usb_product_id or 0:04x}"
    if p.backend == "serial":
        return f"serial {p.serial_device}"
    if p.backend == "file":
        return f"file {p.path}"
    return "dummy"
