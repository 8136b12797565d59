"""A `DayReport` (X or Z) as the printed slip: Greek headings, one row per figure.

The same slip goes to the receipt printer, the PNG preview and `pos-agent report`; its layout is
described in docs/technician.md ("The day's reports").
"""

from __future__ import annotations

from agent.clock import ATHENS
from agent.core.day_report import DayReport, Flow, Reconciliation
from printers.blocks import Layout
from printers.day_slip import DaySlip, SlipSection, build_day_layout
from printers.money import format_money, format_percent

DOCUMENT_NAMES = {
    "11.1": "ΑΛΠ 11.1",
    "11.4": "Πιστωτικό 11.4",
    "8.4": "POS 8.4",
    "8.5": "Επιστρ. POS 8.5",
    "8.6": "Παραγγελία 8.6",
}


def day_slip(report: DayReport, issuer: str) -> DaySlip:
    if report.kind == "Z":
        title = f"ΑΝΑΦΟΡΑ Z Νο {report.number}"
        header: tuple[str, ...] = (
            issuer,
            f"Κλείσιμο {report.generated_at.astimezone(ATHENS):%d/%m/%Y %H:%M}",
            f"Παραστατικά id {(report.after_receipt_id or 0) + 1}-{report.last_receipt_id}",
        )
    else:
        title = "ΑΝΑΦΟΡΑ X"
        header = (
            "Ενημερωτική, όχι κλείσιμο",
            issuer,
            f"Ημέρα {report.day:%d/%m/%Y}" if report.day else "",
            f"Εκτύπωση {report.generated_at.astimezone(ATHENS):%d/%m/%Y %H:%M}",
        )
    sections = [
        SlipSection(
            "ΠΑΡΑΣΤΑΤΙΚΑ",
            tuple(
                (
                    f"{DOCUMENT_NAMES.get(s.type_code, s.type_code)} {s.series}",
                    f"{s.first}-{s.last} ({s.issued})",
                )
                for s in report.documents
            )
            or (("κανένα", ""),),
        ),
        _flow("ΠΩΛΗΣΕΙΣ", report.sales),
        _flow("ΕΠΙΣΤΡΟΦΕΣ", report.refunds),
        SlipSection(
            "ΣΥΡΤΑΡΙ / ΑΚΥΡΩΣΕΙΣ",
            (
                ("Άνοιγμα με πώληση", str(report.drawer.with_sale)),
                ("Άνοιγμα χωρίς πώληση", str(report.drawer.without_sale)),
                ("Ακυρωμένες κρατήσεις", str(len(report.voided_reservations))),
            ),
        ),
        SlipSection(
            "ΕΚΚΡΕΜΟΤΗΤΕΣ",
            (
                ("Ανοιχτά τραπέζια", str(report.open_tables.tables)),
                ("Δελτία παραγγελίας", str(report.open_tables.order_slips)),
                ("Υπόλοιπο τραπεζιών", format_money(report.open_tables.balance)),
                ("Εκτός σύνδεσης", str(report.backlog.documents)),
                ("Θέλουν έλεγχο", str(len(report.needs_person))),
            ),
        ),
    ]
    if report.reconciliation is not None:
        rec = report.reconciliation
        sections.append(
            SlipSection(
                "ΣΥΜΦΩΝΙΑ ΜΕ ΠΑΡΟΧΟ",
                (
                    ("Ταιριάζουν", str(rec.matched)),
                    ("ΜΑΡΚ βρέθηκε", str(rec.resolved)),
                    ("Ξαναστάλθηκαν", str(rec.resent)),
                    ("Για έλεγχο", str(len(rec.flagged))),
                    *_order_rows(rec),
                ),
            )
        )
    return DaySlip(title=title, header=tuple(h for h in header if h), sections=tuple(sections))


def _order_rows(rec: Reconciliation) -> tuple[tuple[str, str], ...]:
    """The provider's open order slips (8.6) against the open tables, when they were read."""
    orders = rec.orders
    if orders is None:
        return ()
    if orders.error is not None:
        return (("Ανοιχτά 8.6 παρόχου", "ΑΠΟΤΥΧΙΑ"),)
    rows = [
        ("Ανοιχτά 8.6 παρόχου", str(orders.provider_open)),
        ("8.6 ταιριάζουν", str(orders.matched)),
        ("8.6 ΜΑΡΚ βρέθηκε", str(orders.resolved)),
        ("8.6 ξαναστάλθηκαν", str(orders.resent)),
        ("8.6 για έλεγχο", str(len(orders.flagged) + len(orders.unheld))),
    ]
    rows += [(f"  ΜΑΡΚ {order.mark}", f"τραπ. {order.table or '-'}") for order in orders.unheld]
    return tuple(rows)


def closing_layout(report_json: str, issuer: str, width: int) -> Layout:
    """A kept closing's report (as stored) laid out for the receipt printer's paper."""
    return build_day_layout(day_slip(DayReport.model_validate_json(report_json), issuer), width)


def _flow(heading: str, flow: Flow) -> SlipSection:
    rows: list[tuple[str, str]] = [("Παραστατικά", str(flow.documents))]
    for line in flow.by_vat:
        rows.append((f"ΦΠΑ {format_percent(line.rate)} καθαρά", format_money(line.net)))
        rows.append((f"ΦΠΑ {format_percent(line.rate)} φόρος", format_money(line.vat)))
        if line.discount:
            rows.append((f"ΦΠΑ {format_percent(line.rate)} έκπτωση", format_money(line.discount)))
    rows += [
        ("Καθαρή αξία", format_money(flow.net)),
        ("ΦΠΑ", format_money(flow.vat)),
        ("ΣΥΝΟΛΟ", format_money(flow.gross)),
    ]
    if flow.discount:
        rows.append(("Εκπτώσεις", format_money(flow.discount)))
    for method in flow.by_method:
        rows.append((f"{method.name} ({method.payments})", format_money(method.amount)))
        if method.tips:
            rows.append(("  φιλοδώρημα", format_money(method.tips)))
    for terminal in flow.card_terminals:
        rows.append(
            (
                f"  τερμ. {terminal.terminal_id} ({terminal.transactions})",
                format_money(terminal.amount),
            )
        )
    return SlipSection(heading, tuple(rows))
