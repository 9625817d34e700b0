"""A small client of Janus's JSON API over its WebSockets transport on a Unix socket (``ws_unix``: one JSON message
per WebSocket message, answers and events on the same connection, no TCP port). Not the Unix-socket transport
(pfunix): it drops any message over 8 kB, and a page's answer for nine cameras is 13 kB. Why our own client: the
API used is a handful of requests (create a session, attach the VideoRoom plugin, send it a message, keep the
session alive); the Python clients on PyPI reach Janus over TCP only and bring a media stack or a process-wide
session of their own; this one is ~190 lines on aiohttp.

Requests are matched to their answers by ``transaction``. A plugin request that Janus answers at once
("create", "exists", "list", "destroy", …) returns its ``plugindata.data``; one it handles later ("join",
"configure", "start", …) is acked first, then answered by an ``event`` with the same transaction:
``message(..., later=True)``. Events that answer no request (a publisher joined, a stream went up, a handle
hung up) go to the handle's listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from config.errors import PasserelleError

log = logging.getLogger(__name__)
MESSAGE_MAX = 1 << 22  # a message of Janus's: an offer for 25 cameras is some 40 kB
KEEPALIVE_S = 25.0  # Janus drops a session after session_timeout (60 s) without a word
ANSWER_S = 10.0


class JanusError(PasserelleError):
    """Janus (or its plugin) refused a request: its code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus error {code}: {reason}")
        self.code, self.reason = code, reason


class JanusGone(PasserelleError):
    """The connection to Janus is closed (it stopped or restarts)."""


Listener = Callable[[dict[str, Any]], None]


class JanusClient:
    def __init__(self, session: aiohttp.ClientSession, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._session, self._socket = session, socket
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[asyncio.Future[dict[str, Any]], bool]] = {}
        self._listeners: dict[int, Listener] = {}
        self.session_id = 0
        self.closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, path: Path) -> JanusClient:
        """Connect to Janus's API socket and create this client's session (kept alive until close)."""
        session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path)))
        try:
            socket = await session.ws_connect(
                "http://janus/",
                protocols=("janus-protocol",),
                autoping=True,
                max_msg_size=MESSAGE_MAX,
                timeout=aiohttp.ClientWSTimeout(ws_close=2),
            )
        except (aiohttp.ClientError, OSError) as exc:
            await session.close()
            raise ConnectionError(f"Janus's API socket {path}: {exc}") from None
        client = cls(session, socket)
        client._tasks.append(asyncio.create_task(client._read(), name="janus reader"))
        answer = await client.request({"janus": "create"})
        client.session_id = int(answer["data"]["id"])
        client._tasks.append(asyncio.create_task(client._keepalive(), name="janus keepalive"))
        return client

    async def info(self) -> dict[str, Any]:
        """Janus's server_info: its version, plugins and transports."""
        return await self.request({"janus": "info"})

    async def attach(self, plugin: str, listener: Listener | None = None) -> int:
        """A handle on ``plugin`` in this session; ``listener`` gets the events that answer no request."""
        answer = await self.request({"janus": "attach", "session_id": self.session_id, "plugin": plugin})
        handle = int(answer["data"]["id"])
        if listener is not None:
            self._listeners[handle] = listener
        return handle

    async def detach(self, handle: int) -> None:
        self._listeners.pop(handle, None)
        with contextlib.suppress(JanusError, JanusGone):
            await self.request({"janus": "detach", "session_id": self.session_id, "handle_id": handle})

    async def message(self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None, *,
                      later: bool = False) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
        """A request to the handle's plugin: its answer's data (a plugin error raises JanusError) and jsep."""
        request: dict[str, Any] = {"janus": "message", "session_id": self.session_id, "handle_id": handle,
                                   "body": body}  # fmt: skip
        if jsep is not None:
            request["jsep"] = jsep
        answer = await self.request(request, later=later)
        data: dict[str, Any] = answer.get("plugindata", {}).get("data", {})
        if "error_code" in data:
            raise JanusError(int(data["error_code"]), str(data.get("error", "")))
        return data, answer.get("jsep")

    async def trickle(self, handle: int, candidate: dict[str, Any] | None) -> None:
        """One ICE candidate of the page's (None: the last was sent)."""
        body = {"completed": True} if candidate is None else candidate
        await self.request({"janus": "trickle", "session_id": self.session_id, "handle_id": handle,
                            "candidate": body})  # fmt: skip

    async def request(self, body: dict[str, Any], *, later: bool = False) -> dict[str, Any]:
        if self.closed.is_set():
            raise JanusGone("the connection to Janus is closed")
        transaction = f"p{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = (future, later)
        try:
            await self._socket.send_str(json.dumps({**body, "transaction": transaction}))
            return await asyncio.wait_for(future, ANSWER_S)
        except TimeoutError:  # an OSError too: not the connection's failure, Janus's slowness
            raise JanusError(0, f"Janus did not answer within {ANSWER_S:g} s") from None
        except (OSError, aiohttp.ClientError) as exc:
            raise JanusGone(f"the connection to Janus failed ({exc})") from None
        finally:
            self._pending.pop(transaction, None)

    async def close(self) -> None:
        if not self.closed.is_set() and self.session_id:
            with contextlib.suppress(JanusError, JanusGone, TimeoutError):
                await self.request({"janus": "destroy", "session_id": self.session_id})
        self._closed()
        for task in self._tasks:
            task.cancel()
        await self._socket.close()
        await self._session.close()

    def _closed(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(JanusGone("the connection to Janus closed"))

    async def _read(self) -> None:
        try:
            async for received in self._socket:
                if received.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    message = json.loads(received.data)
                except ValueError:
                    log.warning("Janus sent a message that is not JSON (%d bytes)", len(received.data))
                    continue
                self._dispatch(message)
        except (OSError, aiohttp.ClientError) as exc:
            log.info("the connection to Janus failed: %s", exc)
        finally:
            self._closed()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        waiting = self._pending.get(str(message.get("transaction", "")))
        if waiting is not None:
            future, later = waiting
            if kind == "error":
                error = message.get("error", {})
                future.set_exception(JanusError(int(error.get("code", 0)), str(error.get("reason", ""))))
            elif kind == "ack" and later:
                return  # the answer comes later, as an event (a keepalive's or a trickle's ack is all there is)
            elif not future.done():
                future.set_result(message)
            return
        listener = self._listeners.get(int(message.get("sender", 0) or 0))
        if listener is not None:
            listener(message)
        elif kind not in ("ack", "keepalive"):
            log.debug("Janus event for nobody: %s", kind)

    async def _keepalive(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(KEEPALIVE_S)
            try:
                await self.request({"janus": "keepalive", "session_id": self.session_id})
            except (JanusGone, TimeoutError):
                return
            except JanusError as exc:
                log.warning("Janus refused a keepalive: %s", exc)
