"""The dial-in gateway: one SIP user agent answering every call to any user part (the single public number),
handing each to the call flow with its audio leg and its digits (RFC 4733 or SIP INFO, as baresip reports them).

Facts about baresip-python 0.5.2a3 that shaped this (measured here): one ``Runtime`` per process;
``max_concurrent_calls`` defaults to 2; the bundled stack negotiates PCMU and PCMA only (G.722 and Opus are
"codec not found"); ``catchall=yes`` accepts any user part; the jitter buffer is set to 20–80 ms; at most
255 calls per user agent.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any

from bridge.callflow import Call, CallFlow
from bridge.sip.leg import SipLeg
from config import Settings
from dtmf.stream import DigitStream
from rooms.contacts import mask_phone, normalise_phone
from rooms.errors import ValidationError

log = logging.getLogger(__name__)


def caller_e164(peer_uri: str, region: str) -> str | None:
    """``sip:+33612345678@host`` or ``sip:0612345678@host`` → E.164, or None when it is no phone number."""
    user = peer_uri.split(":", 1)[-1].split("@", 1)[0].split(";", 1)[0]
    try:
        return normalise_phone(user, region)
    except ValidationError:
        return None


class SipGateway:
    def __init__(self, settings: Settings, flow: CallFlow) -> None:
        self.settings = settings
        self.flow = flow
        self._runtime: Any = None
        self._ua: Any = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._ids = itertools.count(1)
        self._calls: dict[str, tuple[Call, DigitStream]] = {}
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
                extra_config_text=f"sip_listen {listen}\naudio_jitter_buffer_ms 20-80\n",
            )
        )
        account = Account(
            user="passerelle", domain=str(listen), password="", reg_interval=0,
            extra_params=("catchall=yes",), audio_codecs=("pcmu", "pcma"),
        )  # fmt: skip
        self._ua = await UserAgent.create(self._runtime, account)
        self._ua.on_incoming(self._incoming)
        log.info("SIP gateway listening on %s", listen)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runtime is not None:
            await self._runtime.close()
            self._runtime = None

    def _inband_digit(self, leg_id: str, digit: str) -> None:
        entry = self._calls.get(leg_id)
        if entry is None:
            return
        call, stream = entry
        accepted = stream.inband(digit, asyncio.get_running_loop().time())
        if accepted is not None:
            call.digits.put_nowait(accepted.digit)

    def _incoming(self, call: Any) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(self._handle(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, sip_call: Any) -> object:
        leg_id = f"sip-{next(self._ids)}"
        peer = str(sip_call.peer or "")
        number = caller_e164(peer, self.settings.locale.phone_region)
        shown = mask_phone(number) if number else "anonymous"
        log.info("call %s from %s", leg_id, shown)
        stream = DigitStream()
        digits: asyncio.Queue[str] = asyncio.Queue()  # ready before answering: a key may come at once
        loop = asyncio.get_running_loop()

        def on_digit(event: Any) -> None:
            # Signalled digits (RFC 4733 or SIP INFO): the phone does not need listening to any more.
            self.flow.engine.stop_inband(leg_id)
            stream.inband_wanted = False
            digit = stream.sip_info("application/dtmf", str(event.digit), loop.time())
            if digit is not None:
                digits.put_nowait(digit.digit)

        sip_call.on_dtmf(on_digit)
        await sip_call.answer()
        await sip_call.wait_established()
        rate = sip_call.audio.info().rx_sample_rate or 8000
        leg = SipLeg(leg_id, sip_call, rate)
        source = peer.split("@", 1)[-1].split(";", 1)[0].split(">", 1)[0]  # the host that sent it (a gateway, often)
        call = Call(
            leg=leg, caller_e164=number, source=source, hangup=leg.close, digits=digits,
            inband_dtmf=stream.inband_wanted,
        )  # fmt: skip
        self._calls[leg_id] = (call, stream)
        try:
            outcome = await self.flow.run(call)
        finally:
            self._calls.pop(leg_id, None)
        log.info("call %s ended: %s", leg_id, outcome)
        if self.on_call_ended is not None:
            self.on_call_ended(leg_id, outcome)
        return outcome
