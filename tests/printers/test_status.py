"""Printer status via DLE EOT, connections and their errors, code-page substitutions."""

from __future__ import annotations

from pathlib import Path

import pytest
from escpos.printer import Dummy

from printers.codepages import CODE_PAGES, code_page
from printers.connections import PrinterSettings, PrinterUnavailable, open_connection, write_raw
from printers.escpos_render import render_escpos
from printers.layout import build_layout
from printers.profile import PrinterProfile
from printers.samples import sample_cash_receipt
from printers.status import PrinterState, can_read_status, printer_status
from tests.printers.emulator import PrinterEmulator


class ScriptedPrinter(Dummy):
    """A Dummy that answers DLE EOT n from a table (python-escpos 3.1 Dummy cannot read)."""

    def __init__(self, answers: dict[int, bytes]) -> None:
        super().__init__()
        self.answers = answers
        self.last = 0

    def _raw(self, msg: bytes) -> None:
        if msg[:2] == b"\x10\x04":
            self.last = msg[2]
        super()._raw(msg)

    def _read(self) -> bytes:
        return self.answers.get(self.last, b"")


@pytest.mark.parametrize(
    ("answers", "state"),
    [
        ({1: b"\x12", 4: b"\x12"}, PrinterState.OK),
        ({1: b"\x12", 4: b"\x1e"}, PrinterState.PAPER_NEAR_END),
        ({1: b"\x12", 4: b"\x72"}, PrinterState.PAPER_OUT),
        ({1: b"\x1a", 2: b"\x32", 4: b"\x72"}, PrinterState.PAPER_OUT),
        ({1: b"\x1a", 2: b"\x16", 4: b"\x12"}, PrinterState.COVER_OPEN),
        ({1: b"\x1a", 2: b"\x12", 4: b"\x12"}, PrinterState.OFFLINE),
        ({}, PrinterState.UNKNOWN),
        ({1: b"\x12"}, PrinterState.UNKNOWN),
        ({1: b"\xff", 4: b"\x12"}, PrinterState.UNKNOWN),
    ],
)
def test_status_bytes_are_parsed_ourselves(answers: dict[int, bytes], state: PrinterState) -> None:
    assert printer_status(ScriptedPrinter(answers)) is state


def test_write_only_transports_are_unknown_never_ok(tmp_path: Path) -> None:
    assert not can_read_status(Dummy())
    assert printer_status(Dummy()) is PrinterState.UNKNOWN
    file_printer = open_connection(PrinterSettings(backend="file", path=tmp_path / "lp0"))
    assert printer_status(file_printer) is PrinterState.UNKNOWN


def test_only_blocking_states_hold_the_job() -> None:
    blocking = {state for state in PrinterState if state.blocks_printing}
    assert blocking == {PrinterState.PAPER_OUT, PrinterState.COVER_OPEN, PrinterState.OFFLINE}


def test_network_status_through_the_emulator() -> None:
    with PrinterEmulator() as emulator:
        settings = PrinterSettings(
            backend="network", host=emulator.host, port=emulator.port, timeout_s=2
        )
        printer = open_connection(settings)
        assert printer_status(printer) is PrinterState.OK
        emulator.paper_near_end = True
        assert printer_status(printer) is PrinterState.PAPER_NEAR_END
        emulator.cover_open = True
        assert printer_status(printer) is PrinterState.COVER_OPEN
        printer.close()


def test_silent_network_printer_is_unknown() -> None:
    with PrinterEmulator() as emulator:
        emulator.silent = True
        settings = PrinterSettings(
            backend="network", host=emulator.host, port=emulator.port, timeout_s=0.2
        )
        printer = open_connection(settings)
        assert printer_status(printer) is PrinterState.UNKNOWN
        printer.close()


def test_file_backend_receives_the_rendered_job(tmp_path: Path) -> None:
    device = tmp_path / "lp0"
    printer = open_connection(PrinterSettings(backend="file", path=device))
    job = render_escpos(build_layout(sample_cash_receipt(), 48), PrinterProfile("iso8859_7"))
    write_raw(printer, job)
    printer.close()
    assert device.read_bytes() == job


def test_errors_become_printer_unavailable(tmp_path: Path) -> None:
    with pytest.raises(PrinterUnavailable, match="file"):
        open_connection(PrinterSettings(backend="file", path=tmp_path / "no" / "lp0"))
    with pytest.raises(PrinterUnavailable, match="usb"):
        open_connection(PrinterSettings(backend="usb", usb_vendor_id=0x0001, usb_product_id=0x0001))

    class Closed(Dummy):
        def _raw(self, msg: bytes) -> None:
            raise TimeoutError("timed out")

    with pytest.raises(PrinterUnavailable, match="timed out"):
        write_raw(Closed(), b"x")


def test_settings_require_their_transport_fields() -> None:
    with pytest.raises(ValueError, match="host"):
        PrinterSettings(backend="network")
    with pytest.raises(ValueError, match="usb_vendor_id"):
        PrinterSettings(backend="usb")
    with pytest.raises(ValueError, match="code page"):
        PrinterProfile("cp851")


def test_code_page_tables_and_substitutions() -> None:
    assert {name: page.escpos_table for name, page in CODE_PAGES.items()} == {
        "cp1253": 47,
        "iso8859_7": 15,
        "cp737": 14,
    }
    cp737 = code_page("cp737")
    assert cp737.prepare("ΐ ΰ € «x»") == 'ϊ ϋ EUR "x"'
    assert cp737.decode(cp737.encode("Ψάρι 12,40 €")) == "Ψάρι 12,40 EUR"
    assert code_page("iso8859_7").prepare("Παρόχου – ΑΑΔΕ") == "Παρόχου - ΑΑΔΕ"
    assert code_page("cp1253").prepare("Παρόχου – ΑΑΔΕ €") == "Παρόχου – ΑΑΔΕ €"
    assert code_page("cp1253").unencodable("漢") == {"漢"}
