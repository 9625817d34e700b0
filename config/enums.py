"""Closed sets named in the settings; the domain (rooms/) uses the same ones."""

from __future__ import annotations

from enum import StrEnum


class Language(StrEnum):
    FR = "fr"
    EN = "en"


class LobbyMode(StrEnum):
    """Who waits in the lobby: nobody, callers until a host is in, or everyone until a host admits them."""

    OFF = "off"
    UNTIL_HOST = "until-host"
    ALWAYS = "always"


class SipTransport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class OpusApplication(StrEnum):
    """How the bridge encodes what browsers hear (libopus's application)."""

    LOWDELAY = "lowdelay"  # CELT only: the cheapest, 4 ms less delay; no in-band FEC
    VOIP = "voip"  # SILK and hybrid for speech, with in-band FEC for lossy links: about 2.3 times the CPU


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"  # plain connection upgraded (port 587)
    TLS = "tls"  # TLS from the first byte (port 465)
    NONE = "none"  # a relay on the same host or network only
