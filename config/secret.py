"""Values that must never reach a log, a traceback or a terminal by accident."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

MASK = "••••••"


@dataclass(frozen=True, slots=True)
class Secret:
    """A string shown as a mask by ``repr`` and ``str``; ``reveal()`` is the one way to read it."""

    _value: str = field(repr=False)
    _shown: str = MASK

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({self._shown!r})"

    def __str__(self) -> str:
        return self._shown


def mask_url_password(url: str) -> str:
    """``postgresql://bob:pw@db/x`` → ``postgresql://bob:••••••@db/x``; URLs without a password are unchanged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:{MASK}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def secret_url(url: str) -> Secret:
    """A database or service URL whose password is masked when shown."""
    return Secret(url, mask_url_password(url))
