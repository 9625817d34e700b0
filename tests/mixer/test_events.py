from __future__ import annotations

import numpy as np

from mixer import DominantSpeakerChanged, Mixer, MixerConfig, SpeakingStarted, SpeakingStopped
from mixer.events import MixerEvent
from tests.mixer.signals import FRAME, tone

SILENT = np.zeros(FRAME, np.int16)


def talk(mixer: Mixer, loud: dict[str, float], ticks: int, start: int = 0) -> list[list[MixerEvent]]:
    """Legs in ``loud`` send a tone at that amplitude; the others silence. Returns each tick's events."""
    out = []
    for t in range(ticks):
        for leg, amplitude in loud.items():
            mixer.write(leg, tone(500 + 100 * len(leg), FRAME, amplitude, start=(start + t) * FRAME))
        out.append(list(mixer.tick().events))
    return out


def room_of_three(config: MixerConfig | None = None) -> Mixer:
    mixer = Mixer(config)
    for leg in ("ann", "bob", "cy"):
        mixer.add_leg(leg, "room")
    talk(mixer, {}, 60)  # the voice-activity floors settle on silence
    return mixer


def test_events_speaking_started_and_stopped() -> None:
    mixer = room_of_three()
    ticks = talk(mixer, {"ann": 8000}, 10) + talk(mixer, {}, 20)
    started = [i for i, evs in enumerate(ticks) if SpeakingStarted("room", "ann") in evs]
    stopped = [i for i, evs in enumerate(ticks) if SpeakingStopped("room", "ann") in evs]
    assert started == [0]
    assert stopped == [10 + 15]  # after 300 ms of hangover
    assert all(e.leg_id == "ann" for evs in ticks for e in evs if isinstance(e, SpeakingStarted | SpeakingStopped))


def test_events_dominant_speaker_with_hysteresis() -> None:
    mixer = room_of_three()
    first = talk(mixer, {"ann": 6000}, 5)
    assert DominantSpeakerChanged("room", "ann", None) in first[0]
    # bob slightly louder (2 dB): not enough to take over
    close = talk(mixer, {"ann": 6000, "bob": 7500}, 50, start=5)
    assert not any(isinstance(e, DominantSpeakerChanged) for evs in close for e in evs)
    # cy much louder (8 dB): takes over, but only after holding it 400 ms
    louder = talk(mixer, {"ann": 6000, "cy": 15000}, 40, start=55)
    changes = [i for i, evs in enumerate(louder) if DominantSpeakerChanged("room", "cy", "ann") in evs]
    assert len(changes) == 1
    assert 18 <= changes[0] <= 25


def test_events_dominant_passes_at_once_when_speaker_stops() -> None:
    mixer = room_of_three()
    talk(mixer, {"ann": 8000}, 10)
    ticks = talk(mixer, {"bob": 4000}, 40, start=10)  # ann silent: bob takes over after ann's hangover
    changes = [i for i, evs in enumerate(ticks) for e in evs if isinstance(e, DominantSpeakerChanged)]
    assert len(changes) == 1
    assert changes[0] <= 17


def test_events_dominant_leaving_reported() -> None:
    mixer = room_of_three()
    talk(mixer, {"ann": 8000}, 5)
    mixer.remove_leg("ann")
    events = mixer.tick().events
    assert DominantSpeakerChanged("room", None, "ann") in events
    assert SpeakingStopped("room", "ann") in events


def test_events_top_n_mixes_loudest_talkers_only() -> None:
    mixer = Mixer(MixerConfig(top_n=2))
    legs = [f"p{i}" for i in range(6)]
    for leg in legs:
        mixer.add_leg(leg, "class")
    talk(mixer, {}, 60)
    levels = {"p0": 2000, "p1": 9000, "p2": 4000, "p3": 12000}
    for t in range(10):
        for leg, amplitude in levels.items():
            mixer.write(leg, tone(300 + 200 * int(leg[1]), FRAME, amplitude, start=t * FRAME))
        result = mixer.tick()
    assert {leg for leg in legs if result.is_contributing(leg)} == {"p1", "p3"}
    silent_listener = result.frame("p5")
    assert result.frame("p4") is silent_listener
    assert result.frame("p0") is silent_listener  # a talker left out of the mix hears the same as a listener
    expected = tone(500, FRAME, 9000, start=9 * FRAME).astype(int) + tone(900, FRAME, 12000, start=9 * FRAME)
    assert np.abs(silent_listener.astype(int) - expected).max() <= 1
    assert not np.array_equal(result.frame("p1"), silent_listener)


def test_events_top_n_hysteresis_keeps_current_talkers() -> None:
    """A newcomer slightly louder than a talker already in the mix does not push it out (no flapping)."""
    mixer = Mixer(MixerConfig(top_n=2))
    for i in range(5):
        mixer.add_leg(f"p{i}", "class")
    talk(mixer, {}, 60)
    talk(mixer, {"p0": 8000, "p1": 8000}, 10)
    for t in range(10):
        for leg, amplitude in (("p0", 8000), ("p1", 8000), ("p2", 10000)):
            mixer.write(leg, tone(700, FRAME, amplitude, start=t * FRAME))
        result = mixer.tick()
        assert result.is_contributing("p0")
        assert result.is_contributing("p1")
        assert not result.is_contributing("p2")
