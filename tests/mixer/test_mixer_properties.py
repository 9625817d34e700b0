"""Property tests: random rooms, gains, mutes, listen-only legs, joins and leaves, against a float64 reference."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixer import Mixer, MixerConfig, MixResult
from tests.mixer.signals import FRAME

TOP_N = 3


def reference(
    frames: dict[Hashable, np.ndarray],
    rooms: dict[Hashable, Hashable],
    gains: dict[Hashable, float],
    contributing: dict[Hashable, bool],
) -> dict[Hashable, np.ndarray]:
    """Each leg hears the gain-weighted sum of the other contributing legs of its room, in float64."""
    out = {}
    for leg, room in rooms.items():
        total = np.zeros(FRAME)
        for other, other_room in rooms.items():
            if other != leg and other_room == room and contributing[other]:
                total += gains[other] * frames[other].astype(np.float64)
        out[leg] = np.rint(total)
    return out


@dataclass(frozen=True)
class Add:
    room: int
    gain: float
    muted: bool
    listen_only: bool


@dataclass(frozen=True)
class Remove:
    pick: int


@dataclass(frozen=True)
class Mute:
    pick: int
    muted: bool


@dataclass(frozen=True)
class Gain:
    pick: int
    gain: float


@dataclass(frozen=True)
class Tick:
    talking_share: float


Op = Add | Remove | Mute | Gain | Tick

operations = st.lists(
    st.one_of(
        st.builds(Add, st.integers(0, 4), st.floats(0.25, 1.5), st.booleans(), st.booleans()),
        st.builds(Remove, st.integers(0, 30)),
        st.builds(Mute, st.integers(0, 30), st.booleans()),
        st.builds(Gain, st.integers(0, 30), st.floats(0.0, 1.5)),
        st.builds(Tick, st.floats(0.0, 1.0)),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_mixer_matches_reference_under_random_changes(ops: list[Op]) -> None:
    mixer = Mixer(MixerConfig(top_n=TOP_N))
    rng = np.random.default_rng(len(ops))
    rooms: dict[Hashable, Hashable] = {}
    gains: dict[Hashable, float] = {}
    muted: dict[Hashable, bool] = {}
    listen: dict[Hashable, bool] = {}
    counter = 0
    for op in [*ops, Tick(0.5)]:
        legs = list(rooms)
        if isinstance(op, Add):
            leg = f"leg{counter}"
            counter += 1
            mixer.add_leg(leg, f"room{op.room}", gain=op.gain, muted=op.muted, listen_only=op.listen_only)
            rooms[leg], gains[leg], muted[leg], listen[leg] = f"room{op.room}", op.gain, op.muted, op.listen_only
        elif isinstance(op, Remove) and legs:
            gone = legs[op.pick % len(legs)]
            mixer.remove_leg(gone)
            for table in (rooms, gains, muted, listen):
                del table[gone]
        elif isinstance(op, Mute) and legs:
            target = legs[op.pick % len(legs)]
            mixer.set_muted(target, op.muted)
            muted[target] = op.muted
        elif isinstance(op, Gain) and legs:
            target = legs[op.pick % len(legs)]
            mixer.set_gain(target, op.gain)
            gains[target] = op.gain
        elif isinstance(op, Tick):
            frames: dict[Hashable, np.ndarray] = {}
            for each in rooms:
                level = 2000.0 if rng.random() < op.talking_share else 5.0
                frames[each] = np.rint(rng.normal(0, level / 3, FRAME)).clip(-level, level).astype(np.int16)
                mixer.write(each, frames[each])
            check(mixer.tick(), frames, rooms, gains, muted, listen)


def check(
    result: MixResult,
    frames: dict[Hashable, np.ndarray],
    rooms: dict[Hashable, Hashable],
    gains: dict[Hashable, float],
    muted: dict[Hashable, bool],
    listen: dict[Hashable, bool],
) -> None:
    assert set(result.slots) == set(rooms)
    contributing = {leg: result.is_contributing(leg) for leg in rooms}
    for room in set(rooms.values()):
        members = [leg for leg in rooms if rooms[leg] == room]
        able = [leg for leg in members if not muted[leg] and not listen[leg]]
        chosen = [leg for leg in members if contributing[leg]]
        assert set(chosen) <= set(able), "a muted or lobby leg was mixed"
        assert len(chosen) <= TOP_N
        if len(able) <= TOP_N:
            assert set(chosen) == set(able), "small rooms mix everyone"
        else:
            assert all(result.is_speaking(leg) for leg in chosen), "large rooms mix speaking legs only"
            speaking = [leg for leg in able if result.is_speaking(leg)]
            assert len(chosen) == min(TOP_N, len(speaking))
    expected = reference(frames, rooms, gains, contributing)
    for leg in rooms:
        got = result.frame(leg).astype(np.float64)
        # Quiet signals: the limiter stays at rest, so the mix is exact to the rounding of float32 gains.
        assert np.abs(got - expected[leg]).max() <= 1, leg
    groups: dict[object, np.ndarray] = {}
    for leg in rooms:
        frame = result.frame(leg)
        key = result.group(leg)
        if key in groups:
            assert groups[key] is frame
        groups[key] = frame
