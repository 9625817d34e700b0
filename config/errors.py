"""The root of Passerelle's exceptions.

Every error our code raises on purpose derives from :class:`PasserelleError`, so a command or a request handler can
turn it into one clear message. Library exceptions are translated where they enter our code::

    PasserelleError
    ├── ConfigError            config/: a setting is missing, unknown or malformed (names the key)
    └── rooms.errors.RoomsError
        ├── ValidationError    bad input from a person or a script (names the field); nothing was written
        ├── NotFoundError      no such user, conference or invitee
        ├── ConflictError      unique value already taken (username, …)
        └── CodeSpaceExhausted no free dial-in code after many draws (should never happen: 10⁸ codes)
"""

from __future__ import annotations


class PasserelleError(Exception):
    """Root of every error Passerelle raises on purpose."""


class ConfigError(PasserelleError):
    """A setting is unknown, missing or malformed; the message names the key and the expected form."""
