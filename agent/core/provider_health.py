"""What a provider call's outcome tells the breaker and the credentials alarm.

One rule for every call that can fail on the provider's side (receipt sends, card signing, card
payments on MARKed receipts): an answer closes the breaker (unless it opened after the call went
out, see `CircuitBreaker`) and clears the credentials alarm; a 401 raises the alarm; a 408 or no
answer opens the breaker with the delayed code that offline receipts must then carry.
"""

from __future__ import annotations

from agent.core.runtime import Runtime
from agent.elise.outcomes import AadeDown, Unauthorized, Unreachable

UNREACHABLE_CODE = 1
AADE_DOWN_CODE = 2


def note_outcome(
    rt: Runtime, outcome: object, sent_in: int, *, aade_down_code: int = AADE_DOWN_CODE
) -> None:
    """`sent_in`: the breaker's generation when the call went out. `aade_down_code`: the code a
    408 stands for (signpos does not involve AADE, so there it means the provider: code 1)."""
    breaker = rt.breaker
    match outcome:
        case AadeDown():
            breaker.record_failure("AADE unavailable (408)", aade_down_code)
        case Unauthorized():
            rt.credential_alarm = outcome.message
            breaker.record_failure("provider refused the credentials (401)", UNREACHABLE_CODE)
        case Unreachable():
            breaker.record_failure(outcome.reason, UNREACHABLE_CODE)
        case _:
            breaker.record_success(sent_in)
            rt.credential_alarm = None
