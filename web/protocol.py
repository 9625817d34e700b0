"""The room's live channel (``/ws/room/<ticket>``), in one place: every message, its fields and who may send it.

Each message is a JSON object with a ``type``. What a browser may send is ``INBOUND`` below: the socket checks each
message against it before any handler sees it (unknown type, missing or ill-typed field, text too long, a guest
sending a host's action: ``{"type": "error", "about": <type>, "message"}`` back, and the socket stays up; a refused
host action is logged, without its content). A text frame is at most 64 kB (an SDP offer is a few kB): a longer
one is refused the same way, and one over 256 kB closes the socket (only a hostile page sends it).

Who: ``anyone`` — any socket with a valid ticket (before its offer too); ``in`` — a browser whose leg is in the
room (not in the lobby); ``host`` — a host link or the conference's owner, in the room.

What the bridge sends (``OUTBOUND``), to one socket or to everyone in the room:

- ``answer`` {sdp} — the bridge's answer to the offer, its ICE candidates inside.
- ``welcome`` {you, host} — the leg id this page has in the participant list, and whether it is a host.
- ``pass`` {pass} — once in the room: sent back in the offer after a reconnection, it goes straight back in.
- ``waiting`` / ``admitted`` / ``denied`` — the lobby, for a browser that must wait for a host.
- ``participants`` {list: [{id, label, kind: "sip"|"webrtc", speaking, muted, hand, line?}], by_phone} — to
  everyone in the room whenever it changes (pushed by the room's hub, at most 10 times a second); ``line``, for a
  phone once its RTP has been measured: "good", "weak" or "poor" (loss, jitter and round trip from RTCP, both ways).
- ``lobby`` {list: [{id, label}]} — to hosts, whenever someone starts or stops waiting.
- ``chat`` {message: {id, from, name, to, text, at}} — a message, to everyone (``to`` null) or to its sender and
  its one recipient (``to`` a leg id); ``chat-history`` {list} — the room's last 200 messages to everyone, once in;
  ``chat-deleted`` {id}; ``chat-cleared``.
- ``settings`` {private_chat, guests_invite, locked, many_screens, guests_upload, board_hosts_only} — the room's
  settings, once in and when a host changes them (``many_screens``: several may share a screen at once;
  ``guests_upload``: guests may share files, hosts always may; ``board_hosts_only``: only hosts draw on the
  whiteboard).
- ``files`` {list: [{id, name, by, at, size, type, preview}]} — the room's files (``web/room_files.py``), once in
  and whenever one is shared or deleted.
  A locked room takes nobody new, on the web or by phone (a caller with the right codes hears so and is hung up);
  hosts, those in it, a page back with its pass and a caller a host calls still come in. It unlocks when a host
  says so or when the room is empty.
- ``invited`` {id, address, state} then ``invite-state`` {id, state: "queued" | "sent" | "failed"} — to who
  invited: the invitation is in the outbox, then sent (or given up).
- ``calls`` {list: [{id, label, state: "ringing" | "joining" | "busy" | "declined" | "no-answer" | "no-trunk" |
  "failed"}]} — the phones a host is calling into the room (the number masked), to everyone in it, whenever one
  changes; one answered is "joining" until it is in the participant list, one not answered stays a moment.
- ``video-feeds`` {list: [leg id], screens: [leg id], paused: [leg id]} — who publishes a camera, who shares a
  screen (and whose share is paused, to be annotated), through Janus, to everyone in the room when it changes (a
  page then asks for those it shows with ``video-watch``);
  ``video-answer`` {sdp, source} — Janus's answer to the page's ``video-publish``; ``video-offer`` {sdp, mids:
  {mid: {leg, source} | null}} — Janus's offer for what the page watches (answered with ``video-start``; also
  when a feed it watched went); ``video-restart`` — Janus restarted: publish and watch again; ``share-stopped`` —
  a host stopped this page's screen share; ``video-slow`` — Janus sees this page lose what it sends it (4 packets
  a second or more): the page asks for smaller layers for a while.
- ``presentation`` {file, name, page, by, by_name} — the PDF presented and the page its presenter is on, to
  everyone in the room when it changes and once in (``file`` null: none now).
- ``board`` {seq, pages: [[object]], layers: {name: [object]}} — the whiteboard as it is (its pages, and the
  annotations over presented pages and paused screens), once in; ``board-ops`` {ops: [{seq, op, page, …}]} — the
  operations applied, to everyone in the room (its sender too), in the one order the hub gave them, those of
  30 ms in one frame.
- ``pointer`` {leg, name, screen, x, y} — someone points on a shared screen (x, y from 0 to 1, or null: gone).
- ``muted-by-host`` — a host muted this page's microphone (it may unmute itself).
- ``renamed`` {name} — this page's new name, as everyone now sees it.
- ``ended`` {reason: "cancelled" | "ended" | "removed" | "not-open" | "taken-out" | "denied" | "locked"} — out of
  the room, or not let in (a page taken out may not come back with its link for an hour, one refused at the lobby
  for a minute, none comes into a locked room), and the socket closes; ``restarting`` — the service stops (the
  page reconnects by itself).
- ``error`` {about, message} — the last message was refused; nothing else changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_FRAME = 64 * 1024
MAX_CHAT = 2000  # characters of one chat message
MAX_ID = 40  # a leg id ("web-12", "sip-3", "out-1")


class Who(StrEnum):
    ANYONE = "anyone"
    IN = "in"
    HOST = "host"


@dataclass(frozen=True, slots=True)
class Field:
    kind: type | tuple[type, ...]
    required: bool = True
    max_len: int | None = None  # for text
    min_len: int = 0


@dataclass(frozen=True, slots=True)
class Message:
    who: Who
    doc: str
    fields: dict[str, Field] = field(default_factory=dict)


_LEG = {"leg": Field(str, max_len=MAX_ID, min_len=1)}

INBOUND: dict[str, Message] = {
    "offer": Message(
        Who.ANYONE,
        "the page's WebRTC offer, once; `muted` and `pass` restore a reconnecting page",
        {
            "sdp": Field(str, max_len=MAX_FRAME, min_len=1),
            "muted": Field(bool, required=False),
            "pass": Field((str, type(None)), required=False, max_len=400),
        },
    ),
    "candidate": Message(
        Who.ANYONE,
        "one of the page's ICE candidates (trickled)",
        {
            "candidate": Field(str, max_len=1000),
            "sdpMid": Field((str, type(None)), required=False, max_len=32),
            "sdpMLineIndex": Field((int, type(None)), required=False),
        },
    ),
    "video-publish": Message(
        Who.IN,
        "the page's offer for its camera or its screen share (`source`, camera by default; video only) to Janus; "
        "answered by video-answer (one screen shared at a time in a room unless a host allows more)",
        {"sdp": Field(str, max_len=MAX_FRAME, min_len=1), "source": Field(str, required=False, max_len=6)},
    ),
    "video-unpublish": Message(
        Who.IN,
        "the page turns its camera off, or stops sharing (`source`)",
        {"source": Field(str, required=False, max_len=6)},
    ),
    "video-watch": Message(
        Who.IN,
        "the cameras and the screens the page shows (leg ids, at most 25 in all): Janus's offer for them comes as "
        "video-offer",
        {"legs": Field(list), "screens": Field(list, required=False)},
    ),
    "video-layers": Message(
        Who.IN,
        "what each m-line of the page's subscriber connection should receive: {mid: 0 | 1 | 2} (simulcast layer, "
        "0 the smallest) or {mid: null} (paused: a tile off screen, a hidden tab)",
        {"mids": Field(dict)},
    ),
    "video-start": Message(
        Who.IN, "the page's answer to video-offer", {"sdp": Field(str, max_len=MAX_FRAME, min_len=1)}
    ),
    "video-candidate": Message(
        Who.IN,
        "an ICE candidate of the page's connections to Janus: `to` its publisher (camera), its screen or its "
        "subscriber side (an empty candidate: the last one)",
        {
            "to": Field(str, max_len=10, min_len=6),
            "candidate": Field(str, max_len=1000),
            "sdpMid": Field((str, type(None)), required=False, max_len=32),
            "sdpMLineIndex": Field((int, type(None)), required=False),
        },
    ),
    "pointer": Message(
        Who.IN,
        "a pointer on a shared screen (`screen`: the sharer's leg id) at x, y from 0 to 1 of the picture (null: "
        "taken away), to everyone else; at most 10 a second are passed on",
        {
            "screen": Field(str, max_len=MAX_ID, min_len=1),
            "x": Field((int, float, type(None))),
            "y": Field((int, float, type(None))),
        },
    ),
    "present": Message(
        Who.IN,
        "present a PDF of the room's files, or turn its page: a host, or anyone while nobody else presents",
        {"file": Field(str, max_len=36, min_len=36), "page": Field(int)},
    ),
    "present-stop": Message(Who.IN, "stop the presentation (its presenter, or a host)"),
    "screen-pause": Message(
        Who.IN,
        "the sharer holds its shared picture still, to be annotated (its page sends that still picture), or lets "
        "it go on (what was drawn over it goes)",
        {"paused": Field(bool)},
    ),
    "board": Message(
        Who.IN,
        "an operation on the room's whiteboard (web/board.py): add, extend, erase, undo, redo, clear (a host, or a "
        "layer's owner), page; `page` a board page's number or a layer's name (pdf:<file>:<page> while that file "
        "is presented, screen:<leg> while that share is paused); 30 a second per participant; refused when only "
        "hosts may draw",
        {
            "op": Field(str, max_len=10, min_len=1),
            "page": Field((int, str), required=False, max_len=80),
            "object": Field(dict, required=False),
            "id": Field(str, required=False, max_len=40),
            "points": Field(list, required=False),
        },
    ),
    "mute": Message(Who.ANYONE, "the page mutes or unmutes its own microphone", {"muted": Field(bool)}),
    "hand": Message(Who.IN, "raise or lower one's own hand", {"raised": Field(bool)}),
    "name": Message(
        Who.IN,
        "change one's name in the room (everyone sees it; kept if the page reconnects)",
        {
            "name": Field(str, max_len=80, min_len=1),
        },
    ),
    "chat": Message(
        Who.IN,
        "a chat message: to everyone, or privately to one participant (`to`, a leg id)",
        {
            "text": Field(str, max_len=MAX_CHAT, min_len=1),
            "to": Field((str, type(None)), required=False, max_len=MAX_ID),
        },
    ),
    "invite": Message(
        Who.IN,
        "invite someone by email or mobile number, with an optional message (guests only if "
        "the host allows it; 10 an hour per participant)",
        {
            "address": Field(str, max_len=254, min_len=3),
            "message": Field((str, type(None)), required=False, max_len=500),
        },
    ),
    "admit": Message(Who.HOST, "let a waiting participant in", _LEG),
    "deny": Message(Who.HOST, "refuse a waiting participant", _LEG),
    "mute-other": Message(Who.HOST, "mute a participant (phone or web; each may unmute itself)", _LEG),
    "lower-hand": Message(Who.HOST, "lower a participant's hand", _LEG),
    "remove": Message(
        Who.HOST,
        "take a participant out of the room (a caller hears so, then is hung up; a page may "
        "not come back with the same link for an hour)",
        _LEG,
    ),
    "call": Message(
        Who.HOST,
        "call a phone into the room through the bridge's dial-out (trunk or PBX); the callee is straight in (no "
        "code, no lobby, locked or not); 5 ringing at once, 20 an hour per host",
        {"number": Field(str, max_len=40, min_len=2)},
    ),
    "stop-share": Message(Who.HOST, "stop a participant's screen share", _LEG),
    "chat-delete": Message(Who.HOST, "delete one chat message", {"id": Field(int)}),
    "chat-clear": Message(Who.HOST, "delete every chat message of the conference"),
    "settings": Message(
        Who.HOST,
        "change the room's settings",
        {
            "private_chat": Field(bool, required=False),
            "guests_invite": Field(bool, required=False),
            "locked": Field(bool, required=False),
            "many_screens": Field(bool, required=False),
            "guests_upload": Field(bool, required=False),
            "board_hosts_only": Field(bool, required=False),
        },
    ),
    "end": Message(Who.HOST, "end the conference for everyone"),
}


class Refused(Exception):
    """A message the socket does not take: said to its sender, the socket stays up."""

    def __init__(self, about: str, message: str) -> None:
        super().__init__(message)
        self.about, self.message = about, message


def read(data: Any) -> tuple[str, Message, dict[str, Any]]:
    """A decoded frame checked against INBOUND: its type, its description and its fields (absent optional fields
    left out). Raises Refused."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise Refused("", "expected a JSON object with a type")
    kind: str = data["type"]
    spec = INBOUND.get(kind)
    if spec is None:
        raise Refused(kind[:40], f"unknown message type {kind[:40]!r}")
    fields: dict[str, Any] = {}
    for name, rule in spec.fields.items():
        if name not in data:
            if rule.required:
                raise Refused(kind, f"{name}: missing")
            continue
        value = data[name]
        # bool is an int in Python: an int field takes no true/false
        if not isinstance(value, rule.kind) or (isinstance(value, bool) and bool not in _kinds(rule.kind)):
            raise Refused(kind, f"{name}: wrong type")
        if isinstance(value, str):
            if len(value) < rule.min_len:
                raise Refused(kind, f"{name}: empty")
            if rule.max_len is not None and len(value) > rule.max_len:
                raise Refused(kind, f"{name}: longer than {rule.max_len} characters")
        fields[name] = value
    return kind, spec, fields


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
