"""What a provider call's outcome tells the breaker and the credentials alarm.

One rule for every call that can fail on the provider's side (receipt sends, card signing, card
payments on MARKed receipts): an answer closes the breaker (unless it opened after the call went
out, see `CircuitBreaker`) and clears the credentials alarm; a 401 raises the alarm; a 408 or no
answer opens the breaker with the delayed code that offline receipts must then carry. A 408 on
a call AADE has no part in (signpos) is the provider still busy with the same document: it
proves the provider up and says nothing of AADE, so it changes nothing.
"""

from __future__ import annotations

from agent.core.breaker import AADE_DOWN_CODE, UNREACHABLE_CODE
from agent.core.runtime import Runtime
from agent.elise.outcomes import AadeDown, Unauthorized, Unreachable

__all__ = ["AADE_DOWN_CODE", "UNREACHABLE_CODE", "note_outcome"]


def note_outcome(rt: Runtime, outcome: object, sent_in: int, *, reaches_aade: bool = True) -> None:
    """`sent_in`: the breaker's generation when the call went out. `reaches_aade=False` for a
    call AADE has no part in (signpos): there a 408 is a retry, not an outage, and a success
    proves the provider up but leaves a breaker opened by an AADE outage open."""
    breaker = rt.breaker
    match outcome:
        case AadeDown() if not reaches_aade:
            return
        case AadeDown():
            breaker.record_failure("AADE unavailable (408)", AADE_DOWN_CODE)
        case Unauthorized():
            rt.credentials.message = outcome.message
            breaker.record_failure("provider refused the credentials (401)", UNREACHABLE_CODE)
        case Unreachable():
            breaker.record_failure(outcome.reason, UNREACHABLE_CODE)
        case _:
            breaker.record_success(sent_in, reaches_aade=reaches_aade)
            rt.credentials.message = None
