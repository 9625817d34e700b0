"""Direct links: SIP user parts that put a call straight into one conference, with no IVR.

A PBX dialling out for a clinic (the Asterisk adapter's ``Originate``) connects the callee to
``sip:c-<conference>-<expiry>-<mac>@bridge``. The MAC (HMAC-SHA-256 under the service's secret key, 128 bits kept)
makes the address impossible to forge or to turn into another conference's; the expiry and single use make a
leaked one worthless after the call it was made for.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable

PREFIX = "c-"
MOVED = "m-"  # a caller moved from another node of the cluster: the room's lobby applies, as to any caller
_SHAPE = re.compile(r"([cm])-([0-9a-f]{32})-(\d{1,12})-([0-9a-f]{32})")


class DirectLinks:
    def __init__(self, key: str, now: Callable[[], float], valid_s: int = 300) -> None:
        # An empty key (no security.secret_key configured) gets a random one: links die with the process.
        self._key = hashlib.sha256(key.encode()).digest() if key else secrets.token_bytes(32)
        self._now = now
        self.valid_s = valid_s
        self._used: dict[str, int] = {}  # user part → expiry, until it expires

    def user_part(self, conference_id: uuid.UUID, *, moved: bool = False) -> str:
        """``moved``: for a caller of another node whose room is mixed here (the room's lobby applies to it)."""
        expires = int(self._now()) + self.valid_s
        kind = MOVED if moved else PREFIX
        return f"{kind}{conference_id.hex}-{expires}-{self._mac(conference_id.hex, expires, kind)}"

    def conference(self, user: str) -> uuid.UUID | None:
        """The conference a direct user part leads to; None when forged, altered, expired or already used."""
        return self._resolve(user, PREFIX)

    def moved(self, user: str) -> uuid.UUID | None:
        """The conference a moved caller's user part leads to; None as for :meth:`conference`."""
        return self._resolve(user, MOVED)

    def _resolve(self, user: str, kind: str) -> uuid.UUID | None:
        match = _SHAPE.fullmatch(user)
        if match is None or f"{match.group(1)}-" != kind:
            return None
        conference, expires, mac = match.group(2), int(match.group(3)), match.group(4)
        now = int(self._now())
        if not hmac.compare_digest(mac, self._mac(conference, expires, kind)) or expires < now:
            return None
        self._used = {u: e for u, e in self._used.items() if e >= now}
        if user in self._used:
            return None
        self._used[user] = expires
        return uuid.UUID(conference)

    def _mac(self, conference_hex: str, expires: int, kind: str) -> str:
        text = f"{conference_hex}.{expires}" if kind == PREFIX else f"{kind}{conference_hex}.{expires}"
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:32]


def user_of(uri: str) -> str:
    """``<sip:c-…@host:5060>`` or ``"Name" <sip:user@host>;tag=x`` → the user part (``""`` when none)."""
    inside = uri.split("<", 1)[-1].split(">", 1)[0]
    address = inside.split(":", 1)[-1]
    return address.split("@", 1)[0] if "@" in address else ""
