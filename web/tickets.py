"""Participant tickets: what a passed join page hands to the room — who (display name, invitee), where
(conference), how (microphone only or camera) — signed with HMAC-SHA-256 under the service key and valid for
``VALID_S``. URL-safe, so the room URL carries it; nothing in it is secret but it cannot be forged or altered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass

VALID_S = 12 * 3600


class BadTicket(ValueError):
    """Forged, altered, expired or malformed."""


@dataclass(frozen=True, slots=True)
class Ticket:
    conference_id: uuid.UUID
    name: str
    media: str
    invitee_id: uuid.UUID | None
    expires: int
    host: bool = False


def host_token(key: bytes, conference_id: uuid.UUID) -> str:
    """The host link's token of a conference: lasts as long as the conference and the service key."""
    mac = hmac.new(key, b"host\0" + conference_id.bytes, hashlib.sha256).digest()[:16]
    return f"{conference_id.hex}.{_b64(mac)}"


def host_conference(key: bytes, token: str) -> uuid.UUID:
    try:
        conference_hex, mac_text = token.split(".")
        conference_id = uuid.UUID(hex=conference_hex)
        mac = _unb64(mac_text)
    except ValueError:
        raise BadTicket("malformed") from None
    expected = hmac.new(key, b"host\0" + conference_id.bytes, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(mac, expected):
        raise BadTicket("bad signature")
    return conference_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(key: bytes, conference_id: uuid.UUID, name: str, media: str, invitee_id: uuid.UUID | None,
          now: float | None = None, *, host: bool = False) -> str:  # fmt: skip
    body = json.dumps(
        {"c": conference_id.hex, "n": name, "m": media, "i": invitee_id.hex if invitee_id else None,
         "e": int(now if now is not None else time.time()) + VALID_S, "h": host},
        separators=(",", ":"), ensure_ascii=False,
    ).encode()  # fmt: skip
    mac = hmac.new(key, body, hashlib.sha256).digest()[:16]
    return f"{_b64(body)}.{_b64(mac)}"


def read(key: bytes, ticket: str, now: float | None = None) -> Ticket:
    try:
        body_text, mac_text = ticket.split(".")
        body, mac = _unb64(body_text), _unb64(mac_text)
    except ValueError:
        raise BadTicket("malformed") from None
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()[:16]):
        raise BadTicket("bad signature")
    data = json.loads(body)
    if data["e"] < (now if now is not None else time.time()):
        raise BadTicket("expired")
    invitee = data["i"]
    return Ticket(uuid.UUID(data["c"]), data["n"], data["m"], uuid.UUID(invitee) if invitee else None, data["e"],
                  bool(data.get("h")))  # fmt: skip


def room_pass(key: bytes, ticket: str) -> str:
    """Given to a browser once it is in the room (not the lobby): shown again when the page reconnects by itself
    (a network blip, a restart of the service), it goes straight back in — past the lobby, and past the end of
    the conference's window, which those already in may run over."""
    return _b64(hmac.new(key, b"pass\0" + ticket.encode(), hashlib.sha256).digest()[:16])


def has_pass(key: bytes, ticket: str, shown: object) -> bool:
    return isinstance(shown, str) and hmac.compare_digest(shown.encode(), room_pass(key, ticket).encode())
