"""The cash drawer pulse: ESC p m t1 t2 on the printer's drawer port (RJ-11).

m selects the connector pin (0 = pin 2, 1 = pin 5), t1/t2 the pulse's on and off times in units
of 2 ms. Built with python-escpos' `cashdraw` and its custom-sequence form, so the pulse timing
is the shop's (drawers differ: too short a pulse does not release the latch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from escpos.printer import Dummy

ESC = 27
P = 112
_PIN_SELECT = {2: 0, 5: 1}


@dataclass(frozen=True)
class DrawerPulse:
    pin: Literal[2, 5]
    on_ms: int = 100
    off_ms: int = 200

    def __post_init__(self) -> None:
        for name, value in (("on_ms", self.on_ms), ("off_ms", self.off_ms)):
            if not 2 <= value <= 510:
                raise ValueError(f"drawer {name} must be 2-510 ms, not {value}")

    def escpos(self) -> bytes:
        printer = Dummy()
        printer.cashdraw([ESC, P, _PIN_SELECT[self.pin], self.on_ms // 2, self.off_ms // 2])
        data: bytes = printer.output
        return data
