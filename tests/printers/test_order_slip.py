"""Order slips (8.6) and kitchen copies: golden bytes per code page, decoded back with the notice,
table and waiter; the kitchen copy carries no prices; the cash drawer pulse bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from printers.drawer import DrawerPulse
from printers.escpos_render import render_escpos
from printers.layout import KITCHEN_BANNER, ORDER_NOTICE, build_layout
from printers.order_samples import (
    sample_cancel_slip,
    sample_kitchen_copy,
    sample_offline_order_slip,
    sample_order_slip,
    write_order_previews,
)
from printers.profile import PrinterProfile
from printers.receipt import OrderSlip, PrintableReceipt, ReceiptFormatError
from tests.printers.test_escpos import GOLDEN, UPDATE, decode_escpos

SLIPS: dict[str, Callable[[], PrintableReceipt]] = {
    "order": sample_order_slip,
    "order_offline": sample_offline_order_slip,
    "order_kitchen": sample_kitchen_copy,
    "order_cancel": sample_cancel_slip,
}
CODE_PAGES = ("cp1253", "cp737")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "receipts"


def _render(receipt: PrintableReceipt, codepage: str, width: int = 48) -> bytes:
    return render_escpos(build_layout(receipt, width), PrinterProfile(codepage))


def _joined(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("codepage", CODE_PAGES)
@pytest.mark.parametrize("name", sorted(SLIPS))
def test_golden_bytes(name: str, codepage: str) -> None:
    path = GOLDEN / f"print_{name}_{codepage}.bin"
    output = _render(SLIPS[name](), codepage)
    if UPDATE:
        path.write_bytes(output)
    assert output == path.read_bytes(), f"{path.name} changed; UPDATE_GOLDEN=1 after review"


@pytest.mark.parametrize("codepage", CODE_PAGES)
@pytest.mark.parametrize("name", sorted(SLIPS))
def test_slips_decode_back_with_notice_table_and_waiter(name: str, codepage: str) -> None:
    receipt = SLIPS[name]()
    decoded = decode_escpos((GOLDEN / f"print_{name}_{codepage}.bin").read_bytes())
    text = _joined(decoded.text)
    prepare = PrinterProfile(codepage).code_page.prepare
    assert _joined(prepare(ORDER_NOTICE)) in text
    assert "ΤΡΑΠΕΖΙ: 12" in text and "Σερβιτόρος: Μαρία" in text
    assert decoded.cuts == 1
    kitchen = receipt.order is not None and receipt.order.kitchen
    if kitchen:
        assert KITCHEN_BANNER in text and "ΔΕΛΤΙΟ ΠΑΡΑΓΓΕΛΙΑΣ" not in text
        assert "2 x Φρέντο εσπρέσο μέτριο" in text
        assert "3,50" not in text and "ΣΥΝΟΛΟ" not in text and "ΜΑΡΚ" not in text
        assert decoded.qr_payloads == []
        return
    assert "ΔΕΛΤΙΟ ΠΑΡΑΓΓΕΛΙΑΣ ΕΣΤΙΑΣΗΣ" in text
    if receipt.delayed_code:
        assert prepare("Απώλεια Διασύνδεσης Οντότητας - Παρόχου") in text
        assert decoded.qr_payloads == [receipt.offline_qr_url]
    else:
        assert f"ΜΑΡΚ: {receipt.mark}" in text and receipt.uid in text
        assert decoded.qr_payloads == [receipt.qr_url]
    if name == "order_cancel":
        assert "ΑΚΥΡΩΣΗ ΠΑΡΑΓΓΕΛΙΑΣ" in text and "400001961636061" in text


def test_no_line_of_a_slip_exceeds_the_width() -> None:
    for factory in SLIPS.values():
        for width in (32, 42, 48):
            decoded = decode_escpos(_render(factory(), "cp1253", width))
            assert max(len(line) for line in decoded.text.splitlines()) <= width


def test_order_slip_round_trips_through_the_spool_json() -> None:
    for factory in SLIPS.values():
        receipt = factory()
        assert PrintableReceipt.from_json(receipt.to_json()) == receipt


def test_only_an_8_6_carries_a_table() -> None:
    slip = sample_order_slip()
    with pytest.raises(ReceiptFormatError, match="order slip"):
        replace(slip, order=None)
    with pytest.raises(ReceiptFormatError, match="order slip"):
        replace(slip, type_code="11.1")
    with pytest.raises(ReceiptFormatError, match="order kind"):
        OrderSlip(table="1", waiter="x", kind="refund")


@pytest.mark.parametrize(
    ("pin", "on_ms", "off_ms", "expected"),
    [
        (2, 100, 200, b"\x1bp\x00\x32\x64"),
        (5, 100, 200, b"\x1bp\x01\x32\x64"),
        (2, 50, 500, b"\x1bp\x00\x19\xfa"),
    ],
)
def test_drawer_pulse_is_esc_p_with_the_shops_timing(
    pin: int, on_ms: int, off_ms: int, expected: bytes
) -> None:
    assert DrawerPulse(pin, on_ms, off_ms).escpos() == expected  # type: ignore[arg-type]


def test_drawer_pulse_refuses_a_timing_the_command_cannot_carry() -> None:
    with pytest.raises(ValueError, match="on_ms"):
        DrawerPulse(2, 600, 200)


def test_order_previews_regenerate_and_committed_ones_exist(tmp_path: Path) -> None:
    for path in write_order_previews(tmp_path):
        committed = DOCS / path.name
        assert committed.exists(), f"run python -m printers.order_samples {DOCS}"
        assert Image.open(committed).size == Image.open(path).size
