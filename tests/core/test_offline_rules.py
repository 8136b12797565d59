"""Deadlines, the breaker, backoff and the signed-input checks: the offline rules in isolation."""

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from agent.clock import ATHENS
from agent.core.answers import SignedFields
from agent.core.breaker import CircuitBreaker
from agent.core.card_payments import CARD_CHECK, check_signed_input, parse_signed_input
from agent.core.errors import ProviderSignatureMismatch, ProviderSignatureUnusable
from agent.core.iris_payments import IRIS_CHECK
from agent.core.transmission import retry_delay
from agent.fiscal.amounts import DocumentTotals
from agent.fiscal.deadlines import transmission_deadline
from tests.offline_store.factory import issue, open_store


@pytest.mark.parametrize(
    ("issued", "due"),
    [
        (datetime(2026, 11, 22, 0, 0, 1, tzinfo=ATHENS), datetime(2026, 11, 24, tzinfo=ATHENS)),
        (datetime(2026, 11, 22, 23, 59, 59, tzinfo=ATHENS), datetime(2026, 11, 24, tzinfo=ATHENS)),
        # across the change to summer time the deadline is still Athens midnight
        (datetime(2026, 3, 28, 12, 0, tzinfo=ATHENS), datetime(2026, 3, 30, tzinfo=ATHENS)),
    ],
)
def test_deadline_is_end_of_the_next_day_in_athens(issued, due):
    assert transmission_deadline(issued) == due


def test_deadline_of_a_utc_time_uses_the_greek_date():
    from datetime import UTC

    issued = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # already 23 Nov in Athens
    assert transmission_deadline(issued) == datetime(2026, 11, 25, tzinfo=ATHENS)


def test_breaker_keeps_the_latest_outage_and_closes_once():
    breaker = CircuitBreaker()
    assert not breaker.is_open
    breaker.record_failure("timeout", 1)
    breaker.record_failure("408", 2)
    assert breaker.is_open
    assert (breaker.last_failure, breaker.delayed_code) == ("408", 2)
    probe = breaker.generation  # a call sent while open (the probe)
    assert breaker.record_success(probe) is True
    assert not breaker.is_open
    assert breaker.record_success(probe) is False


def test_an_answer_sent_before_the_breaker_opened_does_not_close_it():
    breaker = CircuitBreaker()
    in_flight = breaker.generation  # four sync calls go out...
    breaker.record_failure("ConnectError", 1)  # ...one fails: open
    assert breaker.record_success(in_flight) is False  # the others' late answers
    assert breaker.is_open
    assert breaker.record_success(breaker.generation) is True  # the probe's answer
    later = breaker.generation
    breaker.record_failure("ReadTimeout", 1)
    assert breaker.record_success(later) is False


def test_backoff_grows_and_is_capped():
    delays = [retry_delay(n, base_s=5, max_s=600).total_seconds() for n in range(12)]
    assert 2.5 <= delays[0] <= 5
    assert all(300 <= d <= 600 for d in delays[8:])


def test_signed_input_is_parsed_field_by_field():
    parsed = parse_signed_input(
        "1686345696C2FCC2B51FBA922E502A84C7021BBA;0;20240717103906;800;104;904;904;08104148"
    )
    assert parsed == SignedFields(
        uid="1686345696C2FCC2B51FBA922E502A84C7021BBA",
        mark="0",
        timestamp="20240717103906",
        amounts_cents=[800, 104, 904, 904],
        terminal_id="08104148",
    )
    assert parse_signed_input("U;;20240101000000;1;2;3;4;T").mark is None
    with pytest.raises(ValueError):
        parse_signed_input("U;1;2")


def test_signed_input_is_checked_against_the_document_in_each_payments_words(tmp_path: Path):
    doc = issue(open_store(tmp_path), "sale-1")
    amounts = DocumentTotals(net=Decimal("8.00"), vat=Decimal("1.04"), gross=Decimal("9.04"))
    good = f"{doc.uid};;20260115100000;800;104;904;904;T1"
    parsed = check_signed_input(good, doc, amounts, Decimal("9.04"), "T1", CARD_CHECK)
    assert parsed.terminal_id == "T1"
    wrong = f"{doc.uid};;20260115100000;800;104;904;900;T2"
    with pytest.raises(ProviderSignatureMismatch) as card:
        check_signed_input(wrong, doc, amounts, Decimal("9.04"), "T1", CARD_CHECK)
    assert str(card.value) == (
        "the provider signed different data (amounts, terminal id); the card must not be charged"
    )
    with pytest.raises(ProviderSignatureMismatch) as iris:
        check_signed_input(wrong, doc, amounts, Decimal("9.04"), "T1", IRIS_CHECK)
    assert str(iris.value) == (
        "the provider signed different data for the IRIS payment (amounts, merchant id); "
        "do not show its QR"
    )
    with pytest.raises(ProviderSignatureUnusable, match="signed IRIS input is malformed"):
        check_signed_input("U;1", doc, amounts, Decimal("9.04"), "T1", IRIS_CHECK)
