"""Start the printer worker for the daemon: map our config onto the printers package's settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.services import Services


class NoPrinter:
    """Printing disabled in config: nothing is queued (see `issuing._wants_print`)."""

    def stop(self) -> None:
        return None


def start_printing(services: Services) -> NoPrinter:
    return NoPrinter()
