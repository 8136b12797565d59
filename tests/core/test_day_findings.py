"""An order slip the provider holds open and no table here holds: WARN while it is young,
CRITICAL from `open_order_warning_hours` before the legal limit and past it, naming the table,
the MARK, the limit and the command that clears it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from agent.clock import ATHENS
from agent.config import TablesConfig
from agent.core.day_findings import unheld_finding
from agent.core.day_report import UnheldOrder

ISSUED = datetime(2026, 12, 7, 10, 0, tzinfo=ATHENS)
LIMITS = TablesConfig(open_order_limit_hours=24, open_order_warning_hours=4)


def order(issued_at: datetime | None = ISSUED, known_here: str | None = None) -> UnheldOrder:
    return UnheldOrder(
        mark=400001234567,
        table="12",
        issued_at=issued_at,
        total=Decimal("12.00"),
        known_here=known_here,
    )


@pytest.mark.parametrize(
    ("hours", "critical", "says"),
    [
        (1, False, "the 24 h limit at 2026-12-08 10:00"),
        (19.9, False, "19.9 h old"),
        (20, True, "the 24 h limit at 2026-12-08 10:00"),
        (25.5, True, "1.5 h past the 24 h limit"),
    ],
)
def test_the_limit_decides_the_level(hours: float, critical: bool, says: str) -> None:
    found = unheld_finding(order(), LIMITS, ISSUED + timedelta(hours=hours))
    assert found.critical is critical
    assert says in found.text
    assert "MARK 400001234567 of table 12" in found.text and "12.00 EUR" in found.text
    assert "pos-agent cancel-order 400001234567" in found.text
    assert "never issued here" in found.text


def test_what_the_register_knows_of_it_is_said_and_an_unknown_age_is_critical() -> None:
    known = "issued here as ΔΠΕ/7 (receipt 41), closed or cancelled here by receipt 45 (accepted)"
    found = unheld_finding(order(None, known), LIMITS, ISSUED)
    assert found.critical and "age unknown" in found.text and known in found.text
