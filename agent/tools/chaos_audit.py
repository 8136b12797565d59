"""The chaos run's audit: the agent's store against the provider's documents after the run,
each check noting what it finds (lost, duplicated, contradicted answers, numbering gaps)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass
class Sale:
    """One sale at one till: the bodies are fixed once, every retry sends them again."""

    sale_id: str
    kind: str  # cash | card | pos
    lines: list[dict[str, Any]]
    total: Decimal
    terminal_id: str
    transaction_id: str
    answer: dict[str, Any] | None = None

    @property
    def printed(self) -> bool:
        """About a third of the receipts are printed (dummy printer), decided per sale."""
        return sum(self.sale_id.encode()) % 3 == 0


class Audit:
    """The agent's store against the provider's documents; each check notes what it finds."""

    def __init__(
        self,
        rows: list[dict[str, Any]],
        provider_docs: list[dict[str, Any]],
        was_lost: Callable[[str, int], bool],
        codes_lost: set[str] | None = None,
    ) -> None:
        """`was_lost(series, number)`: the number was accepted as lost with a WAL;
        `codes_lost`: UIDs whose offline code was set in a lost WAL."""
        self.rows = rows
        self.provider_docs = provider_docs
        self.at_provider = Counter(doc["uid"] for doc in provider_docs)
        self.was_lost = was_lost
        self.codes_lost = codes_lost or set()
        self.problems: list[str] = []
        self.lost_to_rollback = 0
        self.rolled_back_at_provider = 0

    def lost(self, answered: list[Sale]) -> tuple[int, int]:
        """Answered sales not at the provider, and answers the store's document contradicts."""
        by_request = {row["request_id"]: row for row in self.rows}
        lost = mismatched = 0
        for sale in answered:
            assert sale.answer is not None
            uid = sale.answer["uid"]
            if self.was_lost(sale.answer["series"], int(sale.answer["number"])):
                if self.at_provider[uid] == 0:  # an offline receipt that lived in the lost WAL
                    self.lost_to_rollback += 1
                    self.problems.append(f"lost with the WAL: {sale.sale_id} (detected, accepted)")
                continue
            if self.at_provider[uid] == 0:
                lost += 1
                self.problems.append(f"lost: {sale.sale_id} uid {uid} is not at the provider")
            row = by_request.get(sale.sale_id)
            if row is None or row["uid"] != uid:
                mismatched += 1
                self.problems.append(
                    f"{sale.sale_id}: the store's document differs from the answer"
                )
        return lost, mismatched

    def duplicates(self) -> tuple[int, int]:
        """Extra provider documents per sale and per UID, and documents no sale explains:
        every provider document must trace back to exactly one sale (UID → request_id)."""
        by_uid = {row["uid"]: row for row in self.rows}
        per_sale: Counter[str] = Counter()
        unknown = 0
        for doc in self.provider_docs:
            row = by_uid.get(doc["uid"])
            if row is None and self.was_lost(doc["series"], int(doc["number"])):
                self.rolled_back_at_provider += 1  # its row went with the WAL; the number is void
                continue
            if row is None:
                unknown += 1
                self.problems.append(f"provider document {doc['uid']} is unknown to the store")
                continue
            per_sale[row["request_id"]] += 1
        extra = sum(count - 1 for count in per_sale.values() if count > 1)
        extra += sum(count - 1 for count in self.at_provider.values() if count > 1)
        return extra, unknown

    def wrong_marks(self) -> int:
        """Store documents holding a MARK the provider gave to another document."""
        uid_by_mark = {int(doc["mark"]): doc["uid"] for doc in self.provider_docs}
        wrong = 0
        for row in self.rows:
            if row["mark"] is None:
                continue
            if uid_by_mark.get(int(row["mark"])) != row["uid"]:
                wrong += 1
                self.problems.append(
                    f"wrong MARK: {row['series']} {row['number']} holds {row['mark']}, which the "
                    "provider gave to another document"
                )
        return wrong

    def silent_gaps(self, last_numbers: dict[str, int]) -> int:
        """Numbers neither at the provider nor recorded by the store (void, reserved, rejected)."""
        recorded = {"void", "reserved", "rejected"}
        provider_numbers = {(doc["series"], int(doc["number"])) for doc in self.provider_docs}
        store_rows = {(row["series"], row["number"]): row for row in self.rows}
        silent = 0
        for series, last in last_numbers.items():
            for number in range(1, last + 1):
                if (series, number) in provider_numbers:
                    continue
                row = store_rows.get((series, number))
                if row is not None and row["state"] in recorded:
                    continue
                silent += 1
                self.problems.append(
                    f"gap: {series} {number} is neither at the provider nor recorded"
                )
        return silent

    def codes(self) -> tuple[int, int]:
        """Provider documents whose IsDelayedCode differs from the agent's, and of those the
        ambiguous timeouts (sent online, answered late, MARK adopted from the 409)."""
        provider_by_uid = {doc["uid"]: doc for doc in self.provider_docs}
        wrong = ambiguous = 0
        for row in self.rows:
            provider_doc = provider_by_uid.get(row["uid"])
            if provider_doc is None:
                continue
            if row["state"] == "void" and self.was_lost(row["series"], int(row["number"])):
                continue  # a reservation the rollback voided: the lost part issued it, offline
            if row["uid"] in self.codes_lost:
                continue  # sent offline in a lost part: the provider keeps that code
            sent, ours = int(provider_doc["is_delayed_code"]), int(row["delayed_code"])
            if sent == ours:
                continue
            if sent == 0 and ours != 0 and row["authentication_code"] is None:
                ambiguous += 1
                continue
            wrong += 1
            self.problems.append(
                f"wrong code: {row['series']} {row['number']} provider {sent}, agent {ours}"
            )
        return wrong, ambiguous
