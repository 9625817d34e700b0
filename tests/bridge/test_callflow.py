"""The phone call flow on virtual time: the engine ticks as fast as the test runs, time advancing 20 ms a tick.

Virtual time stands still while the flow's database work (run in threads) is under way, so a slow machine or a
loaded database cannot make a call seem to take longer than it does.
"""

from __future__ import annotations

import asyncio
import threading
import wave
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from bridge import BufferLeg, Engine
from bridge.callflow import Call, CallFlow, CallOutcome, Lobby
from bridge.prompts import PromptLibrary
from bridge.prompts.library import NAMES
from config import Language, Settings
from rooms import AuditKind, ConferenceDraft, Rooms
from rooms.throttle import Key
from tests.conftest import FakeClock
from tests.mixer.signals import magnitude_db, tone

T = TypeVar("T")
PROMPT_HZ = {name: 300.0 + 50 * i for i, name in enumerate(sorted(NAMES))}


@pytest.fixture
def short_prompts(tmp_path: Path) -> PromptLibrary:
    """Every prompt a 60 ms tone of its own frequency (so a test can tell which one played), numbers too."""
    for language in ("fr", "en"):
        for name, hz in list(PROMPT_HZ.items()) + [(f"number_{n}", 3000.0) for n in range(100)]:
            path = tmp_path / language / f"{name}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(8000)
                amplitude = 8000 if language == "fr" else 4000
                w.writeframes(tone(hz, 480, amplitude, rate=8000).astype("<i2").tobytes())
    return PromptLibrary(tmp_path)


class _CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor (``asyncio.to_thread``), telling how many jobs are queued or running."""

    def __init__(self) -> None:
        super().__init__(max_workers=16, thread_name_prefix="flow-db")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def submit(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> Future[T]:
        with self._lock:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1


class Harness:
    def __init__(self, rooms: Rooms, settings: Settings, prompts: PromptLibrary, clock: FakeClock) -> None:
        self.engine = Engine()
        self.clock = clock
        self.lobby = Lobby()
        self.limits = rooms.code_limits
        self.hosts: set[str] = set()
        # Real seconds per 20 ms tick, for the flow's coroutines to run; the clock waits for its threads besides.
        self.tick_sleep_s = 0.0005
        self.executor: _CountingExecutor | None = None
        self.flow = CallFlow(
            engine=self.engine, rooms=rooms, prompts=prompts, settings=settings,
            lobby=self.lobby, now=lambda: clock.now.timestamp(), host_present=lambda room: str(room) in self.hosts,
        )  # fmt: skip
        self.played: list[str] = []
        original = self.flow._play

        def spy(call: Call, names: list[str], *, replace_room: bool = True) -> asyncio.Future[bool]:
            self.played.extend(names)
            return original(call, names, replace_room=replace_room)

        self.flow._play = spy  # type: ignore[method-assign]

    def failures(self, key: str) -> int:
        policy = self.limits.conference if key.startswith("conference:") else self.limits.caller
        return self.limits.throttle.failures(Key(key, policy))

    async def ticker(self, stop: asyncio.Event) -> None:
        from datetime import timedelta

        while not stop.is_set():
            self.engine.tick()
            await asyncio.sleep(self.tick_sleep_s)
            # Time stands still until the store has answered what the flow asked it (and the answers were read).
            while self.executor is not None and self.executor.pending and not stop.is_set():
                await asyncio.sleep(0.0005)
            await asyncio.sleep(0)
            self.clock.advance(timedelta(milliseconds=20))

    def call(
        self, leg: BufferLeg, digits: str = "", caller: str | None = "+33612345678", source: str = "192.0.2.10"
    ) -> Call:
        hung: list[bool] = []
        call = Call(leg=leg, caller_e164=caller, source=source, hangup=lambda: hung.append(True))
        for digit in digits:
            call.digits.put_nowait(digit)
        return call

    def run(self, scenario: Callable[[], Awaitable[T]], limit_s: float = 30) -> T:
        async def main() -> T:
            self.executor = _CountingExecutor()
            asyncio.get_running_loop().set_default_executor(self.executor)
            stop = asyncio.Event()
            ticking = asyncio.create_task(self.ticker(stop))
            try:
                return await asyncio.wait_for(scenario(), limit_s)
            finally:
                stop.set()
                await ticking

        return asyncio.run(main())


@pytest.fixture
def harness(rooms: Rooms, settings: Settings, short_prompts: PromptLibrary, clock: FakeClock) -> Harness:
    return Harness(rooms, settings, short_prompts, clock)


def open_conference(rooms: Rooms, **kw: object) -> tuple[str, str]:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off", **kw))  # type: ignore[arg-type]
    return str(conference.id), conference.code


async def join_then_hang_up(harness: Harness, call: Call, room: str) -> CallOutcome:
    """Run the call until it is in ``room``, then hang up; the flow's outcome."""
    flow = asyncio.create_task(harness.flow.run(call))
    while call.leg.id not in harness.engine.legs_in(room):
        await harness.engine.next_tick()
    call.leg.close()
    return await flow


async def hang_up_after(leg: BufferLeg, engine: Engine, ticks: int) -> None:
    for _ in range(ticks):
        await engine.next_tick()
    leg.close()


def test_callflow_code_then_joined_hears_the_room(harness: Harness, rooms: Rooms) -> None:
    room, code = open_conference(rooms)
    doctor = BufferLeg("doctor", 8000, tone(1900, 8000 * 10, 6000, rate=8000))
    harness.engine.join(room, doctor)
    patient = BufferLeg("patient", 8000, tone(700, 8000 * 10, 6000, rate=8000))
    call = harness.call(patient, code + "#")

    async def scenario() -> object:
        flow = asyncio.create_task(harness.flow.run(call))
        while "patient" not in harness.engine.legs_in(room):
            await harness.engine.next_tick()
        await hang_up_after(patient, harness.engine, 50)
        return await flow

    assert harness.run(scenario) is CallOutcome.ENDED
    assert harness.played[0] == "welcome"
    heard = patient.recording()[-4000:]
    assert magnitude_db(heard, 1900, rate=8000) > -20
    assert magnitude_db(heard, 700, rate=8000) < -60
    assert magnitude_db(doctor.recording()[-4000:], 700, rate=8000) > -20
    assert "patient" not in harness.engine


def test_callflow_entry_code(harness: Harness, rooms: Rooms) -> None:
    room, code = open_conference(rooms, entry_code="2468")
    patient = BufferLeg("patient", 8000)
    call = harness.call(patient, code + "#" + "2468#")

    assert harness.run(lambda: join_then_hang_up(harness, call, room)) is CallOutcome.ENDED
    assert harness.played[:3] == ["welcome", "enter_entry_code", "first_participant"]


def test_callflow_three_wrong_codes_same_words_then_goodbye(harness: Harness, rooms: Rooms) -> None:
    _, code = open_conference(rooms, entry_code="2468")
    closed = rooms.create_conference(ConferenceDraft(name="Past", start="2026-11-28T10:00", end="2026-11-28T10:30"))
    unknown = "123456780"
    patient = BufferLeg("patient", 8000)
    # an unknown code, a wrong entry code, a conference already over
    call = harness.call(patient, unknown + "#" + code + "#" + "1111#" + closed.code + "#")
    from datetime import timedelta

    harness.clock.advance(timedelta(hours=3))
    outcome = harness.run(lambda: harness.flow.run(call))
    assert outcome is CallOutcome.REFUSED
    assert harness.played == [
        "welcome", "wrong_code", "enter_code", "enter_entry_code", "wrong_code", "enter_code", "goodbye_attempts",
    ]  # fmt: skip
    reasons = [str(e.detail.get("reason")) for e in rooms.audit_events() if e.kind is AuditKind.DIAL_IN_REFUSED]
    assert sorted(reasons) == ["bad-check-digit", "ended", "wrong-entry-code"]
    assert harness.failures("caller:+33612345678") == 3
    assert harness.failures("caller:192.0.2.10") == 0, "the From host is never a key"


def test_callflow_a_number_past_its_allowance_is_slowed_not_locked_out(harness: Harness, rooms: Rooms) -> None:
    room, code = open_conference(rooms)
    harness.limits.throttle.record_failure([Key("caller:+33612345678", harness.limits.caller)] * 10)
    patient = BufferLeg("patient", 8000)
    call = harness.call(patient, code + "#")
    start = harness.clock.now

    async def scenario() -> float:
        flow = asyncio.create_task(harness.flow.run(call))
        while "patient" not in harness.engine.legs_in(room):
            await harness.engine.next_tick()
        waited = (harness.clock.now - start).total_seconds()
        patient.close()
        await flow
        return waited

    waited = harness.run(scenario)
    assert harness.played[:2] == ["please_wait", "welcome"]
    assert 5.0 <= waited <= 8.0, waited  # delay_initial_s after its last failure, then the code
    assert harness.failures("caller:+33612345678") == 10, "the right code's try is taken back"
    other = harness.call(BufferLeg("other", 8000), code + "#", caller="+33699999999")
    harness.played.clear()
    harness.run(lambda: join_then_hang_up(harness, other, room))
    assert harness.played[0] == "welcome", "another number is not slowed"


def test_callflow_silence_times_out_three_times(harness: Harness, rooms: Rooms) -> None:
    call = harness.call(BufferLeg("patient", 8000))
    start = harness.clock.now
    assert harness.run(lambda: harness.flow.run(call)) is CallOutcome.REFUSED
    waited = (harness.clock.now - start).total_seconds()
    assert 30 <= waited <= 34  # 3 × 10 s first-digit timeout, plus the short prompts
    assert harness.failures("caller:+33612345678") == 0  # silence is no guess


def test_callflow_star_switches_to_english(harness: Harness, rooms: Rooms) -> None:
    room, code = open_conference(rooms)
    patient = BufferLeg("patient", 8000)
    call = harness.call(patient, "*" + code + "#")

    harness.run(lambda: join_then_hang_up(harness, call, room))
    assert call.language is Language.EN
    assert harness.played[:2] == ["welcome", "welcome"]


def test_callflow_lobby_isolation_then_admission(harness: Harness, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Always", lobby_mode="always"))
    room = str(conference.id)
    doctor = BufferLeg("doctor", 8000, tone(1900, 8000 * 20, 6000, rate=8000))
    harness.engine.join(room, doctor)
    patient = BufferLeg("patient", 8000, tone(700, 8000 * 20, 6000, rate=8000))
    call = harness.call(patient, conference.code + "#")

    async def scenario() -> tuple[np.ndarray, np.ndarray]:
        flow = asyncio.create_task(harness.flow.run(call))
        while not harness.lobby.in_room(room):
            await harness.engine.next_tick()
        for _ in range(100):
            await harness.engine.next_tick()
        in_lobby = (patient.recording()[-8000:].copy(), doctor.recording()[-8000:].copy())
        assert harness.lobby.admit("patient")
        for _ in range(100):
            await harness.engine.next_tick()
        patient.close()
        await flow
        return in_lobby

    patient_lobby, doctor_lobby = harness.run(scenario)
    assert magnitude_db(patient_lobby, 1900, rate=8000) < -60  # neither hears nor is heard
    assert magnitude_db(doctor_lobby, 700, rate=8000) < -60
    assert magnitude_db(patient_lobby, PROMPT_HZ["waiting_host"], rate=8000) > -25  # the waiting prompt
    assert magnitude_db(patient.recording()[-8000:], 1900, rate=8000) > -20
    assert magnitude_db(doctor.recording()[-8000:], 700, rate=8000) > -20


def test_callflow_lobby_denied(harness: Harness, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Always", lobby_mode="always"))
    call = harness.call(BufferLeg("patient", 8000), conference.code + "#")

    async def scenario() -> object:
        flow = asyncio.create_task(harness.flow.run(call))
        while not harness.lobby.in_room(str(conference.id)):
            await harness.engine.next_tick()
        assert harness.lobby.deny("patient")
        return await flow

    assert harness.run(scenario) is CallOutcome.DENIED
    assert harness.played[-1] == "denied"


def test_callflow_until_host_waits_for_a_host(harness: Harness, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Clinic", lobby_mode="until-host"))
    room = str(conference.id)
    patient = BufferLeg("patient", 8000)
    call = harness.call(patient, conference.code + "#")

    async def scenario() -> object:
        flow = asyncio.create_task(harness.flow.run(call))
        while not harness.lobby.in_room(room):
            await harness.engine.next_tick()
        harness.hosts.add(room)  # the doctor arrives
        while "patient" not in harness.engine.legs_in(room):
            await harness.engine.next_tick()
        patient.close()
        return await flow

    assert harness.run(scenario) is CallOutcome.ENDED


def test_callflow_in_call_keys_mute_count_help(harness: Harness, rooms: Rooms) -> None:
    room, code = open_conference(rooms)
    listener = BufferLeg("listener", 8000)
    harness.engine.join(room, listener)
    patient = BufferLeg("patient", 8000, tone(700, 8000 * 30, 6000, rate=8000))
    call = harness.call(patient, code + "#")

    async def scenario() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        flow = asyncio.create_task(harness.flow.run(call))
        while "patient" not in harness.engine.legs_in(room):
            await harness.engine.next_tick()
        for _ in range(50):
            await harness.engine.next_tick()
        before = listener.recording()[-4000:].copy()
        for key in "*6":
            call.digits.put_nowait(key)
        for _ in range(50):
            await harness.engine.next_tick()
        muted = listener.recording()[-4000:].copy()
        for key in "*6*#*0":
            call.digits.put_nowait(key)
        for _ in range(50):
            await harness.engine.next_tick()
        after = listener.recording()[-4000:].copy()
        patient.close()
        await flow
        return before, muted, after

    before, muted, after = harness.run(scenario)
    assert magnitude_db(before, 700, rate=8000) > -20
    assert magnitude_db(muted, 700, rate=8000) < -60
    assert magnitude_db(after, 700, rate=8000) > -20
    assert harness.played[-3:] == ["muted", "unmuted", "help"]  # *# is spoken as a number, not a named prompt


def test_callflow_host_mute_star_six_star_nine_and_take_out(harness: Harness, rooms: Rooms) -> None:
    room, code = open_conference(rooms)
    listener = BufferLeg("listener", 8000)
    harness.engine.join(room, listener)
    patient = BufferLeg("patient", 8000, tone(700, 8000 * 30, 6000, rate=8000))
    call = harness.call(patient, code + "#")
    hands: list[str] = []

    def hand(leg: str, in_room: str) -> bool:
        assert in_room == room
        if leg in hands:
            hands.remove(leg)
        else:
            hands.append(leg)
        return leg in hands

    harness.flow.on_hand = hand

    async def ticks(n: int) -> None:
        for _ in range(n):
            await harness.engine.next_tick()

    async def scenario() -> tuple[np.ndarray, np.ndarray, list[str], list[str], CallOutcome]:
        flow = asyncio.create_task(harness.flow.run(call))
        while "patient" not in harness.engine.legs_in(room):
            await harness.engine.next_tick()
        await ticks(50)
        assert harness.flow.mute_by_host("patient")
        assert not harness.flow.mute_by_host("listener"), "not a caller of this flow"
        await ticks(50)
        muted = listener.recording()[-4000:].copy()
        for key in "*6":  # the caller speaks again: *6 reads the mute as it is now (set by the host)
            call.digits.put_nowait(key)
        await ticks(50)
        again = listener.recording()[-4000:].copy()
        for key in "*9":
            call.digits.put_nowait(key)
        await ticks(10)
        raised = list(hands)
        for key in "*9":
            call.digits.put_nowait(key)
        await ticks(10)
        assert not harness.flow.take_out("patient", "another room")
        assert harness.flow.take_out("patient", room)
        outcome = await asyncio.wait_for(flow, 20)
        return muted, again, raised, list(hands), outcome

    muted, again, raised, lowered, outcome = harness.run(scenario)
    assert magnitude_db(muted, 700, rate=8000) < -60
    assert magnitude_db(again, 700, rate=8000) > -20
    assert (raised, lowered) == (["patient"], [])
    assert outcome is CallOutcome.ENDED
    assert harness.played[-5:] == ["muted_by_host", "unmuted", "hand_raised", "hand_lowered", "taken_out"]
    assert patient.closed


def test_callflow_join_and_leave_tones_for_the_others(harness: Harness, rooms: Rooms) -> None:
    room, code = open_conference(rooms)
    doctor = BufferLeg("doctor", 8000)
    harness.engine.join(room, doctor)
    patient = BufferLeg("patient", 8000)
    call = harness.call(patient, code + "#")

    async def scenario() -> tuple[np.ndarray, np.ndarray]:
        flow = asyncio.create_task(harness.flow.run(call))
        while "patient" not in harness.engine.legs_in(room):
            await harness.engine.next_tick()
        start = len(doctor.heard)
        for _ in range(20):
            await harness.engine.next_tick()
        joined = np.concatenate(doctor.heard[start:])
        patient.close()
        await flow
        start = len(doctor.heard)
        for _ in range(20):
            await harness.engine.next_tick()
        return joined, np.concatenate(doctor.heard[start:])

    joined, left = harness.run(scenario)
    first, second = slice(0, 720), slice(1040, 1760)  # the two 90 ms beeps, 40 ms apart
    assert magnitude_db(joined[first], 660, rate=8000) > -25  # rising on join…
    assert magnitude_db(joined[second], 990, rate=8000) > -25
    assert magnitude_db(left[first], 990, rate=8000) > -25  # …falling on leave
    assert magnitude_db(left[second], 660, rate=8000) > -25
    assert np.abs(joined[2000:]).max() == 0  # then the (silent) room again
    assert "first_participant" not in harness.played  # the doctor was there first


def test_callflow_during_a_guessing_attack_the_right_codes_get_in_within_a_minute(
    harness: Harness, rooms: Rooms
) -> None:
    """Ten calls at a time from five numbers keep typing wrong entry codes for one conference; once it is
    slowed (one try at a time, at most every delay_max_s), a patient who dials with the right codes still gets in
    within 60 s, and the attack is in the audit trail."""
    room, code = open_conference(rooms, entry_code="482193")
    guesses = iter(range(100_000, 999_999))

    def attacker(n: int) -> Call:
        digits = "".join(f"{code}#{next(guesses)}#" for _ in range(3))
        return harness.call(BufferLeg(f"attacker-{n}", 8000), digits, caller=f"+3361000000{n % 5}",
                            source=f"198.51.100.{n % 5}")  # fmt: skip

    async def scenario() -> tuple[float, int]:
        serial = iter(range(10_000))
        attacks = {asyncio.create_task(harness.flow.run(attacker(next(serial)))) for _ in range(10)}
        conference_key = f"conference:{room}"
        while harness.failures(conference_key) < rooms.code_limits.conference.free:
            await harness.engine.next_tick()
            for done in [t for t in attacks if t.done()]:
                attacks.discard(done)
                attacks.add(asyncio.create_task(harness.flow.run(attacker(next(serial)))))
        patient = BufferLeg("patient", 8000)
        start = harness.clock.now
        flow = asyncio.create_task(
            harness.flow.run(harness.call(patient, f"{code}#482193#", caller="+33698765432", source="203.0.113.9"))
        )
        while "patient" not in harness.engine.legs_in(room):
            await harness.engine.next_tick()
            for done in [t for t in attacks if t.done()]:
                attacks.discard(done)
                attacks.add(asyncio.create_task(harness.flow.run(attacker(next(serial)))))
            assert not flow.done(), "the patient was turned away"
        waited = (harness.clock.now - start).total_seconds()
        patient.close()
        for task in attacks:
            task.cancel()
        await asyncio.gather(flow, *attacks, return_exceptions=True)
        return waited, harness.failures(conference_key)

    waited, failures = harness.run(scenario, limit_s=240)
    assert waited <= 60, f"the patient waited {waited:.0f} s"
    assert failures >= rooms.code_limits.conference.free
    guessing = [e for e in rooms.audit_events(limit=1000) if e.kind is AuditKind.CODE_GUESSING]
    assert len(guessing) == 1, "one alarm per window, not one per wrong code"


def test_callflow_an_ended_conference_takes_its_callers_out_with_a_word(harness: Harness, rooms: Rooms) -> None:
    room, code = open_conference(rooms)
    doctor = BufferLeg("doctor", 8000, tone(1900, 8000 * 30, 6000, rate=8000))
    harness.engine.join(room, doctor)
    patient = BufferLeg("patient", 8000)
    call = harness.call(patient, code + "#")

    async def scenario() -> tuple[object, bool]:
        flow = asyncio.create_task(harness.flow.run(call))
        while "patient" not in harness.engine.legs_in(room):
            await harness.engine.next_tick()
        harness.played.clear()
        harness.flow.end_room(room)
        heard_room_after = False
        while not flow.done():
            await harness.engine.next_tick()
            heard_room_after |= "patient" in harness.engine.legs_in(room)
        return await flow, heard_room_after

    outcome, heard_room_after = harness.run(scenario)
    assert outcome is CallOutcome.ENDED
    assert harness.played == ["conference_ended"]
    assert not heard_room_after, "out of the mix at once, before the words"
    assert "patient" not in harness.engine
    assert call.leg.closed


def test_callflow_a_locked_room_turns_away_a_caller_with_the_right_codes_without_counting_a_failure(
    harness: Harness, rooms: Rooms
) -> None:
    room, code = open_conference(rooms, entry_code="2468")
    locked = {room}
    harness.flow.room_locked = lambda r: str(r) in locked
    turned_away = harness.call(BufferLeg("patient", 8000), code + "#" + "2468#")
    later = harness.call(BufferLeg("later", 8000), code + "#" + "2468#", caller="+33698765432")

    async def scenario() -> tuple[CallOutcome, bool, CallOutcome]:
        first = await harness.flow.run(turned_away)
        was_in = "patient" in harness.engine.legs_in(room)
        locked.clear()  # the host unlocks
        return first, was_in, await join_then_hang_up(harness, later, room)

    first, was_in, second = harness.run(scenario)
    assert first is CallOutcome.LOCKED
    assert not was_in
    assert harness.played[:3] == ["welcome", "enter_entry_code", "locked"]
    assert harness.failures(f"conference:{room}") == 0, "a right code in a locked room counted as a guess"
    assert harness.failures("caller:+33612345678") == 0
    assert second is CallOutcome.ENDED


def test_callflow_a_room_whose_node_cannot_be_looked_up_is_joined_here(harness: Harness, rooms: Rooms) -> None:
    """In a cluster, the shared database away at the moment of the room's lookup: the caller is let in here (its
    room mixed on this node) rather than dropped; the relay is never asked."""
    from rooms.cluster import Cluster

    class Unreachable(Cluster):
        def claim(self, conference_id: object) -> Any:
            raise OSError("the database is away")

    relayed: list[object] = []

    async def relay(call: Call, conference_id: object, home: object) -> CallOutcome:
        relayed.append(conference_id)
        return CallOutcome.ENDED

    harness.flow.cluster = Unreachable(rooms.sessions, "node-a", "", "")
    harness.flow.relay = relay
    room, code = open_conference(rooms)
    patient = BufferLeg("patient", 8000)
    call = harness.call(patient, code + "#")
    assert harness.run(lambda: join_then_hang_up(harness, call, room)) is CallOutcome.ENDED
    assert relayed == []
