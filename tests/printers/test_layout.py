"""Receipt model, mandatory layout content (docs/provider.md §11), wrapping, number formats."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printers.blocks import Layout, LayoutError, QrBlock, Row, Separator, TextLine
from printers.layout import COPY_BANNER, DELAYED_LEGENDS, NO_MARK_NOTICE, build_layout
from printers.money import format_money, format_percent, format_quantity
from printers.receipt import PrintableReceipt, ReceiptFormatError
from printers.samples import sample_card_receipt, sample_cash_receipt, sample_offline_receipt
from printers.wrap import hard_wrap, two_columns, wrap_on, wrap_text

WIDTHS = (32, 42, 48)
SAMPLES = (sample_cash_receipt, sample_card_receipt, sample_offline_receipt)


def _texts(layout: Layout) -> list[str]:
    texts: list[str] = []
    for block in layout.blocks:
        if isinstance(block, TextLine):
            texts.append(block.text)
        elif isinstance(block, Row):
            texts.append(f"{block.left} {block.right}".strip())
    return texts


def _qr(layout: Layout) -> list[str]:
    return [block.data for block in layout.blocks if isinstance(block, QrBlock)]


@pytest.mark.parametrize(
    ("type_code", "title"),
    [
        ("11.1", "ΑΠΟΔΕΙΞΗ ΛΙΑΝΙΚΗΣ ΠΩΛΗΣΗΣ"),
        ("11.4", "ΠΙΣΤΩΤΙΚΟ ΣΤΟΙΧΕΙΟ ΛΙΑΝΙΚΗΣ"),
        ("8.4", "ΑΠΟΔΕΙΞΗ ΕΙΣΠΡΑΞΗΣ POS"),
        ("8.5", "ΑΠΟΔΕΙΞΗ ΕΠΙΣΤΡΟΦΗΣ POS"),
    ],
)
def test_title_by_type_in_capitals_without_accents(type_code: str, title: str) -> None:
    receipt = replace(sample_cash_receipt(), type_code=type_code)
    for width in WIDTHS:
        layout = build_layout(receipt, width)
        title_lines = [
            block.text
            for block in layout.blocks
            if isinstance(block, TextLine) and block.style.double_height and block.style.bold
        ]
        assert " ".join(title_lines[1:]) == title  # the first tall line is the brand
    assert not set(title) & set("ΆΈΉΊΌΎΏάέήίόύώ")


def test_online_receipt_prints_mark_uid_authentication_code_and_provider_qr() -> None:
    receipt = sample_cash_receipt()
    texts = _texts(build_layout(receipt, 48))
    assert f"ΜΑΡΚ: {receipt.mark}" in texts
    assert f"UID: {receipt.uid}" in texts
    assert receipt.authentication_code in texts
    assert "801234567|21/11/2026|0|11.1|ΑΛΠ|1234" in texts
    assert _qr(build_layout(receipt, 48)) == [receipt.qr_url]
    assert NO_MARK_NOTICE not in texts


@pytest.mark.parametrize("code", [1, 2])
def test_delayed_receipt_prints_legend_no_mark_and_offline_qr(code: int) -> None:
    receipt = replace(sample_offline_receipt(), delayed_code=code)
    for width in WIDTHS:
        layout = build_layout(receipt, width)
        joined = " ".join(_texts(layout))
        assert DELAYED_LEGENDS[code] in joined
        assert NO_MARK_NOTICE in joined
        assert "ΜΑΡΚ:" not in joined
        assert _qr(layout) == [receipt.offline_qr_url]


def test_legends_are_the_regulation_wording() -> None:
    assert DELAYED_LEGENDS[1] == "Απώλεια Διασύνδεσης Οντότητας - Παρόχου"
    assert DELAYED_LEGENDS[2] == "Απώλεια Διασύνδεσης Παρόχου – ΑΑΔΕ"


def test_copy_banner_only_on_copies() -> None:
    assert COPY_BANNER not in _texts(build_layout(sample_cash_receipt(), 32))
    copy = build_layout(replace(sample_cash_receipt(), copy=True), 32)
    assert _texts(copy).count(COPY_BANNER) == 2


def test_credit_note_prints_correlated_marks_and_customer() -> None:
    from printers.receipt import Customer

    receipt = replace(
        sample_cash_receipt(),
        type_code="11.4",
        correlated_marks=("400001234567890",),
        customer=Customer(vat="099999999", name="ΠΕΛΑΤΗΣ Α.Ε."),
    )
    texts = [text.strip() for text in _texts(build_layout(receipt, 32))]
    assert "Συσχετιζόμενα ΜΑΡΚ:" in texts
    assert "400001234567890" in texts
    assert "ΑΦΜ πελάτη: 099999999" in texts


@pytest.mark.parametrize("width", WIDTHS)
def test_return_prints_its_original_by_series_number_and_date(width: int) -> None:
    """A return named by receipt id prints the original's identity, and its MARK once known;
    the original round-trips through the spool's JSON."""
    from printers.receipt import ATHENS, OriginalDocument

    original = OriginalDocument("11.1", "ΑΛΠ", 1234, datetime(2026, 11, 21, 9, 5, tzinfo=ATHENS))
    receipt = replace(sample_offline_receipt(), type_code="11.4", original=original)
    assert PrintableReceipt.from_json(receipt.to_json()) == receipt
    texts = [text.strip() for text in _texts(build_layout(receipt, width))]
    assert any(text.startswith("Επιστροφή για:") for text in texts)
    assert "Σειρά ΑΛΠ Αριθμός 1234 21/11/2026" in " ".join(texts)  # wrapped at 32 columns
    assert "ΜΑΡΚ 4" not in " ".join(texts)
    marked = replace(receipt, original=replace(original, mark="400000000001234"))
    assert "ΜΑΡΚ 400000000001234" in " ".join(_texts(build_layout(marked, width)))


@pytest.mark.parametrize("type_code", ["8.4", "8.5"])
def test_pos_receipt_without_lines_or_vat_analysis(type_code: str) -> None:
    """An 8.4/8.5 records a card payment: no lines, no VAT analysis, no net/VAT totals (a
    "ΦΠΑ 0,00" would read as a 0 % sale), only the amount."""
    receipt = replace(sample_card_receipt(), type_code=type_code, lines=(), vat_analysis=())
    texts = _texts(build_layout(receipt, 42))
    assert "ΑΝΑΛΥΣΗ ΦΠΑ" not in texts
    assert "ΠΕΡΙΓΡΑΦΗ ΑΞΙΑ" not in texts
    assert receipt.title in texts
    assert not [text for text in texts if text.startswith(("ΚΑΘΑΡΗ ΑΞΙΑ", "ΦΠΑ "))]
    assert [text for text in texts if text.startswith("ΣΥΝΟΛΟ ")]


def test_exemption_prints_the_legal_text_once() -> None:
    """The cause's article of the ΚΦΠΑ as AADE's table words it, not "Απαλλαγή: Απαλλαγή…"."""
    legal = "Χωρίς ΦΠΑ - άρθρο 28 του Κώδικα ΦΠΑ"
    base = sample_cash_receipt()
    line = replace(base.lines[0], vat_percent=Decimal("0"), vat_category=7, exemption=legal)
    texts = [text.strip() for text in _texts(build_layout(replace(base, lines=(line,)), 48))]
    assert texts.count(legal) == 1
    assert not [text for text in texts if "Απαλλαγή" in text]


def test_card_signature_is_wrapped_in_full() -> None:
    receipt = sample_card_receipt()
    card = receipt.payments[0].card
    assert card is not None
    for width in WIDTHS:
        texts = _texts(build_layout(receipt, width))
        start = texts.index("  Υπογραφή παρόχου:")
        chunk_count = -(-len(card.signature) // width)
        assert "".join(texts[start + 1 : start + 1 + chunk_count]) == card.signature


@pytest.mark.parametrize("width", WIDTHS)
def test_every_block_fits_the_width(width: int) -> None:
    for factory in SAMPLES:
        layout = build_layout(replace(factory(), copy=True), width)
        for block in layout.blocks:
            if isinstance(block, TextLine):
                limit = width // 2 if block.style.double_width else width
                assert len(block.text) <= limit
            elif isinstance(block, Row):
                assert len(block.left) + len(block.right) + 1 <= width or not block.left
            elif isinstance(block, Separator):
                assert len(block.char) == 1


def test_unsupported_width_is_refused() -> None:
    with pytest.raises(ValueError, match="width"):
        build_layout(sample_cash_receipt(), 40)


def test_layout_rejects_text_wider_than_the_paper() -> None:
    with pytest.raises(LayoutError):
        Layout(width=32, blocks=(TextLine("x" * 33),))


def test_json_round_trip_is_exact() -> None:
    for factory in SAMPLES:
        receipt = replace(factory(), copy=True)
        text = receipt.to_json()
        assert PrintableReceipt.from_json(text) == receipt
        assert "17.30" in text and "Ακρόπολις" in text


def test_from_json_refuses_garbage_and_float_money() -> None:
    with pytest.raises(ReceiptFormatError):
        PrintableReceipt.from_json("{}")
    broken = sample_cash_receipt().to_json().replace('"gross":"17.30"', '"gross":17.3')
    with pytest.raises(ReceiptFormatError):
        PrintableReceipt.from_json(broken)


def test_issued_at_must_be_aware_and_prints_athens_time() -> None:
    with pytest.raises(ReceiptFormatError):
        replace(sample_cash_receipt(), issued_at=datetime(2026, 11, 21, 12, 0))
    utc = replace(sample_cash_receipt(), issued_at=datetime(2026, 7, 1, 21, 30, tzinfo=UTC))
    texts = _texts(build_layout(utc, 48))
    assert "Ημ/νία: 02/07/2026 Ώρα: 00:30" in [" ".join(text.split()) for text in texts]
    assert utc.document_number.split("|")[1] == "02/07/2026"


def test_money_quantity_and_percent_formatting() -> None:
    assert format_money(Decimal("12.4")) == "12,40"
    assert format_money(Decimal("1234567.5")) == "1.234.567,50"
    assert format_money(Decimal("-3.05")) == "-3,05"
    assert format_money(Decimal("0")) == "0,00"
    with pytest.raises(ValueError):
        format_money(Decimal("1.005"))
    assert format_quantity(Decimal("2.000")) == "2"
    assert format_quantity(Decimal("10")) == "10"
    assert format_quantity(Decimal("0.275")) == "0,275"
    assert format_percent(Decimal("24.00")) == "24%"
    assert format_percent(Decimal("5.5")) == "5,5%"


def test_wrapping_keeps_words_and_splits_only_overlong_tokens() -> None:
    assert wrap_text("Τυρόπιτα χωριάτικη με φύλλο", 12) == ["Τυρόπιτα", "χωριάτικη με", "φύλλο"]
    assert wrap_text("", 10) == [""]
    assert hard_wrap("ABCDEFGHIJ", 4) == ["ABCD", "EFGH", "IJ"]
    assert wrap_on("801234567|21/11/2026|0|11.1|ΑΛΠ|1234", 24, "|") == [
        "801234567|21/11/2026|0|",
        "11.1|ΑΛΠ|1234",
    ]
    assert two_columns("Καφές", "3,50", 12) == [("Καφές", "3,50")]
    assert two_columns("Τυρόπιτα χωριάτικη", "2,80", 12) == [
        ("Τυρόπιτα", ""),
        ("χωριάτικη", ""),
        ("", "2,80"),
    ]


_greek_words = st.text(
    alphabet=st.sampled_from("αβγδεζηθικλμνξοπρστυφχψωάέήίόύώΑΒΓΔΣΩ0123456789.,-"),
    min_size=1,
    max_size=30,
)


@given(words=st.lists(_greek_words, max_size=20), width=st.sampled_from(WIDTHS))
def test_wrap_never_exceeds_width_and_never_cuts_a_word_that_fits(
    words: list[str], width: int
) -> None:
    lines = wrap_text(" ".join(words), width)
    assert all(len(line) <= width for line in lines)
    short_words = [word for word in words if len(word) <= width]
    printed_words = [word for line in lines for word in line.split()]
    for word in short_words:
        assert word in printed_words
    assert "".join(printed_words) == "".join(words)


@given(
    left=st.lists(_greek_words, max_size=8).map(" ".join),
    right=st.text(alphabet="0123456789,.€ ", max_size=14),
    width=st.sampled_from(WIDTHS),
)
def test_two_columns_always_fit(left: str, right: str, width: int) -> None:
    for row_left, row_right in two_columns(left, right, width):
        gap = 1 if row_left and row_right else 0
        assert len(row_left) + gap + len(row_right) <= width
