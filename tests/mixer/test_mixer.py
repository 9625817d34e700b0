from __future__ import annotations

import numpy as np
import pytest

from mixer import Mixer, MixerConfig, OutputKind, UnknownLeg
from tests.mixer.signals import FRAME, magnitude_db, tone

TONES = [400.0, 650.0, 900.0, 1150.0, 1400.0, 1650.0, 1900.0]


def run(mixer: Mixer, sources: dict[str, float], ticks: int, amplitude: float = 6000.0) -> dict[str, np.ndarray]:
    """Feed each leg its own tone for ``ticks`` frames; return what each leg heard, frames joined."""
    heard: dict[str, list[np.ndarray]] = {}
    for t in range(ticks):
        for leg, freq in sources.items():
            mixer.write(leg, tone(freq, FRAME, amplitude, start=t * FRAME))
        for leg_id, frame in mixer.tick():
            heard.setdefault(str(leg_id), []).append(frame.copy())
    return {leg: np.concatenate(frames) for leg, frames in heard.items()}


def test_mixer_mix_minus_each_hears_all_others_not_itself() -> None:
    mixer = Mixer()
    layout = {"r2": ["a1", "a2"], "r3": ["b1", "b2", "b3"], "r4": ["c1", "c2", "c3", "c4"]}
    sources: dict[str, float] = {}
    freqs = iter(TONES * 2)
    for room, legs in layout.items():
        for leg in legs:
            mixer.add_leg(leg, room)
            sources[leg] = next(freqs)
    heard = run(mixer, sources, ticks=25)
    for legs in layout.values():
        for leg in legs:
            tail = heard[leg][FRAME * 5 :]  # after the first frames
            others = [magnitude_db(tail, sources[o]) for o in legs if o != leg]
            own = magnitude_db(tail, sources[leg])
            expected = 20 * np.log10(6000 / 32768)
            for level in others:
                assert abs(level - expected) < 0.5, (leg, level)
            assert own < min(others) - 60, (leg, own, others)


def test_mixer_listeners_hear_everyone_and_share_one_frame() -> None:
    mixer = Mixer()
    for leg in ("t1", "t2", "t3"):
        mixer.add_leg(leg, "room")
    for leg in ("l1", "l2", "l3"):
        mixer.add_leg(leg, "room", listen_only=True)
    for t in range(3):
        for i, leg in enumerate(("t1", "t2", "t3")):
            mixer.write(leg, tone(TONES[i], FRAME, 4000, start=t * FRAME))
        mixer.write("l1", tone(TONES[5], FRAME, 20000))  # a lobby caller: never heard
        result = mixer.tick()
    shared = result.frame("l1")
    assert result.frame("l2") is shared
    assert result.frame("l3") is shared
    assert result.group("l1") == result.group("l3")
    assert result.group("t1") != result.group("l1")
    assert result.frame("t1") is not result.frame("t2")
    expected = sum(tone(TONES[i], FRAME, 4000, start=2 * FRAME).astype(int) for i in range(3))
    assert np.abs(shared.astype(int) - expected).max() <= 1
    for leg in ("t1", "t2", "t3", "l2"):
        assert magnitude_db(result.frame(leg), TONES[5]) < -100


def test_mixer_two_person_room_passes_frames_through() -> None:
    mixer = Mixer()
    mixer.add_leg("doctor", "consult")
    mixer.add_leg("patient", "consult")
    voice_d, voice_p = tone(300, FRAME, 5000), tone(500, FRAME, 7000)
    mixer.write("doctor", voice_d)
    mixer.write("patient", voice_p)
    result = mixer.tick()
    assert result.group("doctor") == (OutputKind.INPUT, result.slots["patient"])
    assert np.array_equal(result.frame("doctor"), voice_p)
    assert np.array_equal(result.frame("patient"), voice_d)


def test_mixer_lone_participant_hears_silence() -> None:
    mixer = Mixer()
    mixer.add_leg("alone", "room")
    for _ in range(3):
        mixer.write("alone", tone(440, FRAME, 10000))
        result = mixer.tick()
        assert not result.frame("alone").any()
        assert result.group("alone") == (OutputKind.SILENCE, 0)


def test_mixer_comfort_noise_when_configured() -> None:
    mixer = Mixer(MixerConfig(comfort_noise_dbfs=-60.0))
    mixer.add_leg("alone", "room")
    frames = [mixer.tick().frame("alone").astype(float) for _ in range(20)]
    level = 10 * np.log10(np.mean(np.concatenate(frames) ** 2) / 32768**2)
    assert -62 < level < -58


def test_mixer_missing_frame_is_silence() -> None:
    mixer = Mixer()
    for leg in ("a", "b", "c"):
        mixer.add_leg(leg, "room")
    mixer.write("a", tone(440, FRAME, 5000))
    mixer.write("b", tone(700, FRAME, 5000))
    mixer.tick()
    mixer.write("a", tone(440, FRAME, 5000))  # b sends nothing this tick: it must not be replayed
    result = mixer.tick()
    assert np.array_equal(result.frame("b"), tone(440, FRAME, 5000))
    assert np.array_equal(result.frame("c"), tone(440, FRAME, 5000))


def test_mixer_muted_leg_hears_but_is_not_heard() -> None:
    mixer = Mixer()
    for leg in ("a", "b", "c"):
        mixer.add_leg(leg, "room")
    mixer.set_muted("c", True)
    for leg, f in (("a", 400.0), ("b", 900.0), ("c", 1400.0)):
        mixer.write(leg, tone(f, FRAME, 5000))
    result = mixer.tick()
    assert not result.is_contributing("c")
    for leg in ("a", "b"):
        assert magnitude_db(result.frame(leg), 1400.0) < -100
    assert magnitude_db(result.frame("c"), 400.0) > -20
    assert magnitude_db(result.frame("c"), 900.0) > -20


def test_mixer_gain_scales_contribution() -> None:
    mixer = Mixer()
    for leg in ("a", "b", "c"):
        mixer.add_leg(leg, "room")
    mixer.set_gain("a", 0.5)
    mixer.write("a", tone(400, FRAME, 8000))
    result = mixer.tick()
    assert np.abs(result.frame("b").astype(int) - tone(400, FRAME, 4000)).max() <= 1
    with pytest.raises(ValueError, match="gain must be between"):
        mixer.set_gain("a", -1.0)
    with pytest.raises(ValueError, match="gain must be between"):
        mixer.set_gain("a", 100.0)


def test_mixer_join_and_leave_between_ticks() -> None:
    mixer = Mixer(capacity=2)
    for leg in ("a", "b", "c", "d"):
        mixer.add_leg(leg, "room" if leg != "d" else "other")
    mixer.write("c", tone(400, FRAME, 5000))
    mixer.tick()
    mixer.remove_leg("a")  # slot 0 freed: the last leg moves into it
    mixer.write("c", tone(400, FRAME, 5000))
    mixer.write("b", tone(900, FRAME, 5000))
    result = mixer.tick()
    assert set(result.slots) == {"b", "c", "d"}
    assert np.array_equal(result.frame("b"), tone(400, FRAME, 5000))
    assert np.array_equal(result.frame("c"), tone(900, FRAME, 5000))
    assert not result.frame("d").any()
    mixer.remove_leg("d")  # the room "other" disappears with its last leg
    mixer.add_leg("a", "other")
    assert mixer.legs_in("other") == ["a"]
    assert mixer.room_of("b") == "room"
    with pytest.raises(UnknownLeg):
        mixer.remove_leg("d")
    with pytest.raises(UnknownLeg):
        mixer.write("zz", tone(1, FRAME, 1))
    with pytest.raises(ValueError, match="already in the mixer"):
        mixer.add_leg("a", "room")
    with pytest.raises(ValueError, match="expected 960 samples"):
        mixer.write("a", np.zeros(100, np.int16))


def test_mixer_empty_tick() -> None:
    result = Mixer().tick()
    assert result.mixed.shape == (0, FRAME)
    assert list(result) == []
