"""Build the printed layout of a Greek retail receipt for a paper width.

Content and order follow the mandatory checklist (docs/provider.md §11): issuer, title, identity
of the document, lines, VAT analysis, totals, payments (with the Α.1155/2023 card data), fiscal
identifiers or the offline legend, QR, provider footer. Every text is wrapped here so the
renderers only draw.
"""

from __future__ import annotations

from printers.blocks import (
    Align,
    Block,
    Cut,
    Feed,
    Layout,
    QrBlock,
    Row,
    Separator,
    Style,
    TextLine,
)
from printers.money import format_money, format_percent, format_quantity
from printers.receipt import (
    ATHENS,
    DOCUMENT_TITLES,
    OrderSlip,
    Payment,
    PrintableReceipt,
    ReceiptLine,
    VatBreakdown,
)
from printers.wrap import hard_wrap, two_columns, wrap_on, wrap_text

SUPPORTED_WIDTHS = (32, 42, 48)

DELAYED_LEGENDS: dict[int, str] = {
    1: "Απώλεια Διασύνδεσης Οντότητας - Παρόχου",
    2: "Απώλεια Διασύνδεσης Παρόχου – ΑΑΔΕ",
}
NO_MARK_NOTICE = "ΧΩΡΙΣ ΜΑΡΚ - ΑΝΑΜΟΝΗ ΔΙΑΒΙΒΑΣΗΣ"
# Printed on every order slip (8.6) and its kitchen copy (greek-regulation.md §2.4).
ORDER_NOTICE = (
    "ΤΟ ΠΑΡΟΝ ΕΙΝΑΙ ΠΛΗΡΟΦΟΡΙΑΚΟ ΣΤΟΙΧΕΙΟ ΚΑΙ ΔΕΝ ΑΠΟΤΕΛΕΙ ΝΟΜΙΜΗ ΦΟΡΟΛΟΓΙΚΗ ΑΠΟΔΕΙΞΗ/ΤΙΜΟΛΟΓΙΟ"
)
KITCHEN_BANNER = "ΚΟΥΖΙΝΑ"
ORDER_KIND_LABELS = {"return": "ΕΠΙΣΤΡΟΦΗ ΕΙΔΩΝ", "cancel": "ΑΚΥΡΩΣΗ ΠΑΡΑΓΓΕΛΙΑΣ"}
COPY_BANNER = "ΑΝΤΙΓΡΑΦΟ"
DISCOUNT_LABEL = "ΕΚΠΤΩΣΗ"
CURRENCY = "€"

_PLAIN = Style()
_CENTER = Style(align=Align.CENTER)
_BOLD = Style(bold=True)
_BOLD_CENTER = Style(bold=True, align=Align.CENTER)
_TITLE = Style(bold=True, double_height=True, align=Align.CENTER)
_BANNER = Style(bold=True, double_height=True, double_width=True, align=Align.CENTER)
_INDENT = "  "


class _Builder:
    """Accumulates blocks, wrapping every text to the width as it goes."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.blocks: list[Block] = []

    def text(self, text: str, style: Style = _PLAIN) -> None:
        """Wrapped lines; a leading indent is repeated on every continuation line."""
        columns = style.columns(self.width)
        body = text.lstrip(" ")
        indent = text[: len(text) - len(body)] if len(text) - len(body) < columns // 2 else ""
        for line in wrap_text(body, columns - len(indent)):
            self.blocks.append(TextLine(indent + line if line else "", style))

    def indented(self, text: str) -> None:
        self.text(_INDENT + text)

    def row(self, left: str, right: str, *, bold: bool = False, tall: bool = False) -> None:
        for row_left, row_right in two_columns(left, right, self.width):
            self.blocks.append(Row(row_left, row_right, bold=bold, double_height=tall))

    def field(self, label: str, value: str, *, bold: bool = False) -> None:
        """`label value` on one line when it fits, else the label and the value wrapped below."""
        if len(label) + 1 + len(value) <= self.width:
            self.blocks.append(Row(label, value, bold=bold))
            return
        self.text(label, _BOLD if bold else _PLAIN)
        self.blocks.extend(TextLine(line) for line in hard_wrap(value, self.width) if line)

    def separator(self, char: str = "-") -> None:
        self.blocks.append(Separator(char))


def build_layout(receipt: PrintableReceipt, width: int) -> Layout:
    """The complete receipt for `width` columns (32 or 42 on 58 mm paper, 48 on 80 mm)."""
    if width not in SUPPORTED_WIDTHS:
        raise ValueError(f"width {width} is not one of {SUPPORTED_WIDTHS}")
    builder = _Builder(width)
    if receipt.order is not None and receipt.order.kitchen:
        _kitchen_copy(builder, receipt, receipt.order)
        builder.blocks.append(Cut())
        return Layout(width=width, blocks=tuple(builder.blocks))
    _copy_banner(builder, receipt)
    _issuer(builder, receipt)
    _heading(builder, receipt)
    if receipt.order is not None:
        _order_heading(builder, receipt.order)
    _items(builder, receipt.lines)
    _vat_analysis(builder, receipt.vat_analysis)
    _totals(builder, receipt)
    _payments(builder, receipt.payments)
    _fiscal_identity(builder, receipt)
    _qr(builder, receipt)
    if receipt.order is not None:
        _order_notice(builder)
    _footer(builder, receipt)
    _copy_banner(builder, receipt)
    builder.blocks.append(Cut())
    return Layout(width=width, blocks=tuple(builder.blocks))


def _copy_banner(builder: _Builder, receipt: PrintableReceipt) -> None:
    if receipt.copy:
        builder.text(COPY_BANNER, _BANNER)


def _issuer(builder: _Builder, receipt: PrintableReceipt) -> None:
    issuer = receipt.issuer
    if issuer.brand:
        builder.text(issuer.brand, _TITLE)
    builder.text(issuer.name, _CENTER if issuer.brand else _BOLD_CENTER)
    if issuer.activity:
        builder.text(issuer.activity, _CENTER)
    for line in issuer.address_lines:
        builder.text(line, _CENTER)
    tax_id = f"ΑΦΜ: {issuer.vat}"
    if issuer.tax_office:
        tax_id += f" - ΔΟΥ: {issuer.tax_office}"
    builder.text(tax_id, _CENTER)
    branch = "Έδρα" if issuer.branch == 0 else f"Υποκατάστημα: {issuer.branch}"
    builder.text(branch, _CENTER)
    if issuer.phone:
        builder.text(f"Τηλ.: {issuer.phone}", _CENTER)


def _heading(builder: _Builder, receipt: PrintableReceipt) -> None:
    builder.separator("=")
    builder.text(receipt.title, _TITLE)
    builder.separator("=")
    issued = receipt.local_issued_at
    builder.row(f"Σειρά: {receipt.series}", f"Αριθμός: {receipt.number}")
    builder.row(f"Ημ/νία: {issued:%d/%m/%Y}", f"Ώρα: {issued:%H:%M}")
    if receipt.customer is not None:
        if receipt.customer.vat:
            builder.field("ΑΦΜ πελάτη:", receipt.customer.vat)
        if receipt.customer.name:
            builder.text(f"Πελάτης: {receipt.customer.name}")
    original = receipt.original
    if original is not None:
        builder.text(f"Επιστροφή για: {DOCUMENT_TITLES[original.type_code]}")
        issued = original.issued_at.astimezone(ATHENS)
        builder.indented(f"Σειρά {original.series} Αριθμός {original.number} {issued:%d/%m/%Y}")
        if original.mark:
            builder.indented(f"ΜΑΡΚ {original.mark}")
    if receipt.correlated_marks:
        builder.text("Συσχετιζόμενα ΜΑΡΚ:")
        for mark in receipt.correlated_marks:
            builder.indented(mark)


def _items(builder: _Builder, lines: tuple[ReceiptLine, ...]) -> None:
    if not lines:
        return
    builder.separator()
    builder.row("ΠΕΡΙΓΡΑΦΗ", "ΑΞΙΑ", bold=True)
    for line in lines:
        amount = format_money(line.total + line.discount)
        descriptions = wrap_text(line.description, builder.width - len(amount) - 1)
        builder.blocks.append(Row(descriptions[0], amount))
        builder.blocks.extend(Row(text, "") for text in descriptions[1:])
        unit = f" {line.unit}" if line.unit else ""
        detail = f"{format_quantity(line.quantity)}{unit} x {format_money(line.unit_price)}"
        builder.row(_INDENT + detail, f"ΦΠΑ {format_percent(line.vat_percent)}")
        if line.discount:
            builder.row(_INDENT + DISCOUNT_LABEL, format_money(-line.discount))
        if line.exemption:
            # The cause's legal text as AADE words it ("Χωρίς ΦΠΑ - άρθρο 28 του Κώδικα ΦΠΑ").
            builder.indented(line.exemption)


def _vat_analysis(builder: _Builder, rows: tuple[VatBreakdown, ...]) -> None:
    if not rows:
        return
    builder.separator()
    builder.text("ΑΝΑΛΥΣΗ ΦΠΑ", _BOLD)
    first = 6 if builder.width >= 42 else 5
    amount_width = (builder.width - first) // 3
    first = builder.width - 3 * amount_width
    header = _table_row(("ΦΠΑ%", "ΚΑΘΑΡΟ", "ΦΠΑ", "ΣΥΝΟΛΟ"), first, amount_width)
    builder.blocks.append(TextLine(header or "ΦΠΑ% ΚΑΘΑΡΟ ΦΠΑ ΣΥΝΟΛΟ", _BOLD))
    for row in rows:
        cells = (
            format_percent(row.percent),
            format_money(row.net),
            format_money(row.vat),
            format_money(row.gross),
        )
        line = _table_row(cells, first, amount_width)
        if line is not None:
            builder.blocks.append(TextLine(line))
            continue
        builder.text(f"ΦΠΑ {cells[0]}")
        builder.row(_INDENT + "Καθαρή αξία", cells[1])
        builder.row(_INDENT + "ΦΠΑ", cells[2])
        builder.row(_INDENT + "Σύνολο", cells[3])


def _table_row(cells: tuple[str, str, str, str], first: int, amount_width: int) -> str | None:
    """A fixed-column line, or None when a cell would touch its neighbour."""
    if len(cells[0]) > first - 1 or any(len(cell) > amount_width - 1 for cell in cells[1:]):
        return None
    return cells[0].ljust(first) + "".join(cell.rjust(amount_width) for cell in cells[1:])


def _totals(builder: _Builder, receipt: PrintableReceipt) -> None:
    builder.separator()
    discount = receipt.totals.discount
    if discount:
        builder.row("ΑΞΙΑ ΠΡΟ ΕΚΠΤΩΣΗΣ", format_money(receipt.totals.gross + discount))
        builder.row(DISCOUNT_LABEL, format_money(-discount), bold=True)
    if receipt.has_vat_analysis:
        builder.row("ΚΑΘΑΡΗ ΑΞΙΑ", format_money(receipt.totals.net))
        builder.row("ΦΠΑ", format_money(receipt.totals.vat))
    builder.row("ΣΥΝΟΛΟ", f"{format_money(receipt.totals.gross)} {CURRENCY}", bold=True, tall=True)


def _payments(builder: _Builder, payments: tuple[Payment, ...]) -> None:
    if not payments:
        return
    builder.separator()
    builder.text("ΤΡΟΠΟΣ ΠΛΗΡΩΜΗΣ", _BOLD)
    for payment in payments:
        builder.row(payment.label, format_money(payment.amount))
        if payment.reference:
            for line in wrap_text(payment.reference, builder.width - len(_INDENT)):
                builder.indented(line)
        if payment.tip:
            builder.row(_INDENT + "Φιλοδώρημα", format_money(payment.tip))
            builder.row(_INDENT + "Σύνολο χρέωσης", format_money(payment.amount + payment.tip))
        card = payment.card
        if card is None:
            continue
        builder.field(_INDENT + "ΤΕΡΜΑΤΙΚΟ:", card.terminal_id)
        if card.transaction_id:
            builder.field(_INDENT + "Αρ. συναλλαγής:", card.transaction_id)
        if card.signature:
            builder.indented("Υπογραφή παρόχου:")
            builder.blocks.extend(
                TextLine(line) for line in hard_wrap(card.signature, builder.width)
            )
        if card.signature_input:
            builder.indented("Δεδομένα υπογραφής:")
            builder.blocks.extend(
                TextLine(line) for line in wrap_on(card.signature_input, builder.width, ";")
            )


def _fiscal_identity(builder: _Builder, receipt: PrintableReceipt) -> None:
    builder.separator()
    if receipt.delayed_code:
        builder.text(DELAYED_LEGENDS[receipt.delayed_code], _BOLD_CENTER)
    if receipt.mark:
        builder.field("ΜΑΡΚ:", receipt.mark, bold=True)
    else:
        builder.text(NO_MARK_NOTICE, _BOLD_CENTER)
    builder.field("UID:", receipt.uid)
    if receipt.authentication_code:
        builder.field("Κωδικός αυθεντικοποίησης:", receipt.authentication_code)
    builder.text("Μοναδικός αριθμός παραστατικού:")
    builder.blocks.extend(
        TextLine(line) for line in wrap_on(receipt.document_number, builder.width, "|")
    )


def _qr(builder: _Builder, receipt: PrintableReceipt) -> None:
    url = receipt.qr_url
    if receipt.delayed_code and receipt.offline_qr_url:
        url = receipt.offline_qr_url
    if url:
        builder.blocks.append(Feed(1))
        builder.blocks.append(QrBlock(url, module_size=5 if builder.width >= 48 else 4))


def _footer(builder: _Builder, receipt: PrintableReceipt) -> None:
    if not receipt.footer:
        return
    builder.separator()
    for line in receipt.footer:
        builder.text(line, _CENTER)


def _order_heading(builder: _Builder, order: OrderSlip) -> None:
    builder.separator()
    builder.row(f"ΤΡΑΠΕΖΙ: {order.table}", "", bold=True, tall=True)
    builder.text(f"Σερβιτόρος: {order.waiter}")
    if order.kind in ORDER_KIND_LABELS:
        builder.text(ORDER_KIND_LABELS[order.kind], _BOLD_CENTER)


def _order_notice(builder: _Builder) -> None:
    builder.separator()
    builder.text(ORDER_NOTICE, _BOLD_CENTER)


def _kitchen_copy(builder: _Builder, receipt: PrintableReceipt, order: OrderSlip) -> None:
    """The kitchen's ticket: table, waiter, time and the items; no prices, no fiscal data."""
    builder.text(KITCHEN_BANNER, _BANNER)
    builder.text(f"ΤΡΑΠΕΖΙ: {order.table}", _TITLE)
    issued = receipt.local_issued_at
    builder.row(f"{receipt.series}/{receipt.number}", f"{issued:%d/%m/%Y %H:%M}")
    builder.text(f"Σερβιτόρος: {order.waiter}")
    if order.kind in ORDER_KIND_LABELS:
        builder.text(ORDER_KIND_LABELS[order.kind], _BOLD_CENTER)
    builder.separator()
    for line in receipt.lines:
        unit = f" {line.unit}" if line.unit and line.unit != "ΤΕΜ" else ""
        builder.text(f"{format_quantity(line.quantity)}{unit} x {line.description}", _BOLD)
    if order.kind == "cancel":
        for mark in receipt.correlated_marks:
            builder.text(f"ΜΑΡΚ {mark}")
    _order_notice(builder)
