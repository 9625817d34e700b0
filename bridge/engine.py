"""The engine: every room's legs, pulled, mixed and pushed once per media-clock tick.

Each tick: one frame from each leg (converted to the mixer's 48 kHz at the leg's edge; nothing or a wrong-sized
frame is silence and counted), one vectorised mix of all rooms (:mod:`mixer`), one frame back to each leg at its own
rate. A leg that raises is closed and taken out after the tick; its room and every other leg go on.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bridge.clock import GcPacer, MediaClock
from bridge.leg import Leg, LegStats, SharedWriter
from dtmf.detector import DtmfDetector
from mixer import Mixer, MixerConfig, MixerEvent, MixResult, OutputKind
from mixer.resample import ResamplerBank

log = logging.getLogger(__name__)
INBAND_RATE_HZ = 8000


@dataclass
class _Playback:
    """A prompt being played to one leg, over (or instead of) what its room gives it."""

    samples: npt.NDArray[np.int16]
    done: asyncio.Future[bool] | None
    duck_room: bool
    position: int = 0


@dataclass
class _Banks:
    to_mix: ResamplerBank
    from_mix: ResamplerBank
    free: list[int]


@dataclass
class _Member:
    leg: Leg
    room_id: Hashable
    rate: int  # the leg's rate, asked several times per tick
    frame_in: int
    row: int  # the leg's row in the converter banks of its rate (filter history, each way)
    stats: LegStats = field(default_factory=LegStats)
    playback: _Playback | None = None
    inband_slot: int | None = None  # row in the in-band DTMF detector, while the leg's digits come as tones
    direct_out: bool = False  # last tick's frame went out unconverted (see Engine.tick)
    shares: bool = False  # the leg is a SharedWriter


class TickTimes:
    """A histogram of tick durations in fixed buckets (seconds, Prometheus' "le" bounds): one bisect per tick."""

    BOUNDS = (0.001, 0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.040, 0.100)

    def __init__(self) -> None:
        self.counts = [0] * (len(self.BOUNDS) + 1)  # the last: above every bound
        self.total_s = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.BOUNDS, seconds)] += 1
        self.total_s += seconds


class Engine:
    def __init__(
        self, config: MixerConfig | None = None, *, inband_capacity: int = 256, bank_capacity: int = 512
    ) -> None:
        self.config = config or MixerConfig()
        self.mixer = Mixer(self.config)
        # In-band DTMF on 8 kHz legs: one detector row per leg that may send its digits as tones, all detected in
        # one call per tick; their audio reaches the room 40 ms late with every keypad tone muted.
        self._inband = DtmfDetector(INBAND_RATE_HZ, legs=inband_capacity)
        self._inband_free = list(range(inband_capacity - 1, -1, -1))
        self._inband_legs: dict[int, str] = {}
        for slot in range(inband_capacity):
            self._inband.set_enabled(slot, False)
        self.on_digit: Callable[[str, str], None] | None = None
        self._banks: dict[int, _Banks] = {}
        self._bank_capacity = bank_capacity
        self._members: dict[str, _Member] = {}
        self.on_events: Callable[[tuple[MixerEvent, ...]], None] | None = None
        self.ticks = 0
        self._waiters: list[asyncio.Future[int]] = []
        self._gone: dict[str, asyncio.Future[None]] = {}
        self.on_leg_closed: Callable[[str, Hashable], None] | None = None
        self.clock: MediaClock | None = None  # the clock of run(), for its statistics
        self._silences: dict[int, npt.NDArray[np.int16]] = {}
        self._last: MixResult | None = None
        self.labels: dict[str, str] = {}  # leg id → what a room's page shows for it (name, masked number)
        # Called with a room's id when what participants() says of it may have changed (who is in, muted, label,
        # speaking): the room's page is pushed the change, nothing polls.
        self.presence_listeners: list[Callable[[Hashable], None]] = []
        # Called first in every tick, before the legs are read: the SIP gateway's RtpHub reads every call's packets.
        self.before_tick: list[Callable[[], object]] = []
        self._failed_hooks: set[Callable[[], object]] = set()
        self.tick_times = TickTimes()  # how long each tick of run() took (/metrics)

    # -- membership ----------------------------------------------------------------------------------------------

    def join(
        self, room_id: Hashable, leg: Leg, *, muted: bool = False, listen_only: bool = False, inband_dtmf: bool = False
    ) -> None:
        if leg.id in self._members:
            raise ValueError(f"leg {leg.id} is already in a room")
        member = _Member(
            leg=leg,
            room_id=room_id,
            rate=leg.rate_hz,
            frame_in=leg.rate_hz * self.config.frame_ms // 1000,
            row=self._take_row(leg.rate_hz),
            shares=isinstance(leg, SharedWriter),
        )
        self.mixer.add_leg(leg.id, room_id, muted=muted, listen_only=listen_only)
        self._members[leg.id] = member
        if inband_dtmf and leg.rate_hz == INBAND_RATE_HZ and self._inband_free:
            slot = self._inband_free.pop()
            self._inband.reset(slot)
            self._inband.set_enabled(slot, True)
            self._inband_legs[slot] = leg.id
            member.inband_slot = slot
        log.info("leg %s (%s, %d Hz) joined room %s", leg.id, leg.kind, leg.rate_hz, room_id)
        self._presence(room_id)

    def leave(self, leg_id: str) -> None:
        """Take a leg out of its room and close it (safe for a leg already gone)."""
        self.labels.pop(leg_id, None)
        member = self._members.pop(leg_id, None)
        gone = self._gone.pop(leg_id, None)
        if gone is not None and not gone.done():
            gone.set_result(None)
        if member is None:
            return
        self._release_inband(member)
        if member.playback is not None:
            _settle(member.playback, False)
        self._banks[member.leg.rate_hz].free.append(member.row)
        self.mixer.remove_leg(leg_id)
        try:
            member.leg.close()
        except Exception:  # a leg that fails to close is gone all the same
            log.exception("leg %s failed to close", leg_id)
        log.info("leg %s left room %s", leg_id, member.room_id)
        self._presence(member.room_id)
        if self.on_leg_closed is not None:
            self.on_leg_closed(leg_id, member.room_id)

    def _take_row(self, rate_hz: int) -> int:
        banks = self._banks.get(rate_hz)
        if banks is None:
            mix_rate, capacity = self.config.sample_rate_hz, self._bank_capacity
            banks = self._banks[rate_hz] = _Banks(
                ResamplerBank(rate_hz, mix_rate, capacity), ResamplerBank(mix_rate, rate_hz, capacity),
                list(range(capacity - 1, -1, -1)),
            )  # fmt: skip
        if not banks.free:
            raise ValueError(f"no room for another {rate_hz} Hz leg (engine bank capacity {self._bank_capacity})")
        row = banks.free.pop()
        banks.to_mix.reset(row)
        banks.from_mix.reset(row)
        return row

    def stop_inband(self, leg_id: str) -> None:
        """The leg's digits now come signalled (RFC 4733, SIP INFO): stop listening for tones, and delaying it."""
        member = self._members.get(leg_id)
        if member is not None:
            self._release_inband(member)

    def _release_inband(self, member: _Member) -> None:
        if member.inband_slot is not None:
            self._inband.set_enabled(member.inband_slot, False)
            del self._inband_legs[member.inband_slot]
            self._inband_free.append(member.inband_slot)
            member.inband_slot = None

    def move(self, leg_id: str, room_id: Hashable, *, muted: bool = False, listen_only: bool = False) -> None:
        """Into another room (lobby → conference); the leg and its converters keep their state."""
        member = self._members[leg_id]
        self.mixer.remove_leg(leg_id)
        self.mixer.add_leg(leg_id, room_id, muted=muted, listen_only=listen_only)
        left, member.room_id = member.room_id, room_id
        self._presence(left)
        self._presence(room_id)

    def play(
        self, leg_id: str, samples: npt.NDArray[np.int16], *, replace_room: bool = True
    ) -> asyncio.Future[bool] | None:
        """Play ``samples`` (at the leg's own rate) to one leg; a prompt already playing is cut. With
        ``replace_room`` the leg hears only the prompt, else the prompt over the room. The future (when a loop
        runs) resolves True when the prompt ended, False when it was stopped or the leg left."""
        member = self._members[leg_id]
        self.stop_playback(leg_id)
        try:
            done: asyncio.Future[bool] | None = asyncio.get_running_loop().create_future()
        except RuntimeError:
            done = None
        member.playback = _Playback(np.asarray(samples, np.int16), done, replace_room)
        return done

    def stop_playback(self, leg_id: str) -> None:
        """Stop the prompt playing to ``leg_id`` (a key was pressed: prompts are interruptible)."""
        member = self._members.get(leg_id)
        if member is not None and member.playback is not None:
            _settle(member.playback, False)
            member.playback = None

    def playing(self, leg_id: str) -> bool:
        member = self._members.get(leg_id)
        return member is not None and member.playback is not None

    def set_muted(self, leg_id: str, muted: bool) -> None:
        self.mixer.set_muted(leg_id, muted)
        member = self._members.get(leg_id)
        if member is not None:
            self._presence(member.room_id)

    def is_muted(self, leg_id: str) -> bool:
        return self.mixer.is_muted(leg_id)

    def set_label(self, leg_id: str, label: str) -> None:
        """What the room's page shows for the leg (a display name, a masked number)."""
        self.labels[leg_id] = label
        member = self._members.get(leg_id)
        if member is not None:
            self._presence(member.room_id)

    def room_of(self, leg_id: str) -> Hashable | None:
        member = self._members.get(leg_id)
        return None if member is None else member.room_id

    def _presence(self, room_id: Hashable) -> None:
        for listener in self.presence_listeners:
            try:
                listener(room_id)
            except Exception:  # a page's trouble never stops the media clock
                log.exception("presence listener failed")

    def changed(self, leg_id: str) -> None:
        """What participants() says of ``leg_id`` changed outside the tick (its line's quality): its room's page
        is pushed it."""
        member = self._members.get(leg_id)
        if member is not None:
            self._presence(member.room_id)

    def lines(self) -> list[dict[str, object]]:
        """Every leg that measures its line (phone calls): its id, where it is (room, lobby or voice menu) and its
        figures (bridge.rtp.session.RtpSession.network); for GET /stats."""
        out: list[dict[str, object]] = []
        for leg_id, member in self._members.items():
            network = getattr(member.leg, "network", None)
            if callable(network):
                room = str(member.room_id)
                where = room.split(":", 1)[0] if room.startswith(("lobby:", "ivr:")) else "room"
                out.append({"leg": leg_id, "in": where, **network()})
        return out

    def participants(self, room_id: Hashable) -> list[dict[str, object]]:
        """Who is in a room, for its page: leg id, label (set by whoever brought the leg: a display name, a masked
        number), kind, talking now (the mixer's voice activity at the last tick), muted, and for a phone its line
        in a word once measured ("good", "weak", "poor"; None before)."""
        out: list[dict[str, object]] = []
        for leg_id in self.legs_in(room_id):
            member = self._members[leg_id]
            last = self._last
            muted = self.mixer.is_muted(leg_id)
            # A muted leg's voice still moves the mixer's activity, but nobody hears it: never "speaking".
            speaking = not muted and last is not None and leg_id in last.slots and last.is_speaking(leg_id)
            entry: dict[str, object] = {"id": leg_id, "label": self.labels.get(leg_id, ""),
                                        "kind": str(member.leg.kind), "speaking": speaking, "muted": muted}  # fmt: skip
            line = getattr(member.leg, "line", None)
            if line is not None:
                entry["line"] = line
            out.append(entry)
        return out

    def set_listen_only(self, leg_id: str, listen_only: bool) -> None:
        self.mixer.set_listen_only(leg_id, listen_only)

    def rooms(self) -> set[Hashable]:
        """The rooms that have legs now (lobbies and the voice menu's own rooms included)."""
        return {m.room_id for m in self._members.values()}

    def legs_in(self, room_id: Hashable) -> list[str]:
        return [leg_id for leg_id, m in self._members.items() if m.room_id == room_id]

    def rate_of(self, leg_id: str) -> int:
        return self._members[leg_id].rate

    def stats(self, leg_id: str) -> LegStats:
        member = self._members[leg_id]
        if self._last is not None and leg_id in self._last.slots:  # the level, as the mixer measured it last
            member.stats.level_dbfs = self._last.level(leg_id)
        return member.stats

    def __contains__(self, leg_id: object) -> bool:
        return leg_id in self._members

    def kinds(self) -> dict[str, int]:
        """Legs by kind (sip, webrtc, local)."""
        out: dict[str, int] = {}
        for member in self._members.values():
            kind = str(member.leg.kind)
            out[kind] = out.get(kind, 0) + 1
        return out

    def occupancy(self) -> dict[str, int]:
        """Legs in conference rooms, in lobbies, in the call flow (IVR), and the rooms with someone in."""
        kinds = {"room": 0, "lobby": 0, "ivr": 0}
        rooms = set()
        for member in self._members.values():
            room = str(member.room_id)
            kind = room.split(":", 1)[0] if room.startswith(("lobby:", "ivr:")) else "room"
            kinds[kind] += 1
            if kind == "room":
                rooms.add(room)
        return {"legs_in_rooms": kinds["room"], "legs_in_lobbies": kinds["lobby"], "legs_in_ivr": kinds["ivr"],
                "rooms": len(rooms)}  # fmt: skip

    # -- the tick ------------------------------------------------------------------------------------------------

    def tick(self) -> MixResult:
        for hook in self.before_tick:
            try:
                hook()
            except Exception:  # a reader's trouble never stops the media clock; said once, not every tick
                if hook not in self._failed_hooks:
                    self._failed_hooks.add(hook)
                    log.exception("a before-tick hook failed (further failures of it not logged)")
        for leg_id in [i for i, m in self._members.items() if m.leg.closed]:  # hung up since the last tick
            self.leave(leg_id)
        failed: list[str] = []
        rows_needed = self._inband.legs if self._inband_legs else 0  # no detector block when no leg needs one
        inband = np.zeros((rows_needed, INBAND_RATE_HZ * self.config.frame_ms // 1000), np.int16)
        inband_rows: dict[int, str] = {}
        incoming: dict[int, list[tuple[str, npt.NDArray[np.int16]]]] = {}  # by rate: the frames to convert
        for leg_id, member in self._members.items():
            try:
                frame = member.leg.read()
            except Exception:
                log.exception("leg %s failed to give a frame: closing it", leg_id)
                failed.append(leg_id)
                continue
            if frame is None or frame.shape != (member.frame_in,):
                member.stats.missing += 1
                if member.inband_slot is not None:  # silence, but its delayed audio still comes out
                    inband_rows[member.inband_slot] = leg_id
                continue
            member.stats.frames_in += 1
            if member.inband_slot is not None:
                inband[member.inband_slot] = frame
                inband_rows[member.inband_slot] = leg_id
                continue
            incoming.setdefault(member.rate, []).append((leg_id, frame))
        if self._inband_legs:
            self._detect(inband, inband_rows, incoming)
        # The frames as the legs gave them, before conversion: a leg that hears exactly one other leg of its own
        # rate (two people in a room) gets that frame as it came, with no round trip through the mixing rate.
        native = {leg_id: frame for frames in incoming.values() for leg_id, frame in frames}
        buffer, present, slot_of = self.mixer.input_buffer()
        for rate, frames in incoming.items():  # every leg of a rate converted in one product, written in one
            banks = self._banks[rate]
            rows = np.array([self._members[leg_id].row for leg_id, _ in frames], dtype=np.intp)
            slots = np.array([slot_of[leg_id] for leg_id, _ in frames], dtype=np.intp)
            buffer[slots] = banks.to_mix.process(np.stack([f for _, f in frames]), rows)
            present[slots] = True
        result = self._last = self.mixer.tick()
        outgoing: dict[int, list[tuple[str, npt.NDArray[np.int16] | None]]] = {}
        by_slot: dict[int, Hashable] | None = None
        for leg_id, member in self._members.items():
            if leg_id in failed:
                continue
            rate = member.rate
            direct: npt.NDArray[np.int16] | None = None
            if rate == self.config.sample_rate_hz:  # the mixer's own frame: no conversion, no copy
                direct = result.frame(leg_id)
            else:
                kind, index = result.group(leg_id)
                if kind is OutputKind.SILENCE:
                    direct = self._silence(rate)
                elif kind is OutputKind.INPUT:
                    if by_slot is None:
                        by_slot = {slot: other for other, slot in result.slots.items()}
                    source = by_slot.get(index)
                    if source is not None and source in native and self._members[source].rate == rate:
                        direct = native[source]
                if direct is None and member.direct_out:
                    self._banks[rate].from_mix.reset(member.row)  # its filter history is of long ago
                member.direct_out = direct is not None
            outgoing.setdefault(rate, []).append((leg_id, direct))
        writes: list[tuple[str, _Member, npt.NDArray[np.int16]]] = []
        for rate, pending in outgoing.items():
            banks = self._banks[rate]
            convert = [leg_id for leg_id, direct in pending if direct is None]
            converted_out: dict[str, npt.NDArray[np.int16]] = {}
            if convert:
                rows = np.array([self._members[leg_id].row for leg_id in convert], dtype=np.intp)
                frames_out = banks.from_mix.process(np.stack([result.frame(leg_id) for leg_id in convert]), rows)
                converted_out = dict(zip(convert, frames_out, strict=True))
            for leg_id, direct in pending:
                out = direct if direct is not None else converted_out[leg_id]
                member = self._members[leg_id]
                if member.playback is not None:
                    out = self._overlay(member, member.playback, out)
                writes.append((leg_id, member, out))
        # Legs of a room that get the very same frame object this tick (the silent ones hear the same mix) and can
        # share it get it as one stream of the room: a browser leg's encode is then done once for all of them.
        sharing: dict[tuple[Hashable, int], int] = {}
        for _, member, out in writes:
            if member.shares:
                key = (member.room_id, id(out))
                sharing[key] = sharing.get(key, 0) + 1
        for leg_id, member, out in writes:
            try:
                if member.shares and sharing[(member.room_id, id(out))] > 1:
                    member.leg.write_shared(out, member.room_id, self.ticks)  # type: ignore[attr-defined]
                else:
                    member.leg.write(out)
            except Exception:
                log.exception("leg %s failed to take a frame: closing it", leg_id)
                failed.append(leg_id)
                continue
            member.stats.frames_out += 1
        for leg_id in failed:
            self.leave(leg_id)
        if result.events:
            if self.on_events is not None:
                self.on_events(result.events)
            if self.presence_listeners:
                for room_id in {event.room_id for event in result.events}:
                    self._presence(room_id)
        self.ticks += 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(self.ticks)
        return result

    def _silence(self, rate_hz: int) -> npt.NDArray[np.int16]:
        frame = self._silences.get(rate_hz)
        if frame is None:
            frame = np.zeros(rate_hz * self.config.frame_ms // 1000, np.int16)
            frame.flags.writeable = False
            self._silences[rate_hz] = frame
        return frame

    def left(self, leg_id: str) -> asyncio.Future[None]:
        """Resolves when ``leg_id`` leaves the engine (hung up, failed, taken out); at once if it is not in."""
        gone = self._gone.get(leg_id)
        if gone is None:
            gone = asyncio.get_running_loop().create_future()
            if leg_id in self._members:
                self._gone[leg_id] = gone
            else:
                gone.set_result(None)
        return gone

    async def next_tick(self) -> int:
        """Wait for the end of the next tick (call flows pace themselves on the media clock)."""
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await waiter

    def _detect(
        self,
        frames: npt.NDArray[np.int16],
        rows: dict[int, str],
        incoming: dict[int, list[tuple[str, npt.NDArray[np.int16]]]],
    ) -> None:
        """In-band digits of every tone-signalling leg at once; their audio goes on delayed, tones muted."""
        detected = self._inband.process(frames, clean=True)
        if detected.audio is not None:
            for slot, leg_id in rows.items():
                incoming.setdefault(INBAND_RATE_HZ, []).append((leg_id, detected.audio[slot]))
        for event in detected.events:
            owner = self._inband_legs.get(event.leg)
            if event.end is None and owner is not None and self.on_digit is not None:
                self.on_digit(owner, event.digit)

    def _overlay(self, member: _Member, playback: _Playback, room: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        chunk = playback.samples[playback.position : playback.position + len(room)]
        playback.position += len(room)
        out = np.zeros(len(room), np.int32) if playback.duck_room else room.astype(np.int32)
        out[: len(chunk)] += chunk
        if playback.position >= len(playback.samples):
            _settle(playback, True)
            member.playback = None
        return np.clip(out, -32768, 32767).astype(np.int16)

    async def run(self, stop: asyncio.Event, clock: MediaClock | None = None, gc_pacer: GcPacer | None = None) -> None:
        """Tick until ``stop`` is set; with ``gc_pacer``, the garbage collector runs after the ticks (see GcPacer)."""
        media = clock or MediaClock(self.config.frame_ms / 1000)
        self.clock = media
        if gc_pacer is not None:
            gc_pacer.start()

        def on_tick(_: int) -> None:
            began = time.perf_counter()
            self.tick()
            self.tick_times.observe(time.perf_counter() - began)
            if gc_pacer is not None:
                gc_pacer.after_tick()

        try:
            await media.run(on_tick, stop)
        finally:
            if gc_pacer is not None:
                gc_pacer.stop()


def _settle(playback: _Playback, finished: bool) -> None:
    if playback.done is not None and not playback.done.done():
        playback.done.set_result(finished)
