"""Errors of the domain; see the tree in :mod:`config.errors`."""

from __future__ import annotations

from config.errors import PasserelleError


class RoomsError(PasserelleError):
    """Root of the domain's errors."""


class ValidationError(RoomsError):
    """Bad input from a person or a script; ``field`` names what to fix. Nothing was written."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFoundError(RoomsError):
    """No such user, conference or invitee."""


class ConflictError(RoomsError):
    """A value that must be unique is already taken."""


class CodeSpaceExhausted(RoomsError):
    """No free dial-in code after many draws: with 10⁸ codes this means something is badly wrong."""
