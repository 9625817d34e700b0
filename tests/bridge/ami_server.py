"""An Asterisk manager interface (AMI) test server: the documented message format (``Key: Value`` lines, a blank
line ending each message, the ``Asterisk Call Manager/x.y`` banner), Login, Logoff and Originate. On an Originate
it plays the part of Asterisk: the "callee" (a real baresip phone) answers, and the call it makes goes to the SIP URI
in the ``Dial`` data — into the bridge, as Asterisk would connect the answered callee."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

BANNER = b"Asterisk Call Manager/5.0.2\r\n"


def message(**keys: str) -> bytes:
    return b"".join(f"{k.replace('_', '-')}: {v}\r\n".encode() for k, v in keys.items()) + b"\r\n"


def parse(block: bytes) -> dict[str, str]:
    keys: dict[str, str] = {}
    for line in block.decode().split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            keys[name.strip()] = value.strip()
    return keys


@dataclass
class AmiServer:
    username: str
    secret: str
    # number → reason code of a failed answer ("5" busy, "3" no answer); others answer
    failing: dict[str, str] = field(default_factory=dict)
    answer: Callable[[str], None] = lambda uri: None  # the callee's phone calls this URI once it "answered"
    received: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        logged_in = False
        try:
            while True:
                try:
                    block = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                action = parse(block)
                self.received.append(action)
                name, action_id = action.get("Action", "").lower(), action.get("ActionID", "")
                if name == "login":
                    logged_in = action.get("Username") == self.username and action.get("Secret") == self.secret
                    if logged_in:
                        writer.write(message(Response="Success", ActionID=action_id, Message="Authentication accepted"))
                        writer.write(message(Event="FullyBooted", Privilege="system,all", Status="Fully Booted"))
                    else:
                        writer.write(message(Response="Error", ActionID=action_id, Message="Authentication failed"))
                elif name == "logoff":
                    writer.write(message(Response="Goodbye", ActionID=action_id, Message="Thanks for all the fish."))
                    await writer.drain()
                    return
                elif not logged_in:
                    writer.write(message(Response="Error", ActionID=action_id, Message="Permission denied"))
                elif name == "originate":
                    await self._originate(writer, action)
                else:
                    writer.write(message(Response="Error", ActionID=action_id, Message="Invalid/unknown command"))
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _originate(self, writer: asyncio.StreamWriter, action: dict[str, str]) -> None:
        action_id, channel = action.get("ActionID", ""), action.get("Channel", "")
        if not channel or (action.get("Application") != "Dial" and not action.get("Exten")):
            writer.write(message(Response="Error", ActionID=action_id, Message="Channel not specified"))
            return
        writer.write(message(Response="Success", ActionID=action_id, Message="Originate successfully queued"))
        await writer.drain()
        number = channel.split("/", 1)[-1].split("@", 1)[0]
        await asyncio.sleep(0.3)  # ringing
        reason = self.failing.get(number)
        if reason is not None:
            writer.write(message(Event="OriginateResponse", Privilege="call,all", ActionID=action_id,
                                 Response="Failure", Channel=channel, Reason=reason))  # fmt: skip
            return
        # Answered: Asterisk now runs Dial(PJSIP/<endpoint>/<uri>), i.e. a SIP call from the callee into the bridge.
        uri = action.get("Data", "").split("/", 2)[-1]
        await asyncio.to_thread(self.answer, uri)
        writer.write(message(Event="OriginateResponse", Privilege="call,all", ActionID=action_id, Response="Success",
                             Channel=f"{channel}-00000001", Reason="4", Uniqueid="1700000000.1"))  # fmt: skip
