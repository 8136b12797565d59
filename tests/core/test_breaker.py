"""The breaker tells "provider unreachable" (code 1) from "AADE down" (code 2)."""

from agent.core.breaker import AADE_DOWN_CODE, UNREACHABLE_CODE, CircuitBreaker


def test_an_aade_outage_leaves_the_provider_reachable_for_signing() -> None:
    breaker = CircuitBreaker()
    breaker.record_failure("AADE unavailable (408)", AADE_DOWN_CODE)
    assert breaker.is_open and not breaker.provider_unreachable
    # A signature (no AADE involved) does not close it; an AADE-bound success does.
    assert breaker.record_success(breaker.generation, reaches_aade=False) is False
    assert breaker.is_open
    assert breaker.record_success(breaker.generation) is True
    assert not breaker.is_open


def test_an_unreachable_provider_stops_signing_too() -> None:
    breaker = CircuitBreaker()
    breaker.record_failure("ConnectError", UNREACHABLE_CODE)
    assert breaker.provider_unreachable
    # Any answer proves the provider reachable again.
    assert breaker.record_success(breaker.generation, reaches_aade=False) is True
    assert not breaker.provider_unreachable
