"""Who may come in by phone: a typed code (and entry code) → the conference, or a reason for refusal.

The reasons are told apart for logs and the audit trail only: the caller hears the same words for each of them, so
probing the keypad learns nothing but "no" (see the phone issue's IVR).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rooms.views import ConferenceView


class Refusal(StrEnum):
    MALFORMED = "malformed"  # not 9 digits
    BAD_CHECK_DIGIT = "bad-check-digit"  # a typo: no database lookup needed
    UNKNOWN = "unknown"  # well-formed, but no live conference has it
    NOT_YET_OPEN = "not-yet-open"
    ENDED = "ended"
    WRONG_ENTRY_CODE = "wrong-entry-code"


class DialInOutcome(StrEnum):
    ADMITTED = "admitted"
    ENTRY_CODE_NEEDED = "entry-code-needed"  # the code is right; ask for the entry code, then resolve again
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class DialInDecision:
    outcome: DialInOutcome
    conference: ConferenceView | None = None
    refusal: Refusal | None = None

    @classmethod
    def refused(cls, reason: Refusal, conference: ConferenceView | None = None) -> DialInDecision:
        return cls(DialInOutcome.REFUSED, conference, reason)

    @property
    def admitted(self) -> bool:
        return self.outcome is DialInOutcome.ADMITTED
