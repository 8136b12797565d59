"""The daemon's printer: the print spool's worker thread, or nothing when printing is off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import offline_store as store
from agent.clock import Clock
from agent.config import AgentConfig
from agent.core.day_slip import closing_layout
from agent.core.printer_settings import printer_settings
from agent.daemon.print_spool import PrintSpool


class Printer(Protocol):
    def start(self) -> None: ...

    def notify(self) -> None: ...

    def print_slip(self, report_json: str) -> None: ...

    def stop(self) -> None: ...

    def state(self) -> str: ...


class NoPrinter:
    """`printer.enabled = false`: nothing is queued (see `issuing._wants_print`)."""

    def start(self) -> None:
        return None

    def notify(self) -> None:
        return None

    def print_slip(self, report_json: str) -> None:
        return None

    def stop(self) -> None:
        return None

    def state(self) -> str:
        return "unknown"


def open_printer(
    config: AgentConfig,
    clock: Clock,
    on_storage_fault: Callable[[store.StorageFault, str], None] | None = None,
) -> Printer:
    """Not started yet: the daemon starts it in its start order, after wiring it in.
    `on_storage_fault`: where the spool reports writes the storage refused."""
    if not config.printer.enabled:
        return NoPrinter()
    return PrintSpool(
        config.database_path,
        printer_settings(config.printer),
        clock=clock,
        preview_dir=config.printer.preview_dir,
        on_storage_fault=on_storage_fault,
        closing_layout=lambda report, width: closing_layout(
            report, config.issuer.brand or config.issuer.name, width
        ),
        issuer=config.issuer.brand or config.issuer.name,
    )
