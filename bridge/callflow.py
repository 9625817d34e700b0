"""The phone call flow (IVR): welcome, conference code, entry code, lobby or room, in-call keys.

Paced by the media clock (one step per engine tick), so a prompt, a key and a timeout are all seen at 20 ms
resolution and the flow runs the same on real and on virtual time. Wrong codes of every kind get the same words;
the reasons go to the audit trail. Three tries per call; past the failure limit of the caller's number or source
address the call hears goodbye before any code is asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.engine import Engine
from bridge.guard import FailureGuard
from bridge.leg import Leg
from bridge.prompts import PromptLibrary
from bridge.prompts.tones import join_tone, leave_tone
from config import Language, LobbyMode, Settings
from dtmf.entry import CodeEntry, EntryOutcome, EntryResult, InCallKey, InCallKeys
from rooms import AuditKind, DialInOutcome, Rooms
from rooms.contacts import mask_phone

log = logging.getLogger(__name__)


class _Gone(Exception):
    """The caller hung up (or the leg failed) while the flow was talking to them."""


class CallOutcome(StrEnum):
    BLOCKED = "blocked"  # over the failure limit: goodbye before any code
    REFUSED = "refused"  # no valid code in the tries allowed
    DENIED = "denied"  # the host refused the caller in the lobby
    ENDED = "ended"  # joined, then left (hung up or room closed)


@dataclass
class Call:
    """A call the SIP side hands over: its audio leg, its digits (merged from every source), how to end it."""

    leg: Leg
    caller_e164: str | None
    source: str
    hangup: Callable[[], None]
    digits: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    language: Language = Language.FR
    inband_dtmf: bool = False  # listen for keypad tones in the audio (until the phone signals its digits)
    # A code complete at its length may still be followed by the # the prompt asked for: not a key of the next entry.
    skip_hash: bool = False
    # When the last key reached the bridge (set by the SIP side as digits arrive): the code's final # → joined time.
    last_digit_at: float | None = None


@dataclass
class Lobby:
    """Callers waiting for a host, by conference: the web page (or the CLI) admits or denies them."""

    waiting: dict[str, tuple[Hashable, asyncio.Future[bool]]] = field(default_factory=dict)

    def wait(self, leg_id: str, room_id: Hashable) -> asyncio.Future[bool]:
        decision: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting[leg_id] = (room_id, decision)
        return decision

    def admit(self, leg_id: str) -> bool:
        return self._decide(leg_id, True)

    def deny(self, leg_id: str) -> bool:
        return self._decide(leg_id, False)

    def in_room(self, room_id: Hashable) -> list[str]:
        return [leg for leg, (room, _) in self.waiting.items() if room == room_id]

    def _decide(self, leg_id: str, admitted: bool) -> bool:
        entry = self.waiting.pop(leg_id, None)
        if entry is None or entry[1].done():
            return False
        entry[1].set_result(admitted)
        return True


class CallFlow:
    def __init__(
        self,
        *,
        engine: Engine,
        rooms: Rooms,
        prompts: PromptLibrary,
        guard: FailureGuard,
        settings: Settings,
        lobby: Lobby,
        now: Callable[[], float],
        host_present: Callable[[Hashable], bool] = lambda room: False,
    ) -> None:
        self.engine, self.rooms, self.prompts, self.guard = engine, rooms, prompts, guard
        self.settings, self.lobby, self._now = settings, lobby, now
        self.host_present = host_present  # the web site sets it: is a host of this room connected?
        # Seconds from the caller's final key (the # of a code, or of the entry code) to hearing the room, for
        # the callers who went straight in (no lobby): the latest ones, for /stats and the benchmark.
        self.join_delays: deque[float] = deque(maxlen=10_000)

    async def run(self, call: Call) -> CallOutcome:
        """A caller of the public number: codes, then lobby or room."""
        return await self._guarded(call, self._dial_in(call))

    async def run_direct(self, call: Call, conference_id: Hashable) -> CallOutcome:
        """A call placed for one conference at a host's request (dial-out, or a PBX connecting its callee):
        "you are joining the conference", then in the room; no code, no lobby (the host asked for this one)."""
        return await self._guarded(call, self._direct(call, conference_id))

    async def _guarded(self, call: Call, flow: Coroutine[Any, Any, CallOutcome]) -> CallOutcome:
        leg = call.leg
        self.engine.join(f"ivr:{leg.id}", leg, inband_dtmf=call.inband_dtmf)
        try:
            return await flow
        except _Gone:
            log.info("call %s: the caller left during the flow", leg.id)
            return CallOutcome.ENDED
        finally:
            self.engine.leave(leg.id)
            call.hangup()

    async def _dial_in(self, call: Call) -> CallOutcome:
        keys = [f"source:{call.source}"] + ([f"caller:{call.caller_e164}"] if call.caller_e164 else [])
        shown = mask_phone(call.caller_e164) if call.caller_e164 else "anonymous"
        if self.guard.blocked(keys, self._now()):
            log.warning("call %s from %s refused: too many failed codes", call.leg.id, shown)
            await asyncio.to_thread(
                self.rooms.record, AuditKind.DIAL_IN_REFUSED, detail={"reason": "rate-limited", "source": shown}
            )
            await self._say(call, ["goodbye_attempts"])
            return CallOutcome.BLOCKED
        return await self._codes(call, keys, shown)

    async def _direct(self, call: Call, conference_id: Hashable) -> CallOutcome:
        await self._say(call, ["joining"])
        return await self._enter(call, conference_id, LobbyMode.OFF)

    # -- codes ---------------------------------------------------------------------------------------------------

    async def _codes(self, call: Call, keys: list[str], shown: str) -> CallOutcome:
        limits = self.settings.limits
        prompt = "welcome"
        for attempt in range(limits.code_attempts_per_call):
            code = await self._ask(call, prompt, self._entry(9, submit_at_max=True), language_key=attempt == 0)
            decision = None
            if code.result is EntryResult.CODE:
                decision = await asyncio.to_thread(self.rooms.resolve_dial_in, code.digits, None, source=shown)
                if decision.outcome is DialInOutcome.ENTRY_CODE_NEEDED:
                    maximum = self.settings.codes.entry_code_max_digits
                    entry = await self._ask(call, "enter_entry_code", self._entry(maximum))
                    typed = entry.digits if entry.result is EntryResult.CODE else ""
                    decision = await asyncio.to_thread(self.rooms.resolve_dial_in, code.digits, typed, source=shown)
            if decision is not None and decision.admitted and decision.conference is not None:
                return await self._enter(call, decision.conference.id, decision.conference.lobby_mode)
            if code.result is not EntryResult.TIMEOUT or decision is not None:
                self.guard.record(keys, self._now(), shown=shown)
            if attempt + 1 < limits.code_attempts_per_call:
                await self._say(call, ["wrong_code"])
                prompt = "enter_code"
        log.info("call %s: no valid code after %d tries", call.leg.id, limits.code_attempts_per_call)
        await self._say(call, ["goodbye_attempts"])
        return CallOutcome.REFUSED

    def _entry(self, max_digits: int, *, submit_at_max: bool = False) -> CodeEntry:
        limits = self.settings.limits
        return CodeEntry(
            max_digits=max_digits,
            first_digit_timeout_s=limits.first_digit_timeout_s,
            inter_digit_timeout_s=limits.inter_digit_timeout_s,
            submit_at_max=submit_at_max,
        )

    async def _ask(self, call: Call, prompt: str, entry: CodeEntry, *, language_key: bool = False) -> EntryOutcome:
        """Play ``prompt`` (any key cuts it) and collect a code; the time to type starts when the prompt ends.
        On the welcome, ``*`` as the very first key switches to English and plays it again."""
        leg_id = call.leg.id
        playing = self._play(call, [prompt])
        started = False
        while True:
            await self._tick(call)
            if not started and (playing.done() or not self.engine.playing(leg_id)):
                entry.start(self._now())
                started = True
            while not call.digits.empty():
                digit = call.digits.get_nowait()
                if call.skip_hash:
                    call.skip_hash = False
                    if digit == "#":
                        continue
                if language_key and digit == "*" and entry.typed == 0 and call.language is Language.FR:
                    call.language = Language.EN
                    playing = self._play(call, [prompt])
                    started = False
                    continue
                if not started:
                    self.engine.stop_playback(leg_id)
                    entry.start(self._now())
                    started = True
                outcome = entry.feed(digit, self._now())
                if outcome is not None:
                    call.skip_hash = entry.submit_at_max and len(outcome.digits) == entry.max_digits and digit != "#"
                    return outcome
            if started:
                outcome = entry.poll(self._now())
                if outcome is not None:
                    return outcome

    # -- lobby and room ------------------------------------------------------------------------------------------

    async def _enter(self, call: Call, conference_id: Hashable, mode: LobbyMode) -> CallOutcome:
        leg_id, room = call.leg.id, str(conference_id)
        wait = mode is LobbyMode.ALWAYS or (mode is LobbyMode.UNTIL_HOST and not self.host_present(room))
        if wait:
            self.engine.move(leg_id, f"lobby:{room}", listen_only=True)
            decision = self.lobby.wait(leg_id, room)
            log.info("call %s waits in the lobby of %s", leg_id, room)
            while not decision.done():
                if not self.engine.playing(leg_id):
                    self._play(call, ["waiting_host"])
                if mode is LobbyMode.UNTIL_HOST and self.host_present(room):
                    self.lobby.admit(leg_id)
                try:
                    await self._tick(call)
                except _Gone:
                    self.lobby.waiting.pop(leg_id, None)
                    raise
            self.engine.stop_playback(leg_id)
            if not decision.result():
                await self._say(call, ["denied"])
                return CallOutcome.DENIED
        others = self.engine.legs_in(room)
        self.engine.move(leg_id, room)
        if not wait and call.last_digit_at is not None:
            self.join_delays.append(self._now() - call.last_digit_at)
        log.info("call %s joined conference %s", leg_id, room)
        self._announce(others, join_tone)
        if not others:
            self._play(call, ["first_participant"], replace_room=False)
        try:
            return await self._in_call(call, room)
        finally:
            self._announce([leg for leg in self.engine.legs_in(room) if leg != leg_id], leave_tone)

    def _announce(self, legs: list[str], make: Callable[[int], npt.NDArray[np.int16]]) -> None:
        """A short tone to everyone else in the room, over what they hear."""
        for other in legs:
            if not self.engine.playing(other):
                self.engine.play(other, make(self.engine.rate_of(other)), replace_room=False)

    async def _in_call(self, call: Call, room: str) -> CallOutcome:
        """Asleep until a key comes or the leg leaves the engine: a hundred callers in rooms cost nothing per tick."""
        keys = InCallKeys()
        muted = False
        left = self.engine.left(call.leg.id)
        while not left.done():
            key_pressed: asyncio.Future[str] = asyncio.ensure_future(call.digits.get())
            waiting: set[asyncio.Future[Any]] = {key_pressed, left}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not key_pressed.done():
                key_pressed.cancel()
                break
            pending = [key_pressed.result()]
            while not call.digits.empty():
                pending.append(call.digits.get_nowait())
            for digit in pending:
                key = keys.feed(digit, self._now())
                if key is InCallKey.MUTE:
                    muted = not muted
                    self.engine.set_muted(call.leg.id, muted)
                    self._play(call, ["muted" if muted else "unmuted"], replace_room=False)
                elif key is InCallKey.COUNT:
                    count = min(len(self.engine.legs_in(room)), 99)
                    self._play_samples(call, self._count(call, count), replace_room=False)
                elif key is InCallKey.HELP:
                    self._play(call, ["help"], replace_room=False)
        return CallOutcome.ENDED

    def _count(self, call: Call, count: int) -> npt.NDArray[np.int16]:
        rate = call.leg.rate_hz
        number = self.prompts.say_number(call.language, count, rate)
        rest = self.prompts.get(call.language, "participants", rate)
        return np.concatenate([number, np.zeros(rate // 10, np.int16), rest])

    # -- prompts -------------------------------------------------------------------------------------------------

    def _play(self, call: Call, names: list[str], *, replace_room: bool = True) -> asyncio.Future[bool]:
        samples = self.prompts.sequence(call.language, names, call.leg.rate_hz)
        return self._play_samples(call, samples, replace_room=replace_room)

    async def _tick(self, call: Call) -> None:
        await self.engine.next_tick()
        if call.leg.closed or call.leg.id not in self.engine:
            raise _Gone

    def _play_samples(self, call: Call, samples: npt.NDArray[np.int16], *, replace_room: bool) -> asyncio.Future[bool]:
        if call.leg.id not in self.engine:
            raise _Gone
        done = self.engine.play(call.leg.id, samples, replace_room=replace_room)
        if done is None:  # pragma: no cover - always inside the loop here
            raise RuntimeError("prompts are played from the event loop")
        return done

    async def _say(self, call: Call, names: list[str]) -> None:
        """Play to the end (keys ignored), e.g. goodbye."""
        done = self._play(call, names)
        while not done.done():
            await self._tick(call)
