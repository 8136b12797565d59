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

# myDATA VatExemptionType: the legal basis printed under a 0 % line, worded as AADE's table
# (docs/provider.md §9; the myDATA code list as published by AADE).
EXEMPTION_CAUSE_TEXTS: dict[int, str] = {
    1: "Χωρίς ΦΠΑ - άρθρο 2 και 3 του Κώδικα ΦΠΑ",
    2: "Χωρίς ΦΠΑ - άρθρο 5 του Κώδικα ΦΠΑ",
    3: "Χωρίς ΦΠΑ - άρθρο 13 του Κώδικα ΦΠΑ",
    4: "Χωρίς ΦΠΑ - άρθρο 14 του Κώδικα ΦΠΑ",
    5: "Χωρίς ΦΠΑ - άρθρο 16 του Κώδικα ΦΠΑ",
    6: "Χωρίς ΦΠΑ - άρθρο 19 του Κώδικα ΦΠΑ",
    7: "Χωρίς ΦΠΑ - άρθρο 22 του Κώδικα ΦΠΑ",
    8: "Χωρίς ΦΠΑ - άρθρο 24 του Κώδικα ΦΠΑ",
    9: "Χωρίς ΦΠΑ - άρθρο 25 του Κώδικα ΦΠΑ",
    10: "Χωρίς ΦΠΑ - άρθρο 26 του Κώδικα ΦΠΑ",
    11: "Χωρίς ΦΠΑ - άρθρο 27 του Κώδικα ΦΠΑ",
    12: "Χωρίς ΦΠΑ - άρθρο 27 - Πλοία Ανοικτής Θαλάσσης του Κώδικα ΦΠΑ",
    13: "Χωρίς ΦΠΑ - άρθρο 27.1.γ - Πλοία Ανοικτής Θαλάσσης του Κώδικα ΦΠΑ",
    14: "Χωρίς ΦΠΑ - άρθρο 28 του Κώδικα ΦΠΑ",
    15: "Χωρίς ΦΠΑ - άρθρο 39 του Κώδικα ΦΠΑ",
    16: "Χωρίς ΦΠΑ - άρθρο 39α του Κώδικα ΦΠΑ",
    17: "Χωρίς ΦΠΑ - άρθρο 40 του Κώδικα ΦΠΑ",
    18: "Χωρίς ΦΠΑ - άρθρο 41 του Κώδικα ΦΠΑ",
    19: "Χωρίς ΦΠΑ - άρθρο 47 του Κώδικα ΦΠΑ",
    20: "ΦΠΑ εμπεριεχόμενος - άρθρο 43 του Κώδικα ΦΠΑ",
    21: "ΦΠΑ εμπεριεχόμενος - άρθρο 44 του Κώδικα ΦΠΑ",
    22: "ΦΠΑ εμπεριεχόμενος - άρθρο 45 του Κώδικα ΦΠΑ",
    23: "ΦΠΑ εμπεριεχόμενος - άρθρο 46 του Κώδικα ΦΠΑ",
    24: "Χωρίς ΦΠΑ - άρθρο 6 του Κώδικα ΦΠΑ",
    25: "Χωρίς ΦΠΑ - ΠΟΛ.1029/1995",
    26: "Χωρίς ΦΠΑ - ΠΟΛ.1167/2015",
    27: "Λοιπές Εξαιρέσεις ΦΠΑ",
    28: "Χωρίς ΦΠΑ - άρθρο 24 περ. β' παρ.1 του Κώδικα ΦΠΑ (Tax Free)",
    29: "Χωρίς ΦΠΑ - άρθρο 47β του Κώδικα ΦΠΑ (OSS μη ενωσιακό καθεστώς)",
    30: "Χωρίς ΦΠΑ - άρθρο 47γ του Κώδικα ΦΠΑ (OSS ενωσιακό καθεστώς)",
    31: "Χωρίς ΦΠΑ - άρθρο 47δ του Κώδικα ΦΠΑ (IOSS)",
}

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
IRIS_PAYMENT = 8
CASH_PAYMENT = 3

# myDATA SpecialInvoiceCategory: 0 none, 12 "Συναλλαγές εστίασης" (catering transactions), which
# the provider's QA food-service 11.1 sends: only on the 11.1 that pays a table (docs/provider.md
# §13), never on a counter receipt or an 11.4.
NO_SPECIAL_CATEGORY = 0
CATERING_CATEGORY = 12

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
