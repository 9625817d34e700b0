"""Dial-out through a clinic's Asterisk PBX, over its manager interface (AMI) with the ``asterisk-ami`` client.

One ``Originate`` per call: Asterisk rings the number on the clinic's channel (its own trunk, its own caller id) and,
once the callee answers, runs ``Dial`` towards this bridge's SIP endpoint with a direct link as the URI
(:mod:`bridge.sip.direct`): the call lands in its conference with no IVR. The AMI connection lives for one dial-out
(connect, login, originate, wait for ``OriginateResponse``, logoff): clinics dial out a few times an hour, and
nothing stays logged in to their PBX.

The client is threaded and synchronous; it runs in a worker thread and hands its events to the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from typing import Any

from asterisk.ami import AMIClient, SimpleAction

from bridge.sip.gateway import DialOutError, SipGateway
from config import Settings
from rooms import AuditKind
from rooms.contacts import dialable_phone, mask_phone
from rooms.errors import ValidationError

log = logging.getLogger(__name__)

# OriginateResponse "Reason" (Asterisk's AST_CONTROL_* codes): what became of the callee's channel.
_REASONS = {
    "0": ("failed", "the call could not be placed"),
    "1": ("failed", "the callee hung up"),
    "3": ("no-answer", "no answer"),
    "5": ("busy", "the line is busy"),
    "8": ("failed", "the network is congested"),
}


class AsteriskDialler:
    """``dial_out(conference, number)`` with the same contract as :meth:`SipGateway.dial_out`."""

    def __init__(self, settings: Settings, gateway: SipGateway) -> None:
        if settings.asterisk.ami is None:
            raise ValueError("asterisk.ami is not set")
        self._ami = settings.asterisk.ami
        self.settings = settings
        self.gateway = gateway
        self._ids = itertools.count(1)

    async def dial_out(self, conference_id: uuid.UUID | str, number: str, digits: str = "") -> str:
        settings = self.settings
        if digits:  # Originate dials the number alone; keys after the answer are the SIP trunk's (dial_out)
            raise ValidationError("digits", "keys after the answer need the SIP trunk, not asterisk.ami")
        e164 = dialable_phone(number, settings.locale.phone_region, settings.trunk.allowed_countries)
        rooms = self.gateway.flow.rooms
        conference = await asyncio.to_thread(rooms.joinable_conference, conference_id)
        uri, arrived = self.gateway.direct_uri(conference.id)
        timeout_s = settings.trunk.answer_timeout_s
        action_id = f"passerelle-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        shown = mask_phone(e164)
        log.info("asking Asterisk to call %s into conference %s", shown, conference.id)
        outcome, message = "failed", "the call could not be placed"
        try:
            outcome, message = await self._originate(action_id, e164, uri, timeout_s)
            if outcome == "answered":
                try:
                    leg = await asyncio.wait_for(asyncio.shield(arrived), 20)
                except TimeoutError:
                    outcome, message = "failed", "Asterisk did not connect the callee to the bridge"
                else:
                    return leg
        finally:
            arrived.cancel()
            detail = {"to": shown, "outcome": outcome, "via": "asterisk"}
            await asyncio.to_thread(rooms.record, AuditKind.DIAL_OUT, conference_id=conference.id, detail=detail)
        log.info("dial-out through Asterisk: %s", outcome)
        raise DialOutError(message, outcome)

    async def _originate(self, action_id: str, e164: str, uri: str, timeout_s: int) -> tuple[str, str]:
        settings, ami = self.settings.asterisk, self._ami
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[dict[str, str]] = loop.create_future()

        def on_event(event: Any, source: Any) -> None:
            if event.name == "OriginateResponse" and event.keys.get("ActionID") == action_id:
                loop.call_soon_threadsafe(_settle, answered, dict(event.keys))

        client = AMIClient(address=ami.host, port=ami.port, timeout=10)
        try:
            try:
                login = await asyncio.to_thread(
                    lambda: client.login(username=settings.username, secret=settings.secret.reveal()).response
                )
            except OSError as exc:
                raise DialOutError(f"asterisk.ami: cannot reach {ami} ({exc.strerror or exc})") from None
            if login is None or login.is_error():
                raise DialOutError("asterisk.username/secret: the PBX refused the manager login")
            client.add_event_listener(on_event)
            originate = SimpleAction(
                "Originate",
                ActionID=action_id,
                Channel=settings.channel.format(number=e164),
                Application="Dial",
                Data=f"PJSIP/{settings.bridge_endpoint}/{uri}",
                Timeout=str(timeout_s * 1000),
                CallerID=self.settings.trunk.caller_id or self.settings.dial_in.numbers[0].e164,
                Async="true",
            )
            queued = await asyncio.to_thread(lambda: client.send_action(originate).response)
            if queued is None or queued.is_error():
                reason = queued.keys.get("Message", "no answer from the PBX") if queued is not None else "no answer"
                log.warning("Asterisk refused the Originate: %s", reason)
                return "failed", f"the PBX refused the call ({reason})"
            try:
                result = await asyncio.wait_for(answered, timeout_s + 10)
            except TimeoutError:
                return "no-answer", f"no answer within {timeout_s} s"
        finally:
            with contextlib.suppress(Exception):  # the PBX may already have closed the connection
                await asyncio.to_thread(client.logoff)
            await asyncio.to_thread(client.disconnect)
        if result.get("Response", "").lower() == "success":
            return "answered", ""
        outcome, message = _REASONS.get(result.get("Reason", "0"), _REASONS["0"])
        return outcome, message if outcome != "no-answer" else f"no answer within {timeout_s} s"


def _settle(future: asyncio.Future[dict[str, str]], keys: dict[str, str]) -> None:
    if not future.done():
        future.set_result(keys)
