"""SRTP keyed by SDES (RFC 4568): the ``a=crypto`` lines of an SDP offer and answer, and a call's SRTP contexts.

Each side picks its own master key and salt and says it in its SDP (safe only over SIP's TLS: the key is in the
clear in the SDP otherwise). The bridge answers the first offered line whose suite it speaks, with the offer's tag
and a fresh key of its own; packets are protected and checked by libsrtp (pylibsrtp, aiortc's own dependency):
about 4 µs a packet each way here. A packet that fails its authentication tag or the replay check is refused and
counted like any other bad packet (bridge/rtp/session.py).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

import pylibsrtp

SUITES = {  # RFC 4568 §6.2: name → libsrtp profile; the 80-bit tag first, as phones offer it
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
KEY_SALT_BYTES = 30  # 128-bit key and 112-bit salt for both suites


class CryptoError(ValueError):
    """An ``a=crypto`` line that cannot be used."""


@dataclass(frozen=True)
class Crypto:
    """One ``a=crypto`` line: its tag, suite and master key with salt (inline, no lifetime or MKI kept)."""

    tag: int
    suite: str
    key: bytes = b""

    @classmethod
    def parse(cls, value: str) -> Crypto:
        """The value of an ``a=crypto:`` attribute, e.g. ``1 AES_CM_128_HMAC_SHA1_80 inline:<base64>|2^20|1:4``."""
        parts = value.split()
        if len(parts) < 3 or not parts[0].isdigit() or not parts[2].startswith("inline:"):
            raise CryptoError("not tag, suite and inline key")
        if parts[1] not in SUITES:
            raise CryptoError(f"suite {parts[1][:40]!r} not spoken")
        params = parts[2][len("inline:") :].split("|")
        if len(params) > 2 and params[2]:  # an MKI: every packet would carry it; libsrtp's policy here takes none
            raise CryptoError("an MKI is not supported")
        try:
            key = base64.b64decode(params[0], validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("the key is not base64") from None
        if len(key) != KEY_SALT_BYTES:
            raise CryptoError(f"the key and salt are {len(key)} bytes, not {KEY_SALT_BYTES}")
        if len(parts) > 3:  # session parameters (UNENCRYPTED_SRTP, KDR, ...): none of them is what the bridge does
            raise CryptoError("session parameters are not supported")
        return cls(int(parts[0]), parts[1], key)

    @classmethod
    def fresh(cls, tag: int, suite: str) -> Crypto:
        return cls(tag, suite, secrets.token_bytes(KEY_SALT_BYTES))

    def line(self) -> str:
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


def choose(lines: list[str]) -> Crypto | None:
    """The first offered line the bridge can use, or None when none is."""
    for value in lines:
        try:
            return Crypto.parse(value)
        except CryptoError:
            continue
    return None


class SrtpContext:
    """A call's two directions: ours protected with ``local``'s key, theirs checked with ``remote``'s."""

    def __init__(self, local: Crypto, remote: Crypto) -> None:
        self.local, self.remote = local, remote
        policy = pylibsrtp.Policy
        self._out = pylibsrtp.Session(
            policy(key=local.key, ssrc_type=policy.SSRC_ANY_OUTBOUND, srtp_profile=SUITES[local.suite])
        )
        self._in = pylibsrtp.Session(
            policy(key=remote.key, ssrc_type=policy.SSRC_ANY_INBOUND, srtp_profile=SUITES[remote.suite])
        )

    def protect(self, packet: bytes) -> bytes:
        return bytes(self._out.protect(packet))

    def protect_rtcp(self, packet: bytes) -> bytes:
        return bytes(self._out.protect_rtcp(packet))

    def unprotect(self, packet: bytes) -> bytes | None:
        """The packet in clear, or None when its tag or index is wrong (forged, damaged, replayed)."""
        try:
            return bytes(self._in.unprotect(packet))
        except pylibsrtp.Error:
            return None

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        try:
            return bytes(self._in.unprotect_rtcp(packet))
        except pylibsrtp.Error:
            return None
