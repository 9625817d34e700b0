"""The former SIP engine, baresip-python, behind the gateway's call interface (``sip.engine = "baresip"``): kept
only to measure the new stack against it (``passerelle bench sip``) until it is removed.

Facts about baresip-python 0.5.2a3 that shaped this (measured here): one ``Runtime`` per process;
``max_concurrent_calls`` defaults to 2; the bundled stack negotiates PCMU and PCMA only (G.722 and Opus are
"codec not found"); ``catchall=yes`` accepts any user part; the jitter buffer is set to 20–60 ms; at most
255 calls per user agent; its events tell no packet's source address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from bridge.sip.leg import SipLeg
from bridge.sip.stack import CallError
from config import Settings

log = logging.getLogger(__name__)


class BaresipCall:
    def __init__(self, call: Any) -> None:
        self.call = call
        self.peer = str(call.peer or "")
        self.called = str(call.headers.get("To", ""))
        self.source = None  # baresip-python tells no packet's source address

    async def answer(self) -> None:
        from baresip.errors import BaresipError

        try:
            await self.call.answer()
        except BaresipError as exc:
            raise CallError(str(exc)) from None

    async def wait_established(self, timeout: float) -> None:
        from baresip.errors import BaresipError

        try:
            await self.call.wait_established(timeout=timeout)
        except BaresipError as exc:
            raise CallError(str(exc)) from None

    def reject(self, status: int = 486) -> None:
        asyncio.get_running_loop().create_task(self._reject())

    async def _reject(self) -> None:
        from baresip.errors import BaresipError

        try:
            await self.call.reject()
        except BaresipError as exc:  # gone meanwhile
            log.debug("reject: %s", exc)

    def listen(self, on_event: Callable[[bytes, int], None], on_info: Callable[[str, str], None]) -> None:
        self.call.on_dtmf(lambda event: on_info("application/dtmf", str(event.digit)))

    def leg(self, leg_id: str) -> SipLeg:
        return SipLeg(leg_id, self.call, self.call.audio.info().rx_sample_rate or 8000)


class BaresipEngine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runtime: Any = None
        self._agents: list[Any] = []
        self._trunk: Any = None

    @property
    def has_trunk(self) -> bool:
        return self._trunk is not None

    def busy(self) -> bool:
        return False  # the stack itself answers 486 past max_concurrent_calls

    async def start(self, on_call: Callable[[BaresipCall], None]) -> None:
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
                extra_config_text=self.stack_config(self.settings),
            )
        )

        def incoming(call: Any) -> None:
            on_call(BaresipCall(call))

        # The stack matches a request to an agent of the same transport: one catch-all agent per transport.
        for transport in self.settings.sip.transports:
            account = Account(
                user="passerelle", domain=str(listen), password="", reg_interval=0, transport=transport.value,
                extra_params=("catchall=yes",), audio_codecs=("pcmu", "pcma"),
            )  # fmt: skip
            agent = await UserAgent.create(self._runtime, account)
            agent.on_incoming(incoming)
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
            # An INVITE to the caller id's number matches this agent, not the catch-all one: a patient dialling
            # the public number through the provider, so it takes the same path.
            self._trunk.on_incoming(incoming)

    @staticmethod
    def stack_config(settings: Settings) -> str:
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

    async def dial(self, uri: str, answer_timeout_s: float, listen: Callable[[BaresipCall], None]) -> BaresipCall:
        from baresip.errors import BaresipError, CallBusy, CallDeclined, CallTimeout

        try:
            call = BaresipCall(await self._trunk.dial(uri))
            listen(call)
            await call.call.wait_established(timeout=answer_timeout_s)
        except CallBusy:
            raise CallError("busy") from None
        except CallDeclined:
            raise CallError("declined") from None
        except CallTimeout:
            raise CallError("no-answer") from None
        except BaresipError as exc:
            log.info("dial-out failed: %s", exc)
            raise CallError("failed") from None
        return call

    async def close(self) -> None:
        if self._runtime is not None:
            with contextlib.suppress(Exception):
                await self._runtime.close()
            self._runtime = None
