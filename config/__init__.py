"""Settings: one frozen, typed :class:`Settings` loaded from TOML and ``PASSERELLE_*`` environment variables."""

from __future__ import annotations

from config.enums import Language, LobbyMode, SipTransport
from config.errors import ConfigError, PasserelleError
from config.parsers import DialInNumber, HostPort
from config.secret import Secret
from config.settings import Settings, load_settings

__all__ = [
    "ConfigError",
    "DialInNumber",
    "HostPort",
    "Language",
    "LobbyMode",
    "PasserelleError",
    "Secret",
    "Settings",
    "SipTransport",
    "load_settings",
]
