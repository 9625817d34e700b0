from __future__ import annotations

from dtmf.entry import CodeEntry, EntryOutcome, EntryResult, InCallKey, InCallKeys


def typed(entry: CodeEntry, keys: str, start: float = 0.0, step: float = 0.5) -> list[EntryOutcome | None]:
    entry.start(start)
    return [entry.feed(k, start + step * (i + 1)) for i, k in enumerate(keys)]


def test_entry_code_ended_by_hash() -> None:
    entry = CodeEntry(max_digits=9)
    outcomes = typed(entry, "123456789#")
    assert outcomes[:-1] == [None] * 9
    final = outcomes[-1]
    assert final is not None
    assert final.result is EntryResult.CODE
    assert final.digits == "123456789"
    assert "123456789" not in repr(final)


def test_entry_submits_at_max_length_when_asked() -> None:
    entry = CodeEntry(max_digits=9, submit_at_max=True)
    outcome = typed(entry, "123456789")[-1]
    assert outcome is not None
    assert outcome.result is EntryResult.CODE


def test_entry_too_long() -> None:
    entry = CodeEntry(max_digits=8)
    outcome = typed(entry, "123456789")[-1]
    assert outcome is not None
    assert outcome.result is EntryResult.TOO_LONG


def test_entry_star_restarts() -> None:
    entry = CodeEntry(max_digits=4)
    outcome = typed(entry, "12*4321#")[-1]
    assert outcome is not None
    assert outcome.digits == "4321"


def test_entry_first_digit_timeout() -> None:
    entry = CodeEntry(max_digits=9, first_digit_timeout_s=10, inter_digit_timeout_s=5)
    entry.start(100.0)
    assert entry.deadline == 110.0
    assert entry.poll(109.9) is None
    outcome = entry.poll(110.0)
    assert outcome is not None
    assert outcome.result is EntryResult.TIMEOUT
    assert outcome.digits == ""


def test_entry_inter_digit_timeout() -> None:
    entry = CodeEntry(max_digits=9, first_digit_timeout_s=10, inter_digit_timeout_s=5)
    entry.start(0.0)
    assert entry.feed("1", 9.0) is None
    assert entry.deadline == 14.0
    assert entry.feed("2", 13.0) is None
    late = entry.feed("3", 18.5)  # more than 5 s after the last digit: the entry had already timed out
    assert late is not None
    assert late.result is EntryResult.TIMEOUT
    assert late.digits == "12"
    assert entry.deadline is None


def test_entry_ignores_letters_and_finished_state() -> None:
    entry = CodeEntry(max_digits=4)
    outcome = typed(entry, "1A2B3C4D#")[-1]
    assert outcome is not None
    assert outcome.digits == "1234"
    assert entry.feed("5", 99.0) is outcome  # done: further keys change nothing


def test_entry_empty_code_on_hash() -> None:
    entry = CodeEntry(max_digits=4)
    outcome = typed(entry, "#")[-1]
    assert outcome is not None
    assert outcome.result is EntryResult.CODE
    assert outcome.digits == ""


def test_in_call_keys() -> None:
    keys = InCallKeys(timeout_s=3.0)
    assert keys.feed("*", 0.0) is None
    assert keys.feed("6", 1.0) is InCallKey.MUTE
    assert keys.feed("6", 1.5) is None  # 6 alone does nothing
    assert keys.feed("*", 2.0) is None
    assert keys.feed("#", 2.5) is InCallKey.COUNT
    assert keys.feed("*", 3.0) is None
    assert keys.feed("0", 7.0) is None  # too late
    assert keys.feed("*", 8.0) is None
    assert keys.feed("5", 8.5) is None  # no such key
    assert keys.feed("*", 8.6) is None
    assert keys.feed("9", 8.7) is InCallKey.HAND
    assert keys.feed("*", 9.0) is None
    assert keys.feed("0", 9.1) is InCallKey.HELP
