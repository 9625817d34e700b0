"""The phone call flow (IVR): welcome, conference code, entry code, lobby or room, in-call keys.

Paced by the media clock (one step per engine tick), so a prompt, a key and a timeout are all seen at 20 ms
resolution and the flow runs the same on real and on virtual time. Wrong codes of every kind get the same words;
the reasons go to the audit trail. Three tries per call. Guessing is slowed, never locked out
(:mod:`rooms.throttle`): each try is counted against the caller's number (and source address, when known) and,
for an entry code, its conference; past their free allowance the caller hears "please wait" until their turn.
Callers waiting for the same conference take turns on this node best first: the one whose number failed least,
then the latest come (an attacker's queue of calls does not hold back a caller who just dialled).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.engine import Engine
from bridge.leg import Leg
from bridge.prompts import PromptLibrary
from bridge.prompts.tones import join_tone, leave_tone
from config import Language, LobbyMode, Settings
from dtmf.entry import CodeEntry, EntryOutcome, EntryResult, InCallKey, InCallKeys
from rooms import DialInOutcome, Rooms
from rooms.cluster import Cluster, Home
from rooms.contacts import mask_phone
from rooms.throttle import Claim, Key

log = logging.getLogger(__name__)

TURN_SLACK_S = 1.0  # a waiting caller of better rank whose turn comes this soon is not overtaken
POST_DIAL_WAIT_S = 1.5  # dial-out: from the answer to the keys it was given (a switchboard greets first)


class _Gone(Exception):
    """The caller hung up (or the leg failed) while the flow was talking to them."""


class CallOutcome(StrEnum):
    REFUSED = "refused"  # no valid code in the tries allowed
    DENIED = "denied"  # the host refused the caller in the lobby
    ENDED = "ended"  # joined, then left (hung up or room closed)
    LOCKED = "locked"  # the right codes, but a host has locked the room


@dataclass
class Call:
    """A call the SIP side hands over: its audio leg, its digits (merged from every source), how to end it."""

    leg: Leg
    caller_e164: str | None
    source: str | None  # the address the call's packets come from, when the SIP stack tells it (not the From host)
    hangup: Callable[[], None]
    digits: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    language: Language = Language.FR
    inband_dtmf: bool = False  # listen for keypad tones in the audio (until the phone signals its digits)
    # A code complete at its length may still be followed by the # the prompt asked for: not a key of the next entry.
    skip_hash: bool = False
    # When the last key reached the bridge (set by the SIP side as digits arrive): the code's final # → joined time.
    last_digit_at: float | None = None
    in_menu: bool = True  # still in the voice menu (codes), not yet in a lobby or a room
    # Dial-out behind a switchboard or an IVR: keys sent once answered (RFC 4733), before "you are joining".
    post_dial: str = ""
    send_digits: Callable[[str], Awaitable[None]] | None = None


@dataclass
class Lobby:
    """Callers waiting for a host, by conference: the web page (or the CLI) admits or denies them. Whoever shows
    the lobby (the room's hub) is told of each change by ``listeners`` (called with the room id)."""

    waiting: dict[str, tuple[Hashable, asyncio.Future[bool]]] = field(default_factory=dict)
    listeners: list[Callable[[Hashable], None]] = field(default_factory=list)

    def wait(self, leg_id: str, room_id: Hashable) -> asyncio.Future[bool]:
        decision: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting[leg_id] = (room_id, decision)
        self._tell(room_id)
        return decision

    def admit(self, leg_id: str) -> bool:
        return self._decide(leg_id, True)

    def deny(self, leg_id: str) -> bool:
        return self._decide(leg_id, False)

    def forget(self, leg_id: str) -> None:
        """The leg left while waiting (hung up, tab closed, the service stopping)."""
        entry = self.waiting.pop(leg_id, None)
        if entry is not None:
            self._tell(entry[0])

    def in_room(self, room_id: Hashable) -> list[str]:
        return [leg for leg, (room, _) in self.waiting.items() if room == room_id]

    def _decide(self, leg_id: str, admitted: bool) -> bool:
        entry = self.waiting.pop(leg_id, None)
        if entry is None or entry[1].done():
            return False
        entry[1].set_result(admitted)
        self._tell(entry[0])
        return True

    def _tell(self, room_id: Hashable) -> None:
        for listener in self.listeners:
            listener(room_id)


class CallFlow:
    def __init__(
        self,
        *,
        engine: Engine,
        rooms: Rooms,
        prompts: PromptLibrary,
        settings: Settings,
        lobby: Lobby,
        now: Callable[[], float],
        host_present: Callable[[Hashable], bool] = lambda room: False,
    ) -> None:
        self.engine, self.rooms, self.prompts = engine, rooms, prompts
        self.limits = rooms.code_limits
        self._arrivals = itertools.count()
        # conference → waiting leg → (its rank, lowest first; when its own keys let it try)
        self._turns: dict[str, dict[str, tuple[tuple[int, int], float]]] = {}
        self._calls: dict[str, Call] = {}  # leg → the call, while the flow runs it
        self._ending: set[str] = set()  # legs told the conference ended, being taken out
        self._tasks: set[asyncio.Task[None]] = set()
        self.settings, self.lobby, self._now = settings, lobby, now
        self.host_present = host_present  # the web site sets it: is a host of this room connected?
        # The web site sets it: has a host locked this room (nobody new comes in)?
        self.room_locked: Callable[[Hashable], bool] = lambda room: False
        # The web site sets it: a caller's *9 raises or lowers its hand (leg, room → raised now).
        self.on_hand: Callable[[str, str], bool] | None = None
        # Seconds from the caller's final key (the # of a code, or of the entry code) to hearing the room, for
        # the callers who went straight in (no lobby): the latest ones, for /stats and the benchmark.
        self.join_delays: deque[float] = deque(maxlen=10_000)
        # The same for the callers taken to their room's node: final key → the relay to that node is up.
        self.relay_delays: deque[float] = deque(maxlen=10_000)
        # A cluster (rooms/cluster.py; `passerelle serve` sets both): where each room is mixed, and how a caller
        # whose room is mixed on another node is taken there (the gateway's relay).
        self.cluster: Cluster | None = None
        self.relay: Callable[[Call, uuid.UUID, Home], Awaitable[CallOutcome]] | None = None

    async def run(self, call: Call) -> CallOutcome:
        """A caller of the public number: codes, then lobby or room."""
        return await self._guarded(call, self._dial_in(call))

    async def run_moved(self, call: Call, conference_id: uuid.UUID) -> CallOutcome:
        """A caller of another node whose room is mixed here: its codes were checked there; the room's lock and
        lobby apply here, as to a caller of this node."""
        return await self._guarded(call, self._moved(call, conference_id))

    async def run_direct(self, call: Call, conference_id: Hashable) -> CallOutcome:
        """A call placed for one conference at a host's request (dial-out, or a PBX connecting its callee):
        "you are joining the conference", then in the room; no code, no lobby (the host asked for this one)."""
        return await self._guarded(call, self._direct(call, conference_id))

    async def _guarded(self, call: Call, flow: Coroutine[Any, Any, CallOutcome]) -> CallOutcome:
        leg = call.leg
        self.engine.join(f"ivr:{leg.id}", leg, inband_dtmf=call.inband_dtmf)
        self._calls[leg.id] = call
        try:
            return await flow
        except _Gone:
            log.info("call %s: the caller left during the flow", leg.id)
            return CallOutcome.ENDED
        finally:
            self._calls.pop(leg.id, None)
            self._ending.discard(leg.id)
            self.engine.leave(leg.id)
            call.hangup()

    def end_room(self, room: Hashable) -> None:
        """The conference ended (deleted, or its host ended it): each caller in its room or lobby hears "the
        conference has ended", then the bridge hangs up (BYE). Browsers are told by the site."""
        room_id = str(room)
        for leg_id in [*self.engine.legs_in(room_id), *self.lobby.in_room(room_id)]:
            call = self._calls.get(leg_id)
            if call is None or leg_id in self._ending:
                continue  # a browser's leg, or one already being taken out
            self._ending.add(leg_id)
            if leg_id in self.lobby.waiting:
                self.lobby.deny(leg_id)  # its flow says the ending (below, in _enter)
                continue
            task = asyncio.get_running_loop().create_task(self._take_out(call, room_id), name=f"end {leg_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        log.info("conference %s ended: its callers are taken out", room_id)

    async def take_everyone_out(self, prompt: str) -> None:
        """Every caller, wherever they are (codes, lobby, room), hears ``prompt`` and is hung up: the service is
        stopping. Returns when all have been."""
        outs = []
        for leg_id, call in list(self._calls.items()):
            if leg_id in self._ending:
                continue
            self._ending.add(leg_id)
            self.lobby.forget(leg_id)
            outs.append(self._take_out(call, "stopping", prompt))
        if outs:
            log.info("stopping: %d callers told", len(outs))
        await asyncio.gather(*outs, *self._tasks, return_exceptions=True)

    def mute_by_host(self, leg_id: str) -> bool:
        """A host muted this caller: it hears "you have been muted, press *6 to speak". False: not a caller here."""
        call = self._calls.get(leg_id)
        if call is None or leg_id in self._ending or leg_id not in self.engine:
            return False
        self.engine.set_muted(leg_id, True)
        self._play(call, ["muted_by_host"], replace_room=False)
        return True

    def take_out(self, leg_id: str, room: Hashable) -> bool:
        """A host took this caller out of the room: it hears so, then the bridge hangs up."""
        call = self._calls.get(leg_id)
        if call is None or leg_id in self._ending or self.engine.room_of(leg_id) != room:
            return False
        self._ending.add(leg_id)
        out = self._take_out(call, str(room), "taken_out")
        task = asyncio.get_running_loop().create_task(out, name=f"out {leg_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _take_out(self, call: Call, room: str, prompt: str = "conference_ended") -> None:
        leg_id = call.leg.id
        try:
            self.engine.move(leg_id, f"ended:{room}", listen_only=True)  # out of the mix at once
            await self._say(call, [prompt])
        except _Gone:
            return
        finally:
            self.engine.leave(leg_id)  # its flow sees it leave and hangs up

    async def _dial_in(self, call: Call) -> CallOutcome:
        keys = self.limits.caller_keys(call.caller_e164, call.source)
        shown = mask_phone(call.caller_e164) if call.caller_e164 else "anonymous"
        return await self._codes(call, keys, shown)

    async def _moved(self, call: Call, conference_id: uuid.UUID) -> CallOutcome:
        conference = await asyncio.to_thread(self.rooms.get_conference, conference_id)
        if self.room_locked(str(conference.id)):
            await self._say(call, ["locked"])
            return CallOutcome.LOCKED
        return await self._enter(call, conference.id, conference.lobby_mode, moved=True)

    async def _elsewhere(self, call: Call, conference_id: uuid.UUID) -> CallOutcome | None:
        """In a cluster, the room is claimed here, or it is mixed on another node and the caller is taken there
        (its outcome then); None when the room is here."""
        if self.cluster is None or self.relay is None:
            return None
        try:
            home = await asyncio.to_thread(self.cluster.claim, conference_id)
        except Exception:  # the shared database away: the caller is let in here rather than dropped
            log.warning("call %s: the room's node could not be looked up: joined here", call.leg.id, exc_info=True)
            return None
        if home.here:
            return None
        log.info("call %s: conference %s is mixed on node %s: the call goes there", call.leg.id, conference_id,
                 home.node)  # fmt: skip
        return await self.relay(call, conference_id, home)

    async def _direct(self, call: Call, conference_id: Hashable) -> CallOutcome:
        if call.post_dial and call.send_digits is not None:
            await asyncio.sleep(POST_DIAL_WAIT_S)  # the switchboard's greeting starts: it listens for keys
            await call.send_digits(call.post_dial)
        await self._say(call, ["joining"])
        return await self._enter(call, conference_id, LobbyMode.OFF)

    # -- codes ---------------------------------------------------------------------------------------------------

    async def _codes(self, call: Call, keys: list[Key], shown: str) -> CallOutcome:
        limits, throttle = self.settings.limits, self.limits.throttle
        prompt = "welcome"
        for attempt in range(limits.code_attempts_per_call):
            claim = await self._turn(call, keys)
            tried, conference_id = keys, None
            code = await self._ask(call, prompt, self._entry(9, submit_at_max=True), language_key=attempt == 0)
            decision = None
            if code.result is EntryResult.CODE:
                decision = await asyncio.to_thread(self.rooms.resolve_dial_in, code.digits, None, source=shown)
                if decision.outcome is DialInOutcome.ENTRY_CODE_NEEDED and decision.conference is not None:
                    await asyncio.to_thread(throttle.succeeded, claim)  # the conference code was right
                    conference_id = decision.conference.id
                    tried = [*keys, self.limits.conference_key(conference_id)]
                    claim = await self._turn(call, tried, conference=str(conference_id))
                    maximum = self.settings.codes.entry_code_max_digits
                    entry = await self._ask(call, "enter_entry_code", self._entry(maximum))
                    typed = entry.digits if entry.result is EntryResult.CODE else ""
                    decision = await asyncio.to_thread(self.rooms.resolve_dial_in, code.digits, typed, source=shown)
            if decision is not None and decision.admitted and decision.conference is not None:
                await asyncio.to_thread(throttle.succeeded, claim)
                moved = await self._elsewhere(call, decision.conference.id)
                if moved is not None:
                    return moved
                if self.room_locked(str(decision.conference.id)):
                    log.info("call %s: conference %s is locked; not let in", call.leg.id, decision.conference.id)
                    await self._say(call, ["locked"])
                    return CallOutcome.LOCKED
                return await self._enter(call, decision.conference.id, decision.conference.lobby_mode)
            if code.result is EntryResult.TIMEOUT and decision is None:
                await asyncio.to_thread(throttle.succeeded, claim)  # nothing was typed: no guess
            else:
                await asyncio.to_thread(self.limits.failed, tried, conference_id=conference_id)
            if attempt + 1 < limits.code_attempts_per_call:
                await self._say(call, ["wrong_code"])
                prompt = "enter_code"
        log.info("call %s: no valid code after %d tries", call.leg.id, limits.code_attempts_per_call)
        await self._say(call, ["goodbye_attempts"])
        return CallOutcome.REFUSED

    async def _turn(self, call: Call, keys: list[Key], *, conference: str | None = None) -> Claim:
        """Wait until a try against ``keys`` may start ("please wait" while it may not), then claim it. For an entry
        code, callers waiting for the same conference on this node go best first (fewest failures of their own
        number, then the latest come)."""
        throttle, leg_id = self.limits.throttle, call.leg.id
        rank: tuple[int, int] | None = None
        if conference is not None:
            own = [k for k in keys if not k.text.startswith("conference:")]
            failures = max([await asyncio.to_thread(throttle.failures, k) for k in own], default=0)
            rank = (failures, -next(self._arrivals))
            self._turns.setdefault(conference, {})[leg_id] = (rank, float("inf"))
        told_at: float | None = None
        said_at = float("-inf")
        try:
            while True:
                wait = await asyncio.to_thread(throttle.wait_s, keys)
                first = True
                if rank is not None and conference is not None:
                    now = self._now()
                    turns = self._turns[conference]
                    turns[leg_id] = (rank, now + wait)
                    # A better caller whose turn comes within TURN_SLACK_S goes first: the moment it looked is a
                    # float from its own last look, and two callers may look in the same tick.
                    soon = now + max(wait, 0.0) + TURN_SLACK_S
                    first = rank == min(r for r, ready_at in turns.values() if ready_at <= soon)
                if wait <= 0 and first:
                    claim = await asyncio.to_thread(throttle.claim, keys)
                    if claim is not None:
                        if told_at is not None:
                            self.engine.stop_playback(leg_id)
                            log.info("call %s: its turn after %.0f s", leg_id, self._now() - told_at)
                        return claim
                if told_at is None:
                    told_at = self._now()
                    log.info("call %s waits its turn to try a code (%.0f s or more)", leg_id, wait)
                until = self._now() + min(max(wait, 0.5), 5.0)  # looked at again: another may have taken the turn
                while self._now() < until:
                    if not self.engine.playing(leg_id) and self._now() >= said_at + 15.0:  # again after a pause
                        self._play(call, ["please_wait"])
                        said_at = self._now()
                    await self._tick(call)
        finally:
            if conference is not None:
                waiting = self._turns.get(conference, {})
                waiting.pop(leg_id, None)
                if not waiting:
                    self._turns.pop(conference, None)

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

    async def _enter(self, call: Call, conference_id: Hashable, mode: LobbyMode, moved: bool = False) -> CallOutcome:
        leg_id, room = call.leg.id, str(conference_id)
        call.in_menu = False
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
                    self.lobby.forget(leg_id)
                    raise
            self.engine.stop_playback(leg_id)
            if not decision.result():
                await self._say(call, ["conference_ended" if leg_id in self._ending else "denied"])
                return CallOutcome.DENIED
        others = self.engine.legs_in(room)
        self.engine.move(leg_id, room)
        if not wait and call.last_digit_at is not None and not moved:
            self.join_delays.append(self._now() - call.last_digit_at)
        log.info("call %s joined conference %s", leg_id, room)
        self._announce(others, join_tone)
        if not others:
            self._play(call, ["first_participant"], replace_room=False)
        try:
            return await self._in_call(call, room)
        finally:
            remaining = [leg for leg in self.engine.legs_in(room) if leg != leg_id]
            self._announce(remaining, leave_tone)
            if not remaining and self.cluster is not None and isinstance(conference_id, uuid.UUID):
                await self._release(conference_id)

    async def _release(self, conference_id: uuid.UUID) -> None:
        """The room emptied here: another node may mix it next (its home released, if still this node's)."""
        cluster = self.cluster
        if cluster is None:
            return
        home = await asyncio.to_thread(cluster.home_of, conference_id)
        if home is not None and home.here and not self.engine.legs_in(str(conference_id)):
            await asyncio.to_thread(cluster.release, conference_id, home.epoch)

    def _announce(self, legs: list[str], make: Callable[[int], npt.NDArray[np.int16]]) -> None:
        """A short tone to everyone else in the room, over what they hear."""
        for other in legs:
            if not self.engine.playing(other):
                self.engine.play(other, make(self.engine.rate_of(other)), replace_room=False)

    async def _in_call(self, call: Call, room: str) -> CallOutcome:
        """Asleep until a key comes or the leg leaves the engine: a hundred callers in rooms cost nothing per tick."""
        keys = InCallKeys()
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
                if key is InCallKey.MUTE:  # as it is now: a host may have muted it
                    muted = not self.engine.is_muted(call.leg.id)
                    self.engine.set_muted(call.leg.id, muted)
                    self._play(call, ["muted" if muted else "unmuted"], replace_room=False)
                elif key is InCallKey.HAND and self.on_hand is not None:
                    raised = self.on_hand(call.leg.id, room)
                    self._play(call, ["hand_raised" if raised else "hand_lowered"], replace_room=False)
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
