"""Real-time printer status through DLE EOT, read only where the transport can answer.

We send DLE EOT n and parse the byte ourselves instead of `paper_status()`, which reports
"plenty of paper" when nothing came back (python-escpos 3.1). No answer, a malformed answer or a
write-only transport (file, dummy) is `UNKNOWN`, never `OK`.
"""

from __future__ import annotations

from enum import StrEnum

from escpos.escpos import Escpos
from escpos.exceptions import Error as EscposError
from usb.core import USBTimeoutError

DLE_EOT = b"\x10\x04"
PRINTER_STATUS, OFFLINE_CAUSE, PAPER_SENSOR = 1, 2, 4
_FIXED_MASK, _FIXED_BITS = 0x93, 0x12
_OFFLINE = 0x08
_COVER_OPEN = 0x04
_STOPPED_PAPER_END = 0x20
_PAPER_END = 0x60
_PAPER_NEAR_END = 0x0C


class PrinterState(StrEnum):
    OK = "ok"
    PAPER_NEAR_END = "paper_near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"
    UNKNOWN = "unknown"

    @property
    def blocks_printing(self) -> bool:
        """States in which sending a job would lose or stall it; near-end still prints."""
        return self in (PrinterState.PAPER_OUT, PrinterState.COVER_OPEN, PrinterState.OFFLINE)


def can_read_status(printer: Escpos) -> bool:
    """python-escpos 3.1 has `_read` only for USB, network and serial."""
    return type(printer)._read is not Escpos._read


def printer_status(printer: Escpos) -> PrinterState:
    if not can_read_status(printer):
        return PrinterState.UNKNOWN
    try:
        status = _query(printer, PRINTER_STATUS)
        if status is None:
            return PrinterState.UNKNOWN
        paper = _query(printer, PAPER_SENSOR)
        if status & _OFFLINE:
            return _offline_cause(_query(printer, OFFLINE_CAUSE), paper)
    except (TimeoutError, USBTimeoutError):
        return PrinterState.UNKNOWN
    except (EscposError, OSError):
        return PrinterState.OFFLINE
    if paper is None:
        return PrinterState.UNKNOWN
    if paper & _PAPER_END == _PAPER_END:
        return PrinterState.PAPER_OUT
    if paper & _PAPER_NEAR_END == _PAPER_NEAR_END:
        return PrinterState.PAPER_NEAR_END
    return PrinterState.OK


def _offline_cause(cause: int | None, paper: int | None) -> PrinterState:
    if cause is not None and cause & _COVER_OPEN:
        return PrinterState.COVER_OPEN
    paper_end = paper is not None and paper & _PAPER_END == _PAPER_END
    if paper_end or (cause is not None and cause & _STOPPED_PAPER_END):
        return PrinterState.PAPER_OUT
    return PrinterState.OFFLINE


def _query(printer: Escpos, function: int) -> int | None:
    """One status byte, or None when the answer is empty or not a DLE EOT status byte."""
    answer = printer.query_status(DLE_EOT + bytes((function,)))
    if not answer:
        return None
    byte = int(answer[-1])
    return byte if byte & _FIXED_MASK == _FIXED_BITS else None
