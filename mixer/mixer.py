"""N-1 mixing of every room in one vectorised pass per tick.

Each tick every leg gives one frame (or none: silence) and gets back the sum of the other *contributing* legs of its
room. Cost decides the design (see ARCHITECTURE.md): a Python loop per room or per leg does not scale, so all legs of
all rooms live in one structure of arrays (one row per leg, "slot") and each tick is a handful of numpy operations
over all of them. Rooms are sorted into classes by their number ``k`` of contributing legs:

- ``k = 0``: everyone hears silence;
- ``k = 1``: the talker hears silence (never themselves); everyone else hears the talker's own frame — no copy;
- ``k = 2`` at unity gain (the two-person consultation): each hears the other's frame, a gather and no sum;
  listeners hear the sum;
- otherwise: one sum per room; each contributor hears ``sum − self`` and every listener shares the room's sum.

Who contributes: every leg not muted nor listen-only (lobby) when the room has at most ``top_n`` such legs; in
larger rooms only the ``top_n`` loudest *speaking* legs (voice activity), with a bonus for those already in the mix
so the selection does not flap. So a room computes at most ``top_n + 1`` distinct outputs, and every leg that hears
the same thing gets **the same frame object** (:meth:`MixResult.frame`), which lets a leg type encode it once.

Every computed mix goes through the soft limiter (:mod:`mixer.limiter`). A frame handed out stays valid until the
tick after next (inputs are double-buffered, outputs are new arrays each tick).

Not thread-safe: the engine calls it from its event loop only.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from mixer.events import DominantSpeakerChanged, MixerEvent, SpeakingStarted, SpeakingStopped
from mixer.frame import FULL_SCALE, db_to_gain, frame_samples
from mixer.limiter import Limiter, LimiterConfig
from mixer.vad import VadConfig, VoiceActivity


@dataclass(frozen=True, slots=True)
class MixerConfig:
    sample_rate_hz: int = 48000
    frame_ms: int = 20
    top_n: int = 4
    top_n_hysteresis_db: float = 6.0
    dominant_margin_db: float = 3.0
    dominant_hold_ms: int = 400
    comfort_noise_dbfs: float | None = None
    max_gain_db: float = 12.0
    vad: VadConfig = field(default_factory=VadConfig)
    limiter: LimiterConfig = field(default_factory=LimiterConfig)

    @property
    def frame_samples(self) -> int:
        return frame_samples(self.sample_rate_hz, self.frame_ms)


class OutputKind(IntEnum):
    SILENCE = 0  # the shared silence (or comfort noise) frame
    INPUT = 1  # another leg's own input frame, passed through
    MIX = 2  # a computed, limited mix


_KINDS = tuple(sorted(OutputKind, key=int))


class UnknownLeg(KeyError):
    """No leg with that id is in the mixer."""


@dataclass(frozen=True, slots=True)
class MixResult:
    """One tick's outputs. ``frame(leg)`` is the frame to send; legs of one ``group(leg)`` share one object."""

    kinds: npt.NDArray[np.int8]
    index: npt.NDArray[np.int32]
    mixed: npt.NDArray[np.int16]
    inputs: npt.NDArray[np.int16]
    silence: npt.NDArray[np.int16]
    slots: dict[Hashable, int]
    contributing: npt.NDArray[np.bool_]
    speaking: npt.NDArray[np.bool_]
    level_dbfs: npt.NDArray[np.float32]
    events: tuple[MixerEvent, ...]
    _views: dict[tuple[int, int], npt.NDArray[np.int16]] = field(default_factory=dict)

    def _slot(self, leg_id: Hashable) -> int:
        try:
            return self.slots[leg_id]
        except KeyError:
            raise UnknownLeg(leg_id) from None

    def group(self, leg_id: Hashable) -> tuple[OutputKind, int]:
        slot = self._slot(leg_id)
        kind = _KINDS[self.kinds[slot]]  # a tuple index, not an Enum call: asked for every leg every tick
        return kind, (0 if kind is OutputKind.SILENCE else int(self.index[slot]))

    def frame(self, leg_id: Hashable) -> npt.NDArray[np.int16]:
        key = self.group(leg_id)
        view = self._views.get(key)
        if view is None:
            kind, index = key
            source = {OutputKind.SILENCE: None, OutputKind.INPUT: self.inputs, OutputKind.MIX: self.mixed}[kind]
            view = self.silence if source is None else source[index]
            self._views[key] = view
        return view

    def is_contributing(self, leg_id: Hashable) -> bool:
        return bool(self.contributing[self._slot(leg_id)])

    def is_speaking(self, leg_id: Hashable) -> bool:
        return bool(self.speaking[self._slot(leg_id)])

    def level(self, leg_id: Hashable) -> float:
        return float(self.level_dbfs[self._slot(leg_id)])

    def __iter__(self) -> Iterator[tuple[Hashable, npt.NDArray[np.int16]]]:
        for leg_id in self.slots:
            yield leg_id, self.frame(leg_id)


def _group_starts(sorted_keys: npt.NDArray[np.int32]) -> npt.NDArray[np.intp]:
    """Where each run of equal keys starts in a sorted array."""
    change = np.empty(sorted_keys.size, dtype=bool)
    change[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=change[1:])
    return np.flatnonzero(change)


def _group_sizes(starts: npt.NDArray[np.intp], total: int) -> npt.NDArray[np.intp]:
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1:] = total
    return ends - starts


def _group_sums(rows: npt.NDArray[np.float32], starts: npt.NDArray[np.intp]) -> npt.NDArray[np.float32]:
    """Sum of each run of rows. A room never has more than top-N contributors, so add the first row of every run,
    then the second of every run long enough, and so on: a few vectorised additions, each row read once
    (``np.add.reduceat`` over rows measured 3x slower)."""
    sizes = _group_sizes(starts, len(rows))
    totals = rows[starts].copy()
    for offset in range(1, int(sizes.max())):
        longer = np.flatnonzero(sizes > offset)
        totals[longer] += rows[starts[longer] + offset]
    return totals


class Mixer:
    def __init__(self, config: MixerConfig | None = None, capacity: int = 64) -> None:
        self.config = config or MixerConfig()
        cfg = self.config
        if cfg.top_n < 1:
            raise ValueError("top_n must be at least 1")
        self.frame_samples = cfg.frame_samples
        self._hold_frames = max(1, round(cfg.dominant_hold_ms / cfg.frame_ms))
        self._max_gain = db_to_gain(cfg.max_gain_db)
        self._limiter = Limiter(cfg.limiter, cfg.sample_rate_hz, self.frame_samples)
        self._vad = VoiceActivity(cfg.vad, cfg.frame_ms, 0)
        self._rng = np.random.default_rng()
        self._silence = np.zeros(self.frame_samples, dtype=np.int16)
        self._silence.flags.writeable = False
        self._pending: list[MixerEvent] = []
        # legs: slot → state; slots 0..n-1 are in use
        self._n = 0
        self._ids: list[Hashable] = []
        self._slot_of: dict[Hashable, int] = {}
        self._bufs = [np.zeros((0, self.frame_samples), np.int16) for _ in range(2)]
        self._cur = 0
        self._present = np.zeros(0, bool)
        self._room = np.zeros(0, np.int32)
        self._gain = np.zeros(0, np.float32)
        self._muted = np.zeros(0, bool)
        self._listen_only = np.zeros(0, bool)
        self._in_mix = np.zeros(0, bool)
        self._was_speaking = np.zeros(0, bool)
        self._priv_gain = np.zeros(0, np.float32)
        self._priv_live = np.zeros(0, bool)
        # rooms: index → state; indexes 0..r-1 are in use
        self._r = 0
        self._room_ids: list[Hashable] = []
        self._room_of: dict[Hashable, int] = {}
        self._room_legs = np.zeros(0, np.int32)
        self._room_gain = np.zeros(0, np.float32)
        self._dominant = np.zeros(0, np.int32)
        self._challenger = np.zeros(0, np.int32)
        self._challenge_frames = np.zeros(0, np.int32)
        self._grow_legs(capacity)
        self._grow_rooms(max(1, capacity // 2))

    # -- membership ------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def __contains__(self, leg_id: object) -> bool:
        return leg_id in self._slot_of

    def add_leg(
        self,
        leg_id: Hashable,
        room_id: Hashable,
        *,
        gain: float = 1.0,
        muted: bool = False,
        listen_only: bool = False,
    ) -> None:
        """Join ``leg_id`` to ``room_id`` (created on first leg); takes effect at the next tick."""
        if leg_id in self._slot_of:
            raise ValueError(f"leg {leg_id!r} is already in the mixer")
        self._check_gain(gain)
        if self._n == len(self._room):
            self._grow_legs(2 * len(self._room))
        room = self._room_of.get(room_id)
        if room is None:
            if self._r == len(self._room_legs):
                self._grow_rooms(2 * len(self._room_legs))
            room = self._r
            self._r += 1
            self._room_of[room_id] = room
            self._room_ids.append(room_id)
            self._room_legs[room] = 0
            self._room_gain[room] = 1.0
            self._dominant[room] = -1
            self._challenger[room] = -1
            self._challenge_frames[room] = 0
        slot = self._n
        self._n += 1
        self._ids.append(leg_id)
        self._slot_of[leg_id] = slot
        for buf in self._bufs:
            buf[slot] = 0
        self._present[slot] = False
        self._room[slot] = room
        self._gain[slot] = gain
        self._muted[slot] = muted
        self._listen_only[slot] = listen_only
        self._in_mix[slot] = False
        self._was_speaking[slot] = False
        self._priv_gain[slot] = 1.0
        self._priv_live[slot] = False
        self._vad.reset(slot)
        self._room_legs[room] += 1

    def remove_leg(self, leg_id: Hashable) -> None:
        """Take ``leg_id`` out (it vanished, hung up, or was moved); the room goes on without it."""
        slot = self._slot(leg_id)
        room = int(self._room[slot])
        room_id = self._room_ids[room]
        if self._dominant[room] == slot:
            self._dominant[room] = -1
            self._pending.append(DominantSpeakerChanged(room_id, None, leg_id))
        if self._challenger[room] == slot:
            self._challenger[room] = -1
            self._challenge_frames[room] = 0
        if self._was_speaking[slot]:
            self._pending.append(SpeakingStopped(room_id, leg_id))
        last = self._n - 1
        if slot != last:
            self._move_leg(last, slot)
        self._n -= 1
        self._ids.pop()
        del self._slot_of[leg_id]
        self._room_legs[room] -= 1
        if self._room_legs[room] == 0:
            self._drop_room(room)

    def set_gain(self, leg_id: Hashable, gain: float) -> None:
        self._check_gain(gain)
        self._gain[self._slot(leg_id)] = gain

    def set_muted(self, leg_id: Hashable, muted: bool) -> None:
        self._muted[self._slot(leg_id)] = muted

    def is_muted(self, leg_id: Hashable) -> bool:
        return bool(self._muted[self._slot(leg_id)])

    def set_listen_only(self, leg_id: Hashable, listen_only: bool) -> None:
        self._listen_only[self._slot(leg_id)] = listen_only

    def room_of(self, leg_id: Hashable) -> Hashable:
        return self._room_ids[int(self._room[self._slot(leg_id)])]

    def legs_in(self, room_id: Hashable) -> list[Hashable]:
        room = self._room_of.get(room_id)
        if room is None:
            return []
        return [self._ids[s] for s in np.flatnonzero(self._room[: self._n] == room)]

    # -- input -----------------------------------------------------------------------------------------------------

    def write(self, leg_id: Hashable, frame: npt.NDArray[np.int16]) -> None:
        """Give ``leg_id``'s frame for the next tick (copied). A leg that gives none is heard as silence."""
        slot = self._slot(leg_id)
        if frame.shape != (self.frame_samples,):
            raise ValueError(f"expected {self.frame_samples} samples, got {frame.shape}")
        self._bufs[self._cur][slot] = frame
        self._present[slot] = True

    def input_buffer(self) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.bool_], dict[Hashable, int]]:
        """For batch writers: the buffer rows (by slot), the presence flags to set, and the slot of each leg."""
        return self._bufs[self._cur][: self._n], self._present[: self._n], self._slot_of

    # -- the tick --------------------------------------------------------------------------------------------------

    def tick(self) -> MixResult:
        n, frame = self._n, self.frame_samples
        inputs = self._bufs[self._cur][:n]
        absent = np.flatnonzero(~self._present[:n])
        if absent.size:
            inputs[absent] = 0
        self._present[:n] = False
        self._cur ^= 1
        events, self._pending = self._pending, []
        silence = self._comfort_noise()
        if n == 0:
            empty = np.zeros(0, np.int32)
            return MixResult(
                empty.astype(np.int8), empty, np.zeros((0, frame), np.int16), inputs, silence, {},
                np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, np.float32), tuple(events),
            )  # fmt: skip

        self._vad.update(inputs)
        speaking = self._vad.active[:n].copy()
        room = self._room[:n]
        contrib = self._select(room, speaking)

        kinds = np.zeros(n, np.int8)
        index = np.zeros(n, np.int32)
        mixed = self._mix(inputs, room, contrib, kinds, index)

        events += self._speaking_events(speaking)
        events += self._dominant_events(room, speaking)
        return MixResult(
            kinds, index, mixed, inputs, silence, dict(self._slot_of), contrib, speaking,
            self._vad.frame_db[:n].copy(), tuple(events),
        )  # fmt: skip

    def _select(self, room: npt.NDArray[np.int32], speaking: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """Who is mixed: everyone able to speak in small rooms; the top N speaking legs in large ones."""
        n, r = self._n, self._r
        able = ~(self._muted[:n] | self._listen_only[:n])
        able_count = np.bincount(room[able], minlength=r)
        contrib = able & (able_count[room] <= self.config.top_n)
        candidates = np.flatnonzero(able & ~contrib & speaking)
        if candidates.size:
            score = self._vad.level_db[candidates] + self.config.top_n_hysteresis_db * self._in_mix[candidates]
            order = np.lexsort((-score, room[candidates]))
            ranked = candidates[order]
            groups = room[ranked]
            first = _group_starts(groups)
            rank = np.arange(ranked.size) - np.repeat(first, _group_sizes(first, ranked.size))
            contrib[ranked[rank < self.config.top_n]] = True
        self._in_mix[:n] = contrib
        return contrib

    def _mix(
        self,
        x: npt.NDArray[np.int16],
        room: npt.NDArray[np.int32],
        contrib: npt.NDArray[np.bool_],
        kinds: npt.NDArray[np.int8],
        index: npt.NDArray[np.int32],
    ) -> npt.NDArray[np.int16]:
        n, r, frame = self._n, self._r, self.frame_samples
        gain = self._gain[:n]
        unity = gain == 1.0
        k = np.bincount(room[contrib], minlength=r)
        has_listeners = np.bincount(room[~contrib], minlength=r) > 0
        k_leg = k[room]
        listeners = ~contrib
        had_private = self._priv_live[:n].copy()
        self._priv_live[:n] = False

        parts: list[npt.NDArray[np.float32]] = []  # rows to limit
        states: list[npt.NDArray[np.float32]] = []  # their limiter gains
        owners: list[tuple[str, npt.NDArray[np.integer]]] = []  # where the gains go back
        rows = 0

        def add_rows(
            block: npt.NDArray[np.float32], state: npt.NDArray[np.float32], owner: tuple[str, npt.NDArray[np.integer]]
        ) -> int:
            nonlocal rows
            parts.append(block)
            states.append(state)
            owners.append(owner)
            start, rows = rows, rows + len(block)
            return start

        # k = 1: the talker hears silence, the others hear the talker.
        solo = np.flatnonzero(contrib & (k_leg == 1))
        if solo.size:
            talker_of = np.full(r, -1, np.int32)
            talker_of[room[solo]] = solo
            hear = np.flatnonzero(listeners & (k_leg == 1))
            src = talker_of[room[hear]]
            passthrough = unity[src]
            kinds[hear[passthrough]] = OutputKind.INPUT
            index[hear[passthrough]] = src[passthrough]
            scaled = np.flatnonzero(unity[solo] == 0)
            if scaled.size:
                talkers = solo[scaled]
                rooms_scaled = room[talkers]
                scaled_rows = x[talkers].astype(np.float32) * gain[talkers, None]
                start = add_rows(scaled_rows, self._room_gain[rooms_scaled], ("room", rooms_scaled))
                row_of_room = np.full(r, -1, np.int32)
                row_of_room[rooms_scaled] = start + np.arange(talkers.size, dtype=np.int32)
                hear_scaled = hear[~passthrough]
                kinds[hear_scaled] = OutputKind.MIX
                index[hear_scaled] = row_of_room[room[hear_scaled]]

        # k ≥ 2: sort contributors by room; unity pairs hear each other directly.
        many = np.flatnonzero(contrib & (k_leg >= 2))
        if many.size:
            many = many[np.argsort(room[many], kind="stable")]
            groups = room[many]
            first = _group_starts(groups)
            group_rooms = groups[first]
            pair_room = np.zeros(r, bool)
            pairs = k[group_rooms] == 2
            a, b = many[first[pairs]], many[first[pairs] + 1]
            direct = unity[a] & unity[b]
            pair_room[group_rooms[pairs][direct]] = True
            a, b = a[direct], b[direct]
            kinds[a], index[a] = OutputKind.INPUT, b
            kinds[b], index[b] = OutputKind.INPUT, a

            need_total = ~pair_room[group_rooms] | has_listeners[group_rooms]
            if need_total.any():
                weighted = x[many].astype(np.float32)
                if not unity[many].all():
                    weighted *= gain[many, None]
                totals = _group_sums(weighted, first)
                row_of_room = np.full(r, -1, np.int32)
                shared = np.flatnonzero(has_listeners[group_rooms])
                if shared.size:
                    rooms_shared = group_rooms[shared]
                    start = add_rows(totals[shared], self._room_gain[rooms_shared], ("room", rooms_shared))
                    row_of_room[rooms_shared] = start + np.arange(shared.size, dtype=np.int32)
                    hear = np.flatnonzero(listeners & (k_leg >= 2))
                    kinds[hear] = OutputKind.MIX
                    index[hear] = row_of_room[room[hear]]
                private = ~pair_room[groups]
                if private.any():
                    legs = many[private]
                    group_index = np.repeat(np.arange(first.size), _group_sizes(first, many.size))[private]
                    block = totals[group_index] - weighted[private]
                    # A leg that starts hearing its own mix continues from the room's limiter gain.
                    fresh = legs[~had_private[legs]]
                    self._priv_gain[fresh] = self._room_gain[room[fresh]]
                    start = add_rows(block, self._priv_gain[legs], ("leg", legs))
                    kinds[legs] = OutputKind.MIX
                    index[legs] = start + np.arange(legs.size, dtype=np.int32)
                    self._priv_live[legs] = True

        if not parts:
            return np.zeros((0, frame), np.int16)
        block = np.concatenate(parts) if len(parts) > 1 else parts[0]
        state = np.concatenate(states)
        out = self._limiter.process(block, state)
        offset = 0
        for (kind, where), part in zip(owners, parts, strict=True):
            target = self._room_gain if kind == "room" else self._priv_gain
            target[where] = state[offset : offset + len(part)]
            offset += len(part)
        return out

    def _speaking_events(self, speaking: npt.NDArray[np.bool_]) -> list[MixerEvent]:
        n = self._n
        changed = np.flatnonzero(speaking != self._was_speaking[:n])
        self._was_speaking[:n] = speaking
        events: list[MixerEvent] = []
        for slot in changed:
            room_id, leg_id = self._room_ids[self._room[slot]], self._ids[slot]
            events.append(SpeakingStarted(room_id, leg_id) if speaking[slot] else SpeakingStopped(room_id, leg_id))
        return events

    def _dominant_events(self, room: npt.NDArray[np.int32], speaking: npt.NDArray[np.bool_]) -> list[MixerEvent]:
        """The dominant speaker changes at once when the current one is silent, or after a challenger has been
        ``dominant_margin_db`` louder for ``dominant_hold_ms`` (so the indicator does not flicker)."""
        r = self._r
        level = self._vad.level_db
        best = np.full(r, -1, np.int32)
        talking = np.flatnonzero(speaking)
        if talking.size:
            order = np.lexsort((-level[talking], room[talking]))
            ranked = talking[order]
            groups = room[ranked]
            first = _group_starts(groups)
            best[groups[first]] = ranked[first]
        dom = self._dominant[:r]
        dom_safe = np.maximum(dom, 0)
        dom_speaking = (dom >= 0) & speaking[dom_safe]
        has_best = best >= 0
        best_safe = np.maximum(best, 0)
        challenge = has_best & dom_speaking & (best != dom)
        challenge &= level[best_safe] > level[dom_safe] + self.config.dominant_margin_db
        same = challenge & (self._challenger[:r] == best)
        self._challenge_frames[:r] = np.where(challenge, np.where(same, self._challenge_frames[:r] + 1, 1), 0)
        self._challenger[:r] = np.where(challenge, best, -1)
        switch = (has_best & ~dom_speaking) | (challenge & (self._challenge_frames[:r] >= self._hold_frames))
        switch &= best != dom
        events: list[MixerEvent] = []
        for rid in np.flatnonzero(switch):
            previous = self._ids[dom[rid]] if dom[rid] >= 0 else None
            events.append(DominantSpeakerChanged(self._room_ids[rid], self._ids[best[rid]], previous))
            dom[rid] = best[rid]
            self._challenger[rid] = -1
            self._challenge_frames[rid] = 0
        return events

    def _comfort_noise(self) -> npt.NDArray[np.int16]:
        level = self.config.comfort_noise_dbfs
        if level is None:
            return self._silence
        sigma = db_to_gain(level) * FULL_SCALE
        noise = np.rint(self._rng.normal(0.0, sigma, self.frame_samples)).astype(np.int16)
        noise.flags.writeable = False
        return noise

    # -- bookkeeping -----------------------------------------------------------------------------------------------

    def _slot(self, leg_id: Hashable) -> int:
        try:
            return self._slot_of[leg_id]
        except KeyError:
            raise UnknownLeg(leg_id) from None

    def _check_gain(self, gain: float) -> None:
        if not 0.0 <= gain <= self._max_gain:
            raise ValueError(f"gain must be between 0 and {self._max_gain:.2f}")

    def _leg_arrays(self) -> list[npt.NDArray[np.generic]]:
        return [
            self._present, self._room, self._gain, self._muted, self._listen_only, self._in_mix,
            self._was_speaking, self._priv_gain, self._priv_live,
        ]  # fmt: skip

    def _grow_legs(self, capacity: int) -> None:
        old = len(self._room)
        extra = capacity - old
        if extra <= 0:
            return
        self._bufs = [np.concatenate([b, np.zeros((extra, self.frame_samples), np.int16)]) for b in self._bufs]
        (
            self._present, self._room, self._gain, self._muted, self._listen_only, self._in_mix,
            self._was_speaking, self._priv_gain, self._priv_live,
        ) = [np.concatenate([a, np.zeros(extra, a.dtype)]) for a in self._leg_arrays()]  # fmt: skip
        self._vad.grow(capacity)

    def _grow_rooms(self, capacity: int) -> None:
        extra = capacity - len(self._room_legs)
        if extra <= 0:
            return
        self._room_legs = np.concatenate([self._room_legs, np.zeros(extra, np.int32)])
        self._room_gain = np.concatenate([self._room_gain, np.ones(extra, np.float32)])
        self._dominant = np.concatenate([self._dominant, np.full(extra, -1, np.int32)])
        self._challenger = np.concatenate([self._challenger, np.full(extra, -1, np.int32)])
        self._challenge_frames = np.concatenate([self._challenge_frames, np.zeros(extra, np.int32)])

    def _move_leg(self, src: int, dst: int) -> None:
        for buf in self._bufs:
            buf[dst] = buf[src]
        for array in self._leg_arrays():
            array[dst] = array[src]
        self._vad.move(src, dst)
        leg_id = self._ids[src]
        self._ids[dst] = leg_id
        self._slot_of[leg_id] = dst
        r = self._r
        self._dominant[:r][self._dominant[:r] == src] = dst
        self._challenger[:r][self._challenger[:r] == src] = dst

    def _drop_room(self, room: int) -> None:
        room_id = self._room_ids[room]
        last = self._r - 1
        if room != last:
            moved_id = self._room_ids[last]
            for array in (self._room_legs, self._room_gain, self._dominant, self._challenger, self._challenge_frames):
                array[room] = array[last]
            self._room[: self._n][self._room[: self._n] == last] = room
            self._room_ids[room] = moved_id
            self._room_of[moved_id] = room
        self._room_ids.pop()
        del self._room_of[room_id]
        self._r -= 1
