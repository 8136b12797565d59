"""ESC/POS output: golden bytes per code page, decoded back honouring the ESC t table in force."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from printers.escpos_render import render_escpos
from printers.layout import COPY_BANNER, DELAYED_LEGENDS, NO_MARK_NOTICE, build_layout
from printers.profile import PrinterProfile
from printers.receipt import PrintableReceipt
from printers.samples import (
    sample_card_receipt,
    sample_cash_receipt,
    sample_discount_receipt,
    sample_offline_receipt,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
ESC_T_TABLES = {0: "cp437", 14: "cp737", 15: "iso8859_7", 47: "cp1253"}
SAMPLES = {
    "cash": sample_cash_receipt,
    "card": sample_card_receipt,
    "offline": sample_offline_receipt,
    "discount": sample_discount_receipt,
}
CODE_PAGES = ("cp1253", "iso8859_7", "cp737")


@dataclass
class Decoded:
    """What a printer would show: text per line, the tables selected, QR payloads, cuts."""

    text: str = ""
    tables: list[int] = field(default_factory=list)
    qr_payloads: list[str] = field(default_factory=list)
    rasters: int = 0
    cuts: int = 0
    inits: int = 0


def decode_escpos(data: bytes) -> Decoded:
    """A tiny ESC/POS interpreter: skips commands, switches codec on ESC t n, resets on ESC @."""
    result = Decoded()
    codec = "cp437"
    out: list[str] = []
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x1B:
            command = data[i + 1]
            if command == ord("@"):
                codec = "cp437"
                result.inits += 1
                i += 2
            elif command == ord("t"):
                result.tables.append(data[i + 2])
                codec = ESC_T_TABLES[data[i + 2]]
                i += 3
            elif command in b"aEd!":
                i += 3
            else:
                raise AssertionError(f"unexpected ESC {command:#x} at {i}")
        elif byte == 0x1D:
            command = data[i + 1]
            if command == ord("!"):
                i += 3
            elif command == ord("("):
                length = data[i + 3] + 256 * data[i + 4]
                body = data[i + 5 : i + 5 + length]
                if body[:3] == b"1P0":
                    result.qr_payloads.append(body[3:].decode("utf-8"))
                i += 5 + length
            elif command == ord("V"):
                result.cuts += 1
                i += 4 if data[i + 2] in (65, 66) else 3
            elif command == ord("v"):
                width = data[i + 4] + 256 * data[i + 5]
                height = data[i + 6] + 256 * data[i + 7]
                result.rasters += 1
                i += 8 + width * height
            else:
                raise AssertionError(f"unexpected GS {command:#x} at {i}")
        elif byte == 0x0A:
            out.append("\n")
            i += 1
        elif byte < 0x20:
            raise AssertionError(f"unexpected control byte {byte:#x} at {i}")
        else:
            out.append(data[i : i + 1].decode(codec))
            i += 1
    result.text = "".join(out)
    return result


def _render(name: str, codepage: str, *, native_qr: bool = True, copy: bool = False) -> bytes:
    receipt = SAMPLES[name]()
    if copy:
        receipt = replace(receipt, copy=True)
    return render_escpos(build_layout(receipt, 48), PrinterProfile(codepage, native_qr=native_qr))


def _words_without_amounts(text: str) -> list[str]:
    """All printed words; the amount column is dropped so wrapped descriptions read as one."""
    return [word for word in text.split() if not re.fullmatch(r"-?[\d.]+,\d\d", word)]


def _contains_run(words: list[str], run: list[str]) -> bool:
    return any(words[start : start + len(run)] == run for start in range(len(words)))


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


@pytest.mark.parametrize("codepage", CODE_PAGES)
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_bytes(name: str, codepage: str) -> None:
    path = GOLDEN / f"print_{name}_{codepage}.bin"
    output = _render(name, codepage)
    if UPDATE:
        path.write_bytes(output)
    assert output == path.read_bytes(), f"{path.name} changed; UPDATE_GOLDEN=1 after review"


def test_golden_raster_qr_fallback() -> None:
    path = GOLDEN / "print_cash_cp1253_raster.bin"
    output = _render("cash", "cp1253", native_qr=False)
    if UPDATE:
        path.write_bytes(output)
    assert output == path.read_bytes()
    decoded = decode_escpos(output)
    assert decoded.rasters == 1 and decoded.qr_payloads == []


@pytest.mark.parametrize("codepage", CODE_PAGES)
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_files_decode_to_the_greek_text(name: str, codepage: str) -> None:
    receipt = SAMPLES[name]()
    decoded = decode_escpos((GOLDEN / f"print_{name}_{codepage}.bin").read_bytes())
    profile = PrinterProfile(codepage)
    lines = _lines(decoded.text)

    assert decoded.inits == 1
    assert decoded.tables == [profile.escpos_table], "exactly one ESC t, right after ESC @"
    assert decoded.cuts == 1
    assert receipt.title in lines
    words = _words_without_amounts(decoded.text)
    for item in receipt.lines:
        expected = profile.code_page.prepare(item.description).split()
        assert _contains_run(words, expected), expected
    assert "ΑΦΜ: 801234567 - ΔΟΥ: Α' ΑΘΗΝΩΝ" in lines
    assert "ΑΠΟΔΕΙΞΗ ΛΙΑΝΙΚΗΣ ΠΩΛΗΣΗΣ" in decoded.text
    if receipt.delayed_code:
        legend = profile.code_page.prepare(DELAYED_LEGENDS[receipt.delayed_code])
        assert legend in lines
        assert NO_MARK_NOTICE in lines
        assert "ΜΑΡΚ:" not in decoded.text
        assert decoded.qr_payloads == [receipt.offline_qr_url]
    else:
        assert f"ΜΑΡΚ: {receipt.mark}" in lines
        assert decoded.qr_payloads == [receipt.qr_url]
    assert COPY_BANNER not in decoded.text


@pytest.mark.parametrize("codepage", CODE_PAGES)
def test_every_sample_character_has_a_glyph(codepage: str) -> None:
    """Nothing in the samples falls back to '?', which would hide data errors on paper."""
    code_page = PrinterProfile(codepage).code_page
    for factory in SAMPLES.values():
        receipt: PrintableReceipt = factory()
        for block_text in _all_text(receipt):
            assert code_page.unencodable(block_text) == set(), block_text


def _all_text(receipt: PrintableReceipt) -> list[str]:
    from printers.blocks import Row, TextLine

    texts: list[str] = []
    for block in build_layout(receipt, 48).blocks:
        if isinstance(block, TextLine):
            texts.append(block.text)
        elif isinstance(block, Row):
            texts.extend((block.left, block.right))
    return texts


def test_euro_sign_per_code_page() -> None:
    assert "ΣΥΝΟΛΟ 17,30 €" in _lines(decode_escpos(_render("cash", "cp1253")).text)
    assert "ΣΥΝΟΛΟ 17,30 €" in _lines(decode_escpos(_render("cash", "iso8859_7")).text)
    cp737 = decode_escpos(_render("cash", "cp737")).text
    assert "ΣΥΝΟΛΟ 17,30 EUR" in _lines(cp737)
    assert "€" not in cp737


def test_cp737_substitutes_what_the_table_lacks() -> None:
    text = decode_escpos(_render("cash", "cp737")).text
    assert "Ούζο Καϊκι 200ml" in text  # ΐ is not in CP737: printed as ϊ
    assert 'Καφέ "Ακρόπολις"' in text  # « » are not in CP737
    assert "Ούζο Καΐκι 200ml" in decode_escpos(_render("cash", "cp1253")).text


def test_iso8859_7_has_no_en_dash_so_the_aade_legend_uses_a_hyphen() -> None:
    receipt = replace(sample_offline_receipt(), delayed_code=2)
    profile = PrinterProfile("iso8859_7")
    text = decode_escpos(render_escpos(build_layout(receipt, 48), profile)).text
    assert "Απώλεια Διασύνδεσης Παρόχου - ΑΑΔΕ" in text
    cp1253 = render_escpos(build_layout(receipt, 48), PrinterProfile("cp1253"))
    assert "Απώλεια Διασύνδεσης Παρόχου – ΑΑΔΕ" in decode_escpos(cp1253).text


@pytest.mark.parametrize("codepage", CODE_PAGES)
def test_copy_prints_the_banner_at_top_and_bottom(codepage: str) -> None:
    decoded = decode_escpos(_render("card", codepage, copy=True))
    lines = _lines(decoded.text)
    assert lines[0] == COPY_BANNER
    assert lines.count(COPY_BANNER) == 2


def test_card_receipt_prints_terminal_transaction_tip_and_whole_signature() -> None:
    receipt = sample_card_receipt()
    card = receipt.payments[0].card
    assert card is not None
    text = decode_escpos(_render("card", "cp1253")).text
    lines = _lines(text)
    assert f"ΤΕΡΜΑΤΙΚΟ: {card.terminal_id}" in lines
    assert card.transaction_id in text
    assert "Φιλοδώρημα 2,00" in lines
    assert card.signature in text.replace("\n", "")


def test_tables_follow_the_profile_override() -> None:
    profile = PrinterProfile("cp1253", table=90)
    output = render_escpos(build_layout(sample_cash_receipt(), 48), profile)
    assert output.startswith(b"\x1b@\x1bt\x5a")


def test_output_is_deterministic() -> None:
    assert _render("offline", "cp737") == _render("offline", "cp737")
    assert _render("cash", "cp1253", native_qr=False) == _render("cash", "cp1253", native_qr=False)


@pytest.mark.parametrize("width", [32, 42, 48])
def test_no_printed_line_exceeds_the_width(width: int) -> None:
    for factory in SAMPLES.values():
        for codepage in CODE_PAGES:
            output = render_escpos(build_layout(factory(), width), PrinterProfile(codepage))
            for line in decode_escpos(output).text.splitlines():
                assert len(line) <= width, line


def test_raster_qr_matches_the_58mm_head() -> None:
    layout = build_layout(sample_cash_receipt(), 32)
    output = render_escpos(layout, PrinterProfile("cp1253", native_qr=False))
    start = output.index(b"\x1dv0")
    assert int.from_bytes(output[start + 4 : start + 6], "little") == 384 // 8
