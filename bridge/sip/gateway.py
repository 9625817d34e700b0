"""The SIP side of the bridge: one user agent answering every call to any user part (the single public number),
handing each to the call flow with its audio leg and its digits (RFC 4733 or SIP INFO, as baresip reports them);
a second one, when a trunk is configured, dialling out. A call whose To user is a direct link (see
:mod:`bridge.sip.direct`) goes straight into its conference.

Facts about baresip-python 0.5.2a3 that shaped this (measured here): one ``Runtime`` per process;
``max_concurrent_calls`` defaults to 2; the bundled stack negotiates PCMU and PCMA only (G.722 and Opus are
"codec not found"); ``catchall=yes`` accepts any user part; the jitter buffer is set to 20–60 ms; at most
255 calls per user agent.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from bridge.callflow import Call, CallFlow, CallOutcome
from bridge.sip.direct import PREFIX, DirectLinks, user_of
from bridge.sip.leg import SipLeg
from config import PasserelleError, Settings
from dtmf.stream import DigitStream
from rooms import AuditKind
from rooms.contacts import dialable_phone, mask_phone, normalise_phone
from rooms.errors import ValidationError

log = logging.getLogger(__name__)


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
        self._runtime: Any = None
        self._agents: list[Any] = []
        self._trunk: Any = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._ids = itertools.count(1)
        self._calls: dict[str, tuple[Call, DigitStream]] = {}
        self._answering: dict[str, int] = {}  # caller number → its calls being answered (not yet handed over)
        self.draining = False  # stopping: new calls are refused at once
        self._expected: dict[str, asyncio.Future[str]] = {}  # direct link user part → its leg id, once it called
        self.on_call_ended: Callable[[str, object], None] | None = None
        flow.engine.on_digit = self._inband_digit

    async def start(self) -> None:
        from baresip import Account, Config
        from baresip.runtime import Runtime
        from baresip.ua import UserAgent

        listen = self.settings.sip.listen
        self._runtime = Runtime()
        await self._runtime.start(
            Config(
                net_interface=listen.host,
                max_concurrent_calls=self.settings.sip.max_calls,
                rtp_timeout=self.settings.sip.rtp_timeout_s,
                expose_headers=("To",),  # the user part called: a direct link, or the public number
                extra_config_text=self._stack_config(),
            )
        )
        # The stack matches a request to an agent of the same transport: one catch-all agent per transport.
        for transport in self.settings.sip.transports:
            account = Account(
                user="passerelle", domain=str(listen), password="", reg_interval=0, transport=transport.value,
                extra_params=("catchall=yes",), audio_codecs=("pcmu", "pcma"),
            )  # fmt: skip
            agent = await UserAgent.create(self._runtime, account)
            agent.on_incoming(self._incoming)
            self._agents.append(agent)
        trunk = self.settings.trunk
        if trunk.domain:
            self._trunk = await UserAgent.create(
                self._runtime,
                Account(
                    user=trunk.caller_id or self.settings.dial_in.numbers[0].e164, domain=trunk.domain,
                    password=trunk.password.reveal(), auth_user=trunk.username or None,
                    registrar=trunk.outbound_proxy or None, reg_interval=0, transport=trunk.transport.value,
                    audio_codecs=("pcmu", "pcma"),
                ),
            )  # fmt: skip
            # An INVITE to the caller id's number matches this agent, not the catch-all one: it is a patient
            # dialling the public number through the provider, so it takes the same path.
            self._trunk.on_incoming(self._incoming)
            log.info("dial-out through %s", trunk.outbound_proxy or trunk.domain)
        tls = f", TLS on port {listen.port + 1}" if self.settings.sip.tls_certificate is not None else ""
        log.info("SIP gateway listening on %s (%s%s)", listen, ", ".join(self.settings.sip.transports), tls)

    def _stack_config(self) -> str:
        return self._stack_config_for(self.settings)

    @staticmethod
    def _stack_config_for(settings: Settings) -> str:
        """The stack's own configuration lines: where and how it listens, and its jitter buffer."""
        sip = settings.sip
        lines = [
            f"sip_listen {sip.listen}",
            f"sip_transports {','.join(t.value for t in sip.transports)}",
            "audio_jitter_buffer_ms 20-60",
        ]
        if sip.tls_certificate is not None:
            lines.append(f"sip_certificate {sip.tls_certificate}")
        return "\n".join(lines) + "\n"

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runtime is not None:
            await self._runtime.close()
            self._runtime = None

    def direct_uri(self, conference_id: uuid.UUID) -> tuple[str, asyncio.Future[str]]:
        """A SIP URI that puts a call straight into ``conference_id`` (single use, valid a few minutes), and the
        future of the leg id it will have once a call to it is answered (cancel it when giving up)."""
        user = self.links.user_part(conference_id)
        arrived: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._expected[user] = arrived
        arrived.add_done_callback(lambda _: self._expected.pop(user, None))
        return f"sip:{user}@{self.settings.sip.listen}", arrived

    # -- dial-out ------------------------------------------------------------------------------------------------

    async def dial_out(self, conference_id: uuid.UUID | str, number: str) -> str:
        """Call ``number`` through the trunk; once answered the callee hears "you are joining the conference" and
        is in the room. Returns the leg id. Raises ValidationError (the number, the conference: nothing was dialled)
        or DialOutError (no trunk; busy, declined, no answer)."""
        from baresip.errors import BaresipError, CallBusy, CallDeclined, CallTimeout

        trunk = self.settings.trunk
        e164 = dialable_phone(number, self.settings.locale.phone_region, trunk.allowed_countries)
        conference = await asyncio.to_thread(self.flow.rooms.joinable_conference, conference_id)
        if self._trunk is None:
            raise DialOutError("trunk.domain: not set, so the bridge cannot call out", "no-trunk")
        leg_id = f"out-{next(self._ids)}"
        shown = mask_phone(e164)
        log.info("call %s: dialling %s for conference %s", leg_id, shown, conference.id)
        outcome = "answered"
        try:
            sip_call = await self._trunk.dial(f"sip:{e164}@{trunk.domain}")
            stream, digits = self._listen_for_digits(sip_call, leg_id)
            await sip_call.wait_established(timeout=trunk.answer_timeout_s)
        except CallBusy:
            outcome = "busy"
        except CallDeclined:
            outcome = "declined"
        except CallTimeout:
            outcome = "no-answer"
        except BaresipError as exc:
            log.info("call %s failed: %s", leg_id, exc)
            outcome = "failed"
        detail = {"to": shown, "outcome": outcome}
        await asyncio.to_thread(self.flow.rooms.record, AuditKind.DIAL_OUT, conference_id=conference.id, detail=detail)
        if outcome != "answered":
            log.info("call %s: %s", leg_id, outcome)
            raise DialOutError({"busy": "the line is busy", "declined": "the call was declined",
                                "no-answer": f"no answer within {trunk.answer_timeout_s} s",
                                "failed": "the call could not be placed"}[outcome], outcome)  # fmt: skip
        call = self._make_call(sip_call, leg_id, e164, stream, digits)
        self.flow.engine.labels[leg_id] = shown
        self._spawn(self._run(leg_id, call, stream, self.flow.run_direct(call, conference.id)))
        return leg_id

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
            self._spawn(self._refuse(call))
            return
        self._spawn(self._handle(call))

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, sip_call: Any) -> object:
        leg_id = f"sip-{next(self._ids)}"
        peer = str(sip_call.peer or "")
        number = caller_e164(peer, self.settings.locale.phone_region)
        log.info("call %s from %s", leg_id, mask_phone(number) if number else "anonymous")
        called = user_of(str(sip_call.headers.get("To", "")))
        direct = self.links.conference(called) if called.startswith(PREFIX) else None
        if called.startswith(PREFIX) and direct is None:
            log.warning("call %s: a direct link that is forged, expired or used; the caller gets the IVR", leg_id)
            await asyncio.to_thread(
                self.flow.rooms.record, AuditKind.DIAL_IN_REFUSED, detail={"reason": "bad-direct-link"}
            )
        from baresip.errors import BaresipError

        if number is not None and direct is None:
            in_menu = sum(1 for c, _ in self._calls.values() if c.caller_e164 == number and c.in_menu)
            waiting = self._answering.get(number, 0)
            if in_menu + waiting >= self.settings.sip.max_menu_calls_per_caller:
                log.warning("call %s refused: %d calls of %s already in the voice menu", leg_id, in_menu + waiting,
                            mask_phone(number))  # fmt: skip
                await self._refuse(sip_call)
                return CallOutcome.REFUSED
        stream, digits = self._listen_for_digits(sip_call, leg_id)  # before answering: a key may come at once
        if number is not None:
            self._answering[number] = self._answering.get(number, 0) + 1
        try:
            await sip_call.answer()
            # A flood of INVITEs never ACKed would hold every slot for 32 s (timer H): not ACKed soon, hung up.
            await sip_call.wait_established(timeout=self.settings.sip.ack_timeout_s)
        except BaresipError as exc:  # CANCEL before our answer, no ACK, or the call failed while being set up
            log.info("call %s ended before it was set up: %s", leg_id, exc)
            if self.on_call_ended is not None:
                self.on_call_ended(leg_id, CallOutcome.ENDED)
            return CallOutcome.ENDED
        finally:
            if number is not None:
                self._answering[number] -= 1
                if not self._answering[number]:
                    del self._answering[number]
        call = self._make_call(sip_call, leg_id, number, stream, digits)
        self.flow.engine.labels[leg_id] = mask_phone(number) if number else ""
        expected = self._expected.get(called)
        if direct is not None and expected is not None and not expected.done():
            expected.set_result(leg_id)
        flow = self.flow.run(call) if direct is None else self.flow.run_direct(call, direct)
        return await self._run(leg_id, call, stream, flow)

    @staticmethod
    async def _refuse(sip_call: Any) -> None:
        from baresip.errors import BaresipError

        try:
            await sip_call.reject()
        except BaresipError as exc:  # gone meanwhile
            log.debug("reject: %s", exc)

    def _listen_for_digits(self, sip_call: Any, leg_id: str) -> tuple[DigitStream, asyncio.Queue[str]]:
        stream = DigitStream()
        digits: asyncio.Queue[str] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def on_digit(event: Any) -> None:
            # Signalled digits (RFC 4733 or SIP INFO): the phone does not need listening to any more.
            self.flow.engine.stop_inband(leg_id)
            stream.inband_wanted = False
            now = loop.time()
            digit = stream.sip_info("application/dtmf", str(event.digit), now)
            if digit is not None:
                entry = self._calls.get(leg_id)
                if entry is not None:
                    entry[0].last_digit_at = now
                digits.put_nowait(digit.digit)

        sip_call.on_dtmf(on_digit)
        return stream, digits

    def _make_call(
        self, sip_call: Any, leg_id: str, number: str | None, stream: DigitStream, digits: asyncio.Queue[str]
    ) -> Call:
        rate = sip_call.audio.info().rx_sample_rate or 8000
        leg = SipLeg(leg_id, sip_call, rate)
        # baresip-python 0.5.2a3 tells no packet's source address (its events carry the peer URI and the headers
        # the caller wrote, Via and From included): no source key until the SIP stack of bridge/sip/ tells one.
        return Call(
            leg=leg, caller_e164=number, source=None, hangup=leg.close, digits=digits,
            inband_dtmf=stream.inband_wanted,
        )  # fmt: skip

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
        if self.on_call_ended is not None:
            self.on_call_ended(leg_id, outcome)
        return outcome

    async def _first_media(self, leg_id: str, call: Call) -> None:
        """A flood that ACKs and then sends nothing would hold its slot until the RTP timeout (30 s): a call from
        which neither audio nor a key has come soon after answering is hung up."""
        await asyncio.sleep(self.settings.sip.first_media_timeout_s)
        leg = call.leg
        if isinstance(leg, SipLeg) and not leg.heard and call.last_digit_at is None and not leg.closed:
            log.warning("call %s: no audio and no key within %d s of answering: hung up", leg_id,
                        self.settings.sip.first_media_timeout_s)  # fmt: skip
            call.hangup()
