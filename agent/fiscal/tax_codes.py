"""myDATA / Elise code tables the agent validates against (docs/provider.md §9)."""

from __future__ import annotations

from decimal import Decimal

# VatCategoryCode → rate. 8 ("records without VAT") is not allowed on sales receipts.
VAT_RATES: dict[int, Decimal] = {
    1: Decimal("24"),
    2: Decimal("13"),
    3: Decimal("6"),
    4: Decimal("17"),
    5: Decimal("9"),
    6: Decimal("4"),
    7: Decimal("0"),
    9: Decimal("3"),
    10: Decimal("4"),
}
ZERO_RATE_CATEGORY = 7
EXEMPTION_CAUSES = range(1, 32)

PAYMENT_METHODS: dict[int, str] = {
    1: "Επαγ. Λογαριασμός Πληρωμών Ημεδαπής",
    2: "Επαγ. Λογαριασμός Πληρωμών Αλλοδαπής",
    3: "Μετρητά",
    4: "Επιταγή",
    5: "Επί Πιστώσει",
    6: "Web Banking",
    7: "POS / e-POS",
    8: "Άμεσες Πληρωμές IRIS",
}
CARD_PAYMENT = 7
CASH_PAYMENT = 3

MEASUREMENT_UNITS: dict[int, str] = {
    1: "ΤΕΜ",
    2: "ΚΙΛ",
    3: "ΛΙΤ",
    4: "ΜΕΤ",
    5: "Μ2",
    6: "Μ3",
    7: "ΤΕΜ",
}

# Invoice types this agent issues, with the label Elise samples carry in `InvoiceType`.
INVOICE_TYPE_LABELS: dict[str, str] = {
    "11.1": "Retail Sales Receipt",
    "11.4": "Retail Sales Credit Note",
    "8.4": "POS Receipt",
    "8.5": "POS Return Receipt",
    "8.6": "FNB Form 8.6",
}
