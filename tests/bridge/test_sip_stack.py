"""The SIP stack (bridge/sip/stack.py) at the wire, with hand-written messages on a UDP socket: what a real phone or
an attacker sends that the interop tests do not — retransmissions, SIP INFO, an offer with no codec in common, a
forged From, garbage — and the stack's own retransmitted BYE and RTP timeout."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bridge.sip.stack import CallState, InboundCall, SipStack
from tests.bridge.stack import free_port

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP {formats}\r\n{maps}a=ptime:20\r\n"
)


class Peer:
    """A SIP phone made of one UDP socket: writes requests by hand, reads what the stack answers."""

    def __init__(self, stack_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.target = ("127.0.0.1", stack_port)
        self.call_id = uuid.uuid4().hex
        self.branch = "z9hG4bK" + uuid.uuid4().hex[:12]

    def invite(self, *, formats: str = "0 101", from_host: str = "127.0.0.1", cseq: int = 1) -> bytes:
        maps = "a=rtpmap:101 telephone-event/8000\r\n" if "101" in formats else ""
        body = SDP.format(port=self.port + 2, formats=formats, maps=maps)
        return self._request("INVITE", cseq, body, from_host=from_host)

    def _request(self, method: str, cseq: int, body: str = "", *, from_host: str = "127.0.0.1", to_tag: str = "",
                 content_type: str = "application/sdp", branch: str | None = None) -> bytes:  # fmt: skip
        headers = [
            f"{method} sip:+33491000000@127.0.0.1:{self.target[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch or self.branch};rport",
            f"From: <sip:+33612345678@{from_host}>;tag=peer1",
            f"To: <sip:+33491000000@127.0.0.1>{';tag=' + to_tag if to_tag else ''}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:peer@127.0.0.1:{self.port}>",
            "Max-Forwards: 70",
        ]
        if body:
            headers.append(f"Content-Type: {content_type}")
        headers.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    async def receive(self, limit_s: float = 3.0) -> str:
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), limit_s)
        return data.decode()

    async def until(self, start: str, limit_s: float = 3.0) -> str:
        """The next message whose first line starts with ``start``; the others are skipped."""
        deadline = asyncio.get_running_loop().time() + limit_s
        while True:
            message = await self.receive(max(0.01, deadline - asyncio.get_running_loop().time()))
            if message.startswith(start):
                return message

    def ack(self, to_tag: str) -> None:
        self.send(self._request("ACK", 1, to_tag=to_tag, branch="z9hG4bKack" + uuid.uuid4().hex[:8]))

    def info(self, to_tag: str, body: str, cseq: int = 2) -> None:
        self.send(self._request("INFO", cseq, body, to_tag=to_tag, content_type="application/dtmf-relay",
                                branch="z9hG4bKinfo" + uuid.uuid4().hex[:8]))  # fmt: skip


class Peers:
    """The peers of one test, closed with its stack."""

    def __init__(self) -> None:
        self.opened: list[Peer] = []

    def open(self, port: int) -> Peer:
        self.opened.append(Peer(port))
        return self.opened[-1]

    def close(self) -> None:
        for peer in self.opened:
            peer.sock.close()
        self.opened.clear()


peers = Peers()


def to_tag(response: str) -> str:
    line = next(h for h in response.split("\r\n") if h.lower().startswith("to:"))
    return line.split("tag=", 1)[1].split(";", 1)[0].strip()


@asynccontextmanager
async def stack_with(
    calls: list[InboundCall], *, answer: bool = True, answer_after_s: float = 0.0, **options: float
) -> AsyncIterator[SipStack]:
    tasks: set[asyncio.Task[None]] = set()

    async def take(call: InboundCall) -> None:
        calls.append(call)
        await asyncio.sleep(answer_after_s)
        if answer:
            await call.answer()

    def on_call(call: InboundCall) -> None:
        task = asyncio.get_running_loop().create_task(take(call))
        tasks.add(task)

    base = 10000 + (os.getpid() % 500) * 20
    stack = SipStack("127.0.0.1", free_port(), ("udp",), rtp_ports=range(base, base + 20), on_call=on_call,
                     **options)  # type: ignore[arg-type]  # fmt: skip
    await stack.start()
    try:
        yield stack
    finally:
        await stack.close()
        peers.close()
        for task in tasks:
            task.cancel()


def test_a_retransmitted_invite_is_one_call_and_gets_the_same_answer() -> None:
    async def scenario() -> tuple[int, list[str], set[str]]:
        calls: list[InboundCall] = []
        async with stack_with(calls, answer_after_s=0.3) as stack:
            peer = peers.open(stack.port)
            peer.send(peer.invite())
            await asyncio.sleep(0.1)
            peer.send(peer.invite())  # timer A: no answer yet, the phone sends it again
            first = await peer.until("SIP/2.0 200")
            peer.send(peer.invite())  # the 200 was "lost": sent again once more
            seen = [first]
            with contextlib.suppress(TimeoutError):
                while True:
                    seen.append(await peer.receive(limit_s=1.2))
            peer.ack(to_tag(first))
            await asyncio.sleep(0.2)
            lines = [m.split("\r\n", 1)[0] for m in seen]
            return len(calls), lines, {to_tag(m) for m in seen if m.startswith("SIP/2.0 200")}

    count, lines, tags = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert count == 1
    assert all(line in ("SIP/2.0 100 Trying", "SIP/2.0 200 OK") for line in lines), lines
    assert len(tags) == 1


def test_sip_info_digits_reach_the_call_and_are_answered() -> None:
    async def scenario() -> tuple[list[tuple[str, str]], str, CallState]:
        calls: list[InboundCall] = []
        got: list[tuple[str, str]] = []
        async with stack_with(calls) as stack:
            peer = peers.open(stack.port)
            peer.send(peer.invite())
            tag = to_tag(await peer.until("SIP/2.0 200"))
            peer.ack(tag)
            await asyncio.sleep(0.1)
            (call,) = calls
            call.listen(lambda payload, ts: None, lambda kind, body: got.append((kind, body)))
            peer.info(tag, "Signal=5\r\nDuration=160\r\n")
            answer = await peer.until("SIP/2.0")
            await asyncio.sleep(0.1)
            return got, answer.split("\r\n", 1)[0], call.state

    got, answer, state = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert answer == "SIP/2.0 200 OK"
    assert got == [("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")]
    assert state is CallState.ESTABLISHED


def test_an_offer_with_no_codec_in_common_is_refused_with_488() -> None:
    async def scenario() -> str:
        calls: list[InboundCall] = []
        async with stack_with(calls) as stack:
            peer = peers.open(stack.port)
            peer.send(peer.invite(formats="18"))  # G.729 only
            refused = await peer.until("SIP/2.0 4")
            return refused.split("\r\n", 1)[0]

    assert asyncio.run(asyncio.wait_for(scenario(), 20)) == "SIP/2.0 488 Not Acceptable Here"


def test_the_source_is_the_packets_address_whatever_the_from_header_says() -> None:
    async def scenario() -> tuple[tuple[str, int], str, int]:
        calls: list[InboundCall] = []
        async with stack_with(calls, answer=False) as stack:
            peer = peers.open(stack.port)
            peer.send(peer.invite(from_host="192.0.2.50"))
            await peer.until("SIP/2.0 100")
            await asyncio.sleep(0.1)
            (call,) = calls
            return call.source, call.peer, peer.port

    source, peer_uri, port = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert source == ("127.0.0.1", port)
    assert peer_uri == "sip:+33612345678@192.0.2.50"


def test_garbage_is_counted_and_the_stack_goes_on_answering() -> None:
    garbage = [
        b"\x00\xff" * 300,
        b"INVITE\r\n\r\n",
        b"SIP/2.0 200\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n\r\n",  # no From, To, Call-ID
        b"INVITE sip:x SIP/2.0\r\n" + b"X: " + b"a" * 60000 + b"\r\n\r\n",
        "INVITE sip:é SIP/2.0\r\nContent-Length: 99999\r\n\r\n".encode(),
    ]

    async def scenario() -> tuple[str, int]:
        calls: list[InboundCall] = []
        async with stack_with(calls) as stack:
            peer = peers.open(stack.port)
            for data in garbage:
                peer.send(data)
            await asyncio.sleep(0.3)
            peer.send(peer.invite())
            answer = await peer.until("SIP/2.0 200")
            return answer.split("\r\n", 1)[0], len(calls)

    first_line, calls = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert first_line == "SIP/2.0 200 OK"
    assert calls == 1


def test_our_bye_is_sent_again_until_it_is_answered() -> None:
    async def scenario() -> tuple[int, bool]:
        calls: list[InboundCall] = []
        async with stack_with(calls) as stack:
            peer = peers.open(stack.port)
            peer.send(peer.invite())
            peer.ack(to_tag(await peer.until("SIP/2.0 200")))
            await asyncio.sleep(0.1)
            calls[0].hangup()
            byes = [await peer.until("BYE", limit_s=2.0) for _ in range(3)]  # unanswered: 0, T1, 3 T1
            last = byes[-1].split("\r\n")
            answer = "\r\n".join(
                ["SIP/2.0 200 OK"] + [h for h in last if h.split(":", 1)[0].lower() in
                                      ("via", "from", "to", "call-id", "cseq")] + ["Content-Length: 0", "", ""]
            )  # fmt: skip
            peer.send(answer.encode())
            try:
                await peer.until("BYE", limit_s=3.0)
                more = True
            except TimeoutError:
                more = False
            return len(byes), more

    count, more = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert count == 3
    assert not more, "the BYE was sent again after its 200"


def test_a_call_that_sends_no_rtp_is_hung_up_after_the_timeout() -> None:
    async def scenario() -> tuple[str, CallState]:
        calls: list[InboundCall] = []
        async with stack_with(calls, rtp_timeout_s=1.5) as stack:
            peer = peers.open(stack.port)
            peer.send(peer.invite())
            peer.ack(to_tag(await peer.until("SIP/2.0 200")))
            bye = await peer.until("BYE", limit_s=5.0)
            return bye.split(" ", 1)[0], calls[0].state

    method, state = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert method == "BYE"
    assert state is CallState.CLOSED
