"""The SIP side of the bridge: one user agent answering every call to any user part (the single public number),
handing each to the call flow with its audio leg and its digits (RFC 4733, SIP INFO or in-band tones); dialling out
through the trunk when one is configured. A call whose To user is a direct link (see :mod:`bridge.sip.direct`) goes
straight into its conference.

The SIP stack is :mod:`bridge.sip.stack`: aiosipua's signalling, and every call's RTP on this loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import ipaddress
import itertools
import logging
import re
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from bridge.callflow import Call, CallFlow, CallOutcome
from bridge.rtp.session import RtpHub
from bridge.sip.direct import MOVED, PREFIX, DirectLinks, user_of
from bridge.sip.stack import CallError, SipStack
from config import PasserelleError, Settings
from dtmf.stream import Digit, DigitStream
from rooms import AuditKind
from rooms.cluster import Home
from rooms.contacts import dialable_phone, mask_phone, normalise_phone
from rooms.errors import ValidationError

log = logging.getLogger(__name__)
POST_DIAL = re.compile(r"[0-9*#]{0,32}")
RELAY_ANSWER_S = 10  # another node of the cluster answers a moved caller at once, or is taken for gone


def caller_e164(peer_uri: str, region: str) -> str | None:
    """``sip:+33612345678@host`` or ``sip:0612345678@host`` → E.164, or None when it is no phone number."""
    user = peer_uri.split(":", 1)[-1].split("@", 1)[0].split(";", 1)[0]
    try:
        return normalise_phone(user, region)
    except ValidationError:
        return None


class DialOutError(PasserelleError):
    """A dial-out that could not be placed or was not answered; the message says which, for the person asking, and
    ``outcome`` for a page to say it in its language: "busy", "declined", "no-answer", "no-trunk" or "failed"."""

    def __init__(self, message: str, outcome: str = "failed") -> None:
        super().__init__(message)
        self.outcome = outcome


class SipGateway:
    def __init__(self, settings: Settings, flow: CallFlow) -> None:
        self.settings = settings
        self.flow = flow
        self.links = DirectLinks(settings.security.secret_key.reveal(), time.time)
        self._engine: SipStack | None = None
        self._rtp_hub: RtpHub | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._ids = itertools.count(1)
        self._calls: dict[str, tuple[Call, DigitStream]] = {}
        # ("caller", number) or ("source", address) → its calls being answered (not yet handed over)
        self._trusted = [ipaddress.ip_network(n) for n in settings.sip.trusted_sources]
        self._answering: collections.Counter[tuple[str, str]] = collections.Counter()
        self._draining = False
        self._proxies = [ipaddress.ip_network(n) for n in settings.sip.proxies]
        self.refusals: collections.Counter[str] = collections.Counter()  # dial-ins refused, by reason (/metrics)
        self._expected: dict[str, asyncio.Future[str]] = {}  # direct link user part → its leg id, once it called
        self.on_call_ended: Callable[[str, object], None] | None = None
        flow.engine.on_digit = self._inband_digit

    @property
    def draining(self) -> bool:
        """Stopping: new calls are refused at once (503), and so are the SIP front's OPTIONS probes."""
        return self._draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self._draining = value
        if self._engine is not None:
            self._engine.draining = value

    async def start(self) -> None:
        listen, sip = self.settings.sip.listen, self.settings.sip
        self._engine = SipStack.from_settings(self.settings)
        self._engine.draining = self._draining
        self._engine.rtp_hub = self._rtp_hub = RtpHub()  # every call's RTP read at the start of each tick
        self.flow.engine.before_tick.append(self._rtp_hub.sweep)
        await self._engine.start(self._incoming)
        if self.settings.trunk.domain:
            log.info("dial-out through %s", self.settings.trunk.outbound_proxy or self.settings.trunk.domain)
        tls = f", TLS on port {listen.port + 1}" if sip.tls_certificate is not None else ""
        log.info("SIP gateway listening on %s (%s%s)", listen, ", ".join(sip.transports), tls)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._engine is not None:
            await self._engine.close()
            self._engine = None
        if self._rtp_hub is not None:
            self.flow.engine.before_tick.remove(self._rtp_hub.sweep)
            self._rtp_hub.close()
            self._rtp_hub = None

    def direct_uri(self, conference_id: uuid.UUID) -> tuple[str, asyncio.Future[str]]:
        """A SIP URI that puts a call straight into ``conference_id`` (single use, valid a few minutes), and the
        future of the leg id it will have once a call to it is answered (cancel it when giving up)."""
        user = self.links.user_part(conference_id)
        arrived: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._expected[user] = arrived
        arrived.add_done_callback(lambda _: self._expected.pop(user, None))
        return f"sip:{user}@{self.settings.sip.listen}", arrived

    # -- dial-out ------------------------------------------------------------------------------------------------

    async def dial_out(self, conference_id: uuid.UUID | str, number: str, digits: str = "") -> str:
        """Call ``number`` through the trunk; once answered the callee hears "you are joining the conference" and
        is in the room. ``digits``: keys sent once answered (RFC 4733), before that, for a callee behind a
        switchboard or a voice menu (a care home's extension). Returns the leg id. Raises ValidationError (the
        number, the keys, the conference: nothing was dialled) or DialOutError (no trunk; busy, declined, no
        answer)."""
        trunk = self.settings.trunk
        if not POST_DIAL.fullmatch(digits):
            raise ValidationError("digits", "up to 32 keys: 0-9, * and #")
        e164 = dialable_phone(number, self.settings.locale.phone_region, trunk.allowed_countries)
        conference = await asyncio.to_thread(self.flow.rooms.joinable_conference, conference_id)
        if self._engine is None or not self._engine.has_trunk:
            raise DialOutError("trunk.domain: not set, so the bridge cannot call out", "no-trunk")
        leg_id = f"out-{next(self._ids)}"
        shown = mask_phone(e164)
        log.info("call %s: dialling %s for conference %s", leg_id, shown, conference.id)
        outcome = "answered"
        listening: dict[str, tuple[DigitStream, asyncio.Queue[str]]] = {}

        def listen(sip_call: Any) -> None:  # as soon as the call exists: a key may come with the answer
            listening["digits"] = self._listen_for_digits(sip_call, leg_id)

        try:
            sip_call = await self._engine.dial(f"sip:{e164}@{trunk.domain}", trunk.answer_timeout_s, listen)
        except CallError as failed:
            outcome = failed.reason
        detail = {"to": shown, "outcome": outcome}
        await asyncio.to_thread(self.flow.rooms.record, AuditKind.DIAL_OUT, conference_id=conference.id, detail=detail)
        if outcome != "answered":
            log.info("call %s: %s", leg_id, outcome)
            raise DialOutError({"busy": "the line is busy", "declined": "the call was declined",
                                "no-answer": f"no answer within {trunk.answer_timeout_s} s",
                                "failed": "the call could not be placed"}[outcome], outcome)  # fmt: skip
        stream, keys = listening["digits"]
        call = self._make_call(sip_call, leg_id, e164, stream, keys)
        if digits:
            call.post_dial, call.send_digits = digits, functools.partial(self._send_digits, sip_call, leg_id)
        self.flow.engine.labels[leg_id] = shown
        self._spawn(self._run(leg_id, call, stream, self.flow.run_direct(call, conference.id)))
        return leg_id

    @staticmethod
    async def _send_digits(sip_call: Any, leg_id: str, digits: str) -> None:
        """``digits`` as RFC 4733 events, at the media clock's pace; returns once they are out (or the call has
        no telephone-event: then nothing is sent, and it is said)."""
        session = sip_call.session
        try:
            session.send_digits(digits)
        except ValueError as refused:
            log.warning("call %s: keys not sent: %s", leg_id, refused)
            return
        target = session.sent_digits + len(digits)
        for _ in range(int(len(digits) * 0.5 / 0.02) + 50):  # 160 ms a key, and room for a late clock
            if session.sent_digits >= target or session.closed:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # the pause after the last key
        log.info("call %s: %d keys sent", leg_id, len(digits))

    # -- dial-in -------------------------------------------------------------------------------------------------

    def _inband_digit(self, leg_id: str, digit: str) -> None:
        entry = self._calls.get(leg_id)
        if entry is None:
            return
        call, stream = entry
        now = asyncio.get_running_loop().time()
        accepted = stream.inband(digit, now)
        if accepted is not None:
            call.last_digit_at = now
            call.digits.put_nowait(accepted.digit)

    def _incoming(self, call: Any) -> None:
        if self.draining:
            log.info("a call refused: the service is stopping")
            self.refusals["stopping"] += 1
            call.reject(503)
            return
        if self._engine is not None and self._engine.busy():
            log.warning("a call refused: sip.max_calls (%d) calls already", self.settings.sip.max_calls)
            self.refusals["max-calls"] += 1
            call.reject(486)
            return
        self._spawn(self._handle(call))

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, sip_call: Any) -> object:
        leg_id = f"sip-{next(self._ids)}"
        number = caller_e164(sip_call.peer, self.settings.locale.phone_region)
        log.info("call %s from %s", leg_id, mask_phone(number) if number else "anonymous")
        called = user_of(sip_call.called)
        direct = self.links.conference(called) if called.startswith(PREFIX) else None
        moved = self.links.moved(called) if called.startswith(MOVED) else None
        if called.startswith((PREFIX, MOVED)) and direct is None and moved is None:
            log.warning("call %s: a direct link that is forged, expired or used; the caller gets the IVR", leg_id)
            await asyncio.to_thread(
                self.flow.rooms.record, AuditKind.DIAL_IN_REFUSED, detail={"reason": "bad-direct-link"}
            )
        source = self._source(sip_call)
        keys = self._menu_keys(number, source) if direct is None and moved is None else []
        for key, limit in keys:
            in_menu = sum(1 for c, _ in self._calls.values() if c.in_menu and key in self._menu_keys_of(c))
            if in_menu + self._answering[key] >= limit:
                shown = mask_phone(key[1]) if key[0] == "caller" else "one address"  # no address in the log
                log.warning("call %s refused: %d calls from %s already in the voice menu (the most per %s)",
                            leg_id, in_menu + self._answering[key], shown, key[0])  # fmt: skip
                self.refusals["menu-cap"] += 1
                sip_call.reject(486)
                return CallOutcome.REFUSED
        stream, digits = self._listen_for_digits(sip_call, leg_id)  # before answering: a key may come at once
        for key, _ in keys:
            self._answering[key] += 1
        try:
            await sip_call.answer()
            # A flood of INVITEs never ACKed would hold every slot for 32 s (timer H): not ACKed soon, hung up.
            await sip_call.wait_established(self.settings.sip.ack_timeout_s)
        except CallError as exc:  # CANCEL before our answer, no ACK, an offer with no codec in common
            log.info("call %s ended before it was set up: %s", leg_id, exc)
            if self.on_call_ended is not None:
                self.on_call_ended(leg_id, CallOutcome.ENDED)
            return CallOutcome.ENDED
        finally:
            for key, _ in keys:
                self._answering[key] -= 1
                if not self._answering[key]:
                    del self._answering[key]
        call = self._make_call(sip_call, leg_id, number, stream, digits)
        self.flow.engine.labels[leg_id] = mask_phone(number) if number else ""
        expected = self._expected.get(called)
        if direct is not None and expected is not None and not expected.done():
            expected.set_result(leg_id)
        if moved is not None:
            log.info("call %s: a caller of another node, for conference %s", leg_id, moved)
            flow = self.flow.run_moved(call, moved)
        else:
            flow = self.flow.run(call) if direct is None else self.flow.run_direct(call, direct)
        return await self._run(leg_id, call, stream, flow)

    async def relay(self, call: Call, conference_id: uuid.UUID, home: Home) -> CallOutcome:
        """The caller's room is mixed on another node (``home``): this node calls it (a moved caller's link, the
        caller's number as From) and passes the audio both ways through a private room of its engine, the
        caller's keys as RFC 4733; whichever end hangs up ends the other. Works with every caller's phone or
        trunk (no REFER needed); this node keeps the call's media."""
        stack = self._engine
        engine = self.flow.engine
        if stack is None:
            return CallOutcome.ENDED
        leg_id = f"relay-{next(self._ids)}"
        user = self.links.user_part(conference_id, moved=True)
        try:
            out = await stack.dial_node(home.sip_address, user, call.caller_e164 or "", RELAY_ANSWER_S, lambda _: None)
        except CallError as failed:
            log.warning("call %s: node %s did not take it (%s)", call.leg.id, home.node, failed.reason)
            self.refusals["node-unreachable"] += 1
            return CallOutcome.ENDED
        leg = out.leg(leg_id)
        if call.leg.id not in engine or call.leg.closed:  # the caller hung up while the node was being called
            leg.close()
            return CallOutcome.ENDED
        room = f"relay:{call.leg.id}"
        engine.move(call.leg.id, room)
        engine.join(room, leg)
        if call.last_digit_at is not None:
            self.flow.relay_delays.append(asyncio.get_running_loop().time() - call.last_digit_at)
        log.info("call %s: relayed to node %s as %s", call.leg.id, home.node, leg_id)
        caller_gone, node_gone = engine.left(call.leg.id), engine.left(leg_id)
        try:
            while not caller_gone.done() and not node_gone.done():
                key: asyncio.Future[str] = asyncio.ensure_future(call.digits.get())
                waiting: set[asyncio.Future[Any]] = {key, caller_gone, node_gone}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if not key.done():
                    key.cancel()
                    break
                if out.session is not None:
                    with contextlib.suppress(ValueError):  # the node agreed no telephone-event: keys stay here
                        out.session.send_digits(key.result())
        finally:
            if leg_id in engine:
                engine.leave(leg_id)
            leg.close()
        return CallOutcome.ENDED

    def _source(self, sip_call: Any) -> str | None:
        """The address the call's packets came from (not a header's), or None when it is a trusted trunk or proxy
        (sip.trusted_sources): many callers share it, so it is no caller's key."""
        if sip_call.source is None:
            return None
        address = str(sip_call.source[0])
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address
        if any(ip in network for network in self._proxies):  # the SIP front: the caller's address is in its header
            told = forwarded_address(getattr(sip_call, "forwarded_source", None))
            if told is None:
                return address  # a front that said nothing: all its calls share one key, the safe side
            ip = told
            address = str(told)
        return None if any(ip in network for network in self._trusted) else address

    def _menu_keys(self, number: str | None, source: str | None) -> list[tuple[tuple[str, str], int]]:
        """What a call in the voice menu counts against, each with its cap: its number and its source address (a
        trunk's address carries all its callers, so that cap is the larger)."""
        sip = self.settings.sip
        keys = [(("caller", number), sip.max_menu_calls_per_caller)] if number is not None else []
        if source is not None:
            keys.append((("source", source), sip.max_menu_calls_per_source))
        return keys

    def _menu_keys_of(self, call: Call) -> list[tuple[str, str]]:
        return [key for key, _ in self._menu_keys(call.caller_e164, call.source)]

    def _listen_for_digits(self, sip_call: Any, leg_id: str) -> tuple[DigitStream, asyncio.Queue[str]]:
        stream = DigitStream()
        digits: asyncio.Queue[str] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def accepted(digit: Digit | None, now: float) -> None:
            if digit is None:
                return
            entry = self._calls.get(leg_id)
            if entry is not None:
                entry[0].last_digit_at = now
            digits.put_nowait(digit.digit)

        def signalled() -> float:
            # Signalled digits (RFC 4733 or SIP INFO): the phone does not need listening to any more.
            self.flow.engine.stop_inband(leg_id)
            stream.inband_wanted = False
            return loop.time()

        def on_event(payload: bytes, timestamp: int) -> None:
            now = signalled()
            accepted(stream.rtp_event(payload, timestamp, now), now)

        def on_info(content_type: str, body: str) -> None:
            now = signalled()
            accepted(stream.sip_info(content_type, body, now), now)

        sip_call.listen(on_event, on_info)
        return stream, digits

    def _make_call(
        self, sip_call: Any, leg_id: str, number: str | None, stream: DigitStream, digits: asyncio.Queue[str]
    ) -> Call:
        leg = sip_call.leg(leg_id)
        leg.session.on_line = functools.partial(self._line_changed, leg_id)
        return Call(
            leg=leg, caller_e164=number, source=self._source(sip_call), hangup=leg.close, digits=digits,
            inband_dtmf=stream.inband_wanted,
        )  # fmt: skip

    def _line_changed(self, leg_id: str, word: str) -> None:
        log.info("call %s: line %s", leg_id, word)
        self.flow.engine.changed(leg_id)

    async def _run(
        self, leg_id: str, call: Call, stream: DigitStream, flow: Coroutine[Any, Any, CallOutcome]
    ) -> CallOutcome:
        self._calls[leg_id] = (call, stream)
        watch = asyncio.get_running_loop().create_task(self._first_media(leg_id, call), name=f"media {leg_id}")
        try:
            outcome = await flow
        finally:
            watch.cancel()
            self._calls.pop(leg_id, None)
        log.info("call %s ended: %s", leg_id, outcome)
        if outcome is not CallOutcome.ENDED:  # no valid code in the tries allowed, denied in the lobby, locked room
            self.refusals[{CallOutcome.REFUSED: "wrong-code"}.get(outcome, str(outcome))] += 1
        if self.on_call_ended is not None:
            self.on_call_ended(leg_id, outcome)
        return outcome

    async def _first_media(self, leg_id: str, call: Call) -> None:
        """A flood that ACKs and then sends nothing would hold its slot until the RTP timeout (30 s): a call from
        which neither audio nor a key has come soon after answering is hung up."""
        await asyncio.sleep(self.settings.sip.first_media_timeout_s)
        leg = call.leg
        if not getattr(leg, "heard", True) and call.last_digit_at is None and not leg.closed:
            log.warning("call %s: no audio and no key within %d s of answering: hung up", leg_id,
                        self.settings.sip.first_media_timeout_s)  # fmt: skip
            call.hangup()


def forwarded_address(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of the SIP front's header (``ip:port``, ``[v6]:port`` or a bare address); None if unreadable."""
    if not value:
        return None
    text = value.strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?|([0-9.]+)(?::\d{1,5})?|([0-9A-Fa-f:]+)", text)
    if match is None:
        return None
    try:
        return ipaddress.ip_address(match.group(1) or match.group(2) or match.group(3))
    except ValueError:
        return None
