"""The Z slip lists the reconciliation that followed it, the provider's open order slips (8.6)
included: their counts and each one no table here holds, by MARK and table; it prints in the
printer's code page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from agent.core.closings import day_report
from agent.core.day_report import OrderReconciliation, Reconciliation, UnheldOrder
from agent.core.day_slip import day_slip
from printers.day_slip import build_day_layout, layout_text
from printers.escpos_render import render_escpos
from printers.profile import PrinterProfile
from tests.offline_store.factory import T0, issue, open_store


def test_the_slip_names_the_open_orders_no_table_holds(tmp_path: Path) -> None:
    conn = open_store(tmp_path)
    issue(conn, "sold")
    orders = OrderReconciliation(
        provider_open=3,
        matched=1,
        resolved=0,
        resent=1,
        flagged=[],
        unheld=[
            UnheldOrder(
                mark=400001234567,
                table="12",
                issued_at=T0 - timedelta(hours=3),
                total=Decimal("12.00"),
            )
        ],
    )
    result = Reconciliation(
        day=T0.date(),
        checked_at=T0,
        provider_documents=1,
        matched=1,
        resolved=0,
        resent=0,
        flagged=[],
        orders=orders,
    )
    report = day_report(conn, T0.date(), T0).model_copy(
        update={"kind": "Z", "number": 4, "reconciliation": result}
    )
    layout = build_day_layout(day_slip(report, "Ωραία Ελλάς"), 48)
    text = layout_text(layout)
    assert "ΣΥΜΦΩΝΙΑ ΜΕ ΠΑΡΟΧΟ" in text
    rows = [" ".join(line.split()) for line in text.splitlines()]
    assert "Ανοιχτά 8.6 παρόχου 3" in rows and "8.6 ξαναστάλθηκαν 1" in rows
    assert "8.6 για έλεγχο 1" in rows and "ΜΑΡΚ 400001234567 τραπ. 12" in rows
    printed = render_escpos(layout, PrinterProfile("cp1253", native_qr=True))
    assert "ΜΑΡΚ 400001234567".encode("cp1253") in printed

    failed = result.model_copy(update={"orders": orders.model_copy(update={"error": "down"})})
    text = layout_text(
        build_day_layout(
            day_slip(report.model_copy(update={"reconciliation": failed}), "Ωραία Ελλάς"), 48
        )
    )
    assert "ΑΠΟΤΥΧΙΑ" in text and "ΜΑΡΚ 400001234567" not in text
