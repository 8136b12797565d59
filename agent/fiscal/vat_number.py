"""The Greek ΑΦΜ check digit, so a mistyped customer VAT is refused at the till, not by AADE."""

from __future__ import annotations

import re

# [0-9], not \d: \d also takes Arabic-Indic and other Unicode digits, which int() reads.
_AFM = re.compile(r"[0-9]{9}")


def is_valid_afm(vat: str) -> bool:
    """Nine digits; weights 2^8..2^1 over the first eight, (sum mod 11) mod 10 = the ninth."""
    digits = vat.removeprefix("EL").removeprefix("el")
    if not _AFM.fullmatch(digits) or digits == "000000000":
        return False
    total = sum(int(d) << (8 - i) for i, d in enumerate(digits[:8]))
    return (total % 11) % 10 == int(digits[8])
