from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bridge import BufferLeg, Engine, MediaClock
from bridge.leg import Leg, LegKind
from mixer import DominantSpeakerChanged, MixerEvent
from tests.mixer.signals import magnitude_db, tone


def tone_at(freq: float, rate: int, seconds: float, amplitude: float = 6000.0) -> np.ndarray:
    return tone(freq, int(rate * seconds), amplitude, rate=rate)


def run_ticks(engine: Engine, ticks: int) -> None:
    for _ in range(ticks):
        engine.tick()


def test_engine_phone_and_wideband_legs_hear_each_other_not_themselves() -> None:
    engine = Engine()
    legs = {
        "phone": (BufferLeg("phone", 8000, tone_at(500, 8000, 2)), 500.0),
        "g722": (BufferLeg("g722", 16000, tone_at(1100, 16000, 2)), 1100.0),
        "web": (BufferLeg("web", 48000, tone_at(2300, 48000, 2)), 2300.0),
    }
    for leg, _ in legs.values():
        engine.join("consult", leg)
    run_ticks(engine, 50)
    for name, (leg, own) in legs.items():
        heard = leg.recording()[leg.rate_hz // 2 :]  # after the first half second
        for other, (_, freq) in legs.items():
            if other == name:
                continue
            assert magnitude_db(heard, freq, rate=leg.rate_hz) > -20, (name, other)
        assert magnitude_db(heard, own, rate=leg.rate_hz) < -60, name


def test_engine_failing_leg_is_closed_and_the_room_goes_on() -> None:
    class Broken(BufferLeg):
        def read(self) -> np.ndarray | None:
            raise OSError("socket gone")

    engine = Engine()
    closed: list[str] = []
    engine.on_leg_closed = lambda leg_id, room: closed.append(leg_id)
    a = BufferLeg("a", 8000, tone_at(500, 8000, 1))
    b = BufferLeg("b", 8000)
    broken = Broken("broken", 8000)
    for leg in (a, b, broken):
        engine.join("room", leg)
    run_ticks(engine, 25)
    assert closed == ["broken"]
    assert broken.closed
    assert "broken" not in engine
    assert engine.legs_in("room") == ["a", "b"]
    assert magnitude_db(b.recording()[2000:], 500, rate=8000) > -20


def test_engine_write_failure_also_closes_only_that_leg() -> None:
    class Deaf(BufferLeg):
        def write(self, frame: np.ndarray) -> None:
            raise RuntimeError("encoder crashed")

    engine = Engine()
    a, deaf = BufferLeg("a", 8000, tone_at(500, 8000, 1)), Deaf("deaf", 8000)
    b = BufferLeg("b", 8000)
    for leg in (a, deaf, b):
        engine.join("room", leg)
    run_ticks(engine, 10)
    assert "deaf" not in engine
    assert len(b.recording()) == 10 * 160


def test_engine_missing_and_malformed_frames_are_silence_and_counted() -> None:
    class Short(BufferLeg):
        def read(self) -> np.ndarray | None:
            return np.ones(100, np.int16)  # a wrong size: never mixed

    engine = Engine()
    a = BufferLeg("a", 8000, tone_at(500, 8000, 0.2), stop_at_end=True)  # 10 frames, then nothing
    short, listener = Short("short", 8000), BufferLeg("listener", 8000)
    for leg in (a, short, listener):
        engine.join("room", leg)
    run_ticks(engine, 20)
    assert engine.stats("a").frames_in == 10
    assert engine.stats("a").missing == 10
    assert engine.stats("short").missing == 20
    tail = listener.recording()[-800:]
    assert np.abs(tail).max() < 50  # silence once a stopped (resampler ringing aside)


def test_engine_lobby_isolation_then_admission() -> None:
    engine = Engine()
    host = BufferLeg("host", 8000, tone_at(700, 8000, 3))
    caller = BufferLeg("caller", 8000, tone_at(1300, 8000, 3))
    engine.join("conference", host)
    engine.join("lobby:conference", caller)
    run_ticks(engine, 50)
    assert magnitude_db(host.recording()[4000:], 1300, rate=8000) < -60
    assert magnitude_db(caller.recording()[4000:], 700, rate=8000) < -60
    engine.move("caller", "conference")
    host.heard.clear()
    caller.heard.clear()
    run_ticks(engine, 50)
    assert magnitude_db(host.recording()[4000:], 1300, rate=8000) > -20
    assert magnitude_db(caller.recording()[4000:], 700, rate=8000) > -20


def test_engine_reports_mixer_events() -> None:
    engine = Engine()
    seen: list[MixerEvent] = []
    engine.on_events = lambda events: seen.extend(events)
    engine.join("room", BufferLeg("talker", 8000, np.concatenate([np.zeros(8000, np.int16), tone_at(600, 8000, 1)])))
    engine.join("room", BufferLeg("other", 8000))
    run_ticks(engine, 80)
    assert DominantSpeakerChanged("room", "talker", None) in seen


def test_engine_leg_protocol_and_duplicate_join() -> None:
    leg = BufferLeg("x", 8000)
    assert isinstance(leg, Leg)
    assert leg.kind is LegKind.LOCAL
    engine = Engine()
    engine.join("r", leg)
    with pytest.raises(ValueError, match="already in a room"):
        engine.join("r", leg)
    engine.leave("x")
    engine.leave("x")  # twice: nothing happens
    assert leg.closed


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_clock_is_drift_free_and_skips_after_a_stall() -> None:
    fake = FakeTime()
    clock = MediaClock(0.02, time=fake.time, sleep=fake.sleep)
    starts: list[float] = []

    async def main() -> None:
        async for n in clock.ticks():
            starts.append(fake.now)
            fake.now += 0.007 if n != 5 else 0.095  # work per tick; tick 5 stalls for 95 ms
            if len(starts) == 12:
                break

    asyncio.run(asyncio.wait_for(main(), 5))
    deadlines = [100.0 + 0.02 * k for k in range(30)]
    assert starts[:6] == pytest.approx(deadlines[:6])  # each tick on its deadline, work not accumulating
    # Tick 5 ends at 100.195: deadlines 6, 7, 8 are gone (skipped, not played in a burst); tick 9 runs at once,
    # 15 ms late; tick 10 follows its 7 ms of work 2 ms late (within tolerance), tick 11 is back on its deadline.
    assert clock.stats.skipped == 3
    assert starts[6] == pytest.approx(100.195)
    assert starts[7] == pytest.approx(100.202)
    assert starts[8:] == pytest.approx(deadlines[11:15])
    assert clock.stats.late == 1


def test_engine_run_stops_and_drops_closed_legs() -> None:
    engine = Engine()
    a, b = BufferLeg("a", 8000), BufferLeg("b", 8000)
    engine.join("room", a)
    engine.join("room", b)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop))
        await asyncio.sleep(0.1)
        b.close()
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 2)

    asyncio.run(asyncio.wait_for(main(), 5))
    assert "b" not in engine
    assert len(a.recording()) >= 5 * 160


def test_engine_plays_a_prompt_to_one_leg_then_the_room_again() -> None:
    engine = Engine()
    caller = BufferLeg("caller", 8000)
    other = BufferLeg("other", 8000, tone_at(900, 8000, 2))
    engine.join("room", caller)
    engine.join("room", other)
    prompt = tone_at(400, 8000, 0.2)  # 10 frames

    async def main() -> bool:
        done = engine.play("caller", prompt)
        assert done is not None
        for _ in range(15):
            engine.tick()
            await asyncio.sleep(0)
        return await asyncio.wait_for(done, 1)

    assert asyncio.run(main()) is True
    heard = caller.recording()
    assert np.array_equal(heard[:1600], prompt)  # only the prompt, room ducked
    assert magnitude_db(heard[1600:2400], 900, rate=8000) > -20  # then the room
    assert magnitude_db(other.recording()[:1600], 400, rate=8000) < -60  # nobody else heard it
    assert not engine.playing("caller")


def test_engine_prompt_stopped_by_a_key_and_by_leaving() -> None:
    engine = Engine()
    caller = BufferLeg("caller", 8000)
    engine.join("ivr", caller)

    async def main() -> tuple[bool, bool]:
        first = engine.play("caller", tone_at(400, 8000, 2))
        engine.tick()
        engine.stop_playback("caller")
        second = engine.play("caller", tone_at(400, 8000, 2), replace_room=False)
        engine.tick()
        engine.leave("caller")
        assert first is not None
        assert second is not None
        return await first, await second

    assert asyncio.run(asyncio.wait_for(main(), 2)) == (False, False)
    assert len(caller.recording()) == 2 * 160


def test_engine_inband_digits_detected_and_never_heard_by_the_room() -> None:
    from dtmf.tones import ToneSpec, generate

    keys = generate("5#", 8000, ToneSpec(on_ms=80, off_ms=120, level_dbm0=-6))
    talk = tone_at(300, 8000, 2, amplitude=3000)  # a talker well away from the keypad frequencies
    signal = talk.astype(np.int32)
    signal[8000 : 8000 + len(keys)] += keys
    phone = BufferLeg("phone", 8000, np.clip(signal, -32768, 32767).astype(np.int16))
    listener = BufferLeg("listener", 8000)
    engine = Engine(inband_capacity=4)
    digits: list[tuple[str, str]] = []
    engine.on_digit = lambda leg_id, digit: digits.append((leg_id, digit))
    engine.join("room", phone, inband_dtmf=True)
    engine.join("room", listener)
    run_ticks(engine, 100)
    assert digits == [("phone", "5"), ("phone", "#")]
    heard = listener.recording()
    delay = 320  # 40 ms: the price of removing tones before anyone hears them
    during = heard[8000 + delay : 8000 + delay + len(keys)]
    for hz in (770, 1336, 941, 1477):
        assert magnitude_db(during, hz, rate=8000) < -55, hz
    assert magnitude_db(heard[12000:], 300, rate=8000) > -25  # the talker, after the keys, still heard
    engine.stop_inband("phone")
    run_ticks(engine, 5)
    assert engine.stats("phone").frames_in == 105


def test_two_phones_get_each_others_frames_as_sent_and_a_third_talker_is_mixed_in() -> None:
    """Two 8 kHz legs in a room: each receives the other's frames bit for bit, with no delay (no round trip
    through the mixing rate). A third talker makes it a mix (converted), and its leaving makes it direct again."""
    engine = Engine()
    a_audio, b_audio = tone_at(500, 8000, 3), tone_at(900, 8000, 3)
    a, b = BufferLeg("a", 8000, a_audio), BufferLeg("b", 8000, b_audio)
    engine.join("consult", a)
    engine.join("consult", b)
    run_ticks(engine, 25)
    heard_a, heard_b = a.recording(), b.recording()
    start = 160 * 5  # once the voice detector counts them as talking
    assert np.array_equal(heard_b[start:], a_audio[start : len(heard_b)]), "B does not get A's frames as sent"
    assert np.array_equal(heard_a[start:], b_audio[start : len(heard_a)])
    assert -20 < engine.stats("a").level_dbfs < -10, "the level of a talking leg, as the mixer measured it"
    c = BufferLeg("c", 8000, tone_at(1700, 8000, 3))
    engine.join("consult", c)
    run_ticks(engine, 25)
    mixed = a.recording()[160 * 30 :]
    assert magnitude_db(mixed, 900, rate=8000) > -20
    assert magnitude_db(mixed, 1700, rate=8000) > -20, "the third talker is not heard"
    assert magnitude_db(mixed, 500, rate=8000) < -60, "A hears itself in the mix"
    engine.leave("c")
    before = len(b.recording())
    run_ticks(engine, 10)
    sent = a_audio[before : before + 160 * 10]
    assert np.array_equal(b.recording()[before:][-160 * 5 :], sent[-160 * 5 :]), "not direct again"


def test_phone_hearing_a_wideband_leg_gets_it_converted() -> None:
    engine = Engine()
    phone, wide = BufferLeg("phone", 8000), BufferLeg("wide", 16000, tone_at(700, 16000, 2))
    engine.join("consult", phone)
    engine.join("consult", wide)
    run_ticks(engine, 30)
    heard = phone.recording()[4000:]
    assert len(heard) == 8000 * 30 // 50 - 4000
    assert magnitude_db(heard, 700, rate=8000) > -20


def test_participants_of_a_room_with_labels_talking_and_muted() -> None:
    engine = Engine()
    talker = BufferLeg("a", 8000, tone_at(500, 8000, 2) * (np.arange(16000) % 4000 < 2400))
    listener = BufferLeg("b", 8000)
    engine.join("consult", talker)
    engine.join("consult", listener)
    engine.labels["a"] = "+33 6 •• •• •• 78"
    engine.set_muted("b", True)
    run_ticks(engine, 20)
    people = {p["id"]: p for p in engine.participants("consult")}
    assert people["a"] == {"id": "a", "label": "+33 6 •• •• •• 78", "kind": "local", "speaking": True, "muted": False}
    assert people["b"]["speaking"] is False
    assert people["b"]["muted"] is True
    engine.leave("a")
    assert "a" not in engine.labels, "a label outlived its leg"
    assert [p["id"] for p in engine.participants("consult")] == ["b"]


def test_a_muted_participant_is_never_shown_speaking() -> None:
    """Their microphone still hears them; the room does not: the list must not say "muted · speaking"."""
    engine = Engine()
    talker = BufferLeg("a", 8000, tone_at(500, 8000, 2) * (np.arange(16000) % 4000 < 2400))
    engine.join("consult", talker)
    engine.join("consult", BufferLeg("b", 8000))
    engine.set_muted("a", True)
    for _ in range(20):
        run_ticks(engine, 1)
        people = {p["id"]: p for p in engine.participants("consult")}
        assert people["a"]["muted"] is True
        assert people["a"]["speaking"] is False


def test_the_garbage_collections_that_stop_the_clock_are_counted_and_timed() -> None:
    import gc

    from bridge.clock import LONG_GC_S, GcWatch

    watch = GcWatch()
    watch.start()
    try:
        held = [[n] for n in range(300_000)]  # a heap worth walking: its full collection takes milliseconds
        gc.collect()
        gc.collect(0)
    finally:
        watch.stop()
        del held
    assert watch.stats.collections[2] >= 1  # ours (and any the allocations above set off)
    assert watch.stats.collections[0] >= 1
    assert watch.stats.longest_ms > 0
    assert (watch.stats.long > 0) == (watch.stats.longest_ms > LONG_GC_S * 1000)
    assert watch not in gc.callbacks


def test_a_phone_s_line_is_in_the_participant_list_and_in_the_lines_and_its_change_is_pushed() -> None:
    class Phone(BufferLeg):
        line: str | None = None

        @property
        def kind(self) -> LegKind:
            return LegKind.SIP

        def network(self) -> dict[str, object]:
            return {"codec": "PCMU", "loss_in": 0.2, "line": self.line}

    engine = Engine()
    pushed: list[object] = []
    engine.presence_listeners.append(pushed.append)
    phone, web = Phone("sip-1", 8000), BufferLeg("web-1", 48000)
    engine.join("consult", phone)
    engine.join("consult", web)
    engine.join("ivr:sip-2", Phone("sip-2", 8000))
    assert "line" not in engine.participants("consult")[0]  # not measured yet
    pushed.clear()
    phone.line = "poor"
    engine.changed("sip-1")
    engine.changed("gone")  # a leg that left meanwhile: nothing
    assert pushed == ["consult"]
    people = {p["id"]: p for p in engine.participants("consult")}
    assert people["sip-1"]["line"] == "poor"
    assert "line" not in people["web-1"]
    assert engine.lines() == [
        {"leg": "sip-1", "in": "room", "codec": "PCMU", "loss_in": 0.2, "line": "poor"},
        {"leg": "sip-2", "in": "ivr", "codec": "PCMU", "loss_in": 0.2, "line": None},
    ]


def test_a_failing_before_tick_hook_is_logged_once_and_the_ticks_go_on(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine()
    calls = []

    def broken() -> None:
        calls.append(1)
        raise OSError("epoll closed")

    engine.before_tick.append(broken)
    a = BufferLeg("a", 8000, tone_at(500, 8000, 1))
    b = BufferLeg("b", 8000)
    engine.join("room", a)
    engine.join("room", b)
    with caplog.at_level("ERROR", logger="bridge.engine"):
        run_ticks(engine, 25)
    assert len(calls) == 25, "the hook was dropped after failing"
    assert len([r for r in caplog.records if "before-tick hook failed" in r.getMessage()]) == 1
    assert magnitude_db(b.recording()[2000:], 500, rate=8000) > -20, "the room stopped with the hook"
