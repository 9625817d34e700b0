"""Signed-in browsers: opened by a password or the portal's sign-in, closed by logout or time.

The browser's cookie holds a random 256-bit token; the table keeps only its SHA-256, so a copy of the database
opens no session. A session lasts ``http.session_hours`` from sign-in, whatever happens in between (a shared
clinic computer left signed in is not signed in for ever).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from rooms.models import User, WebSession, utcnow
from rooms.views import UserView

TOKEN_LENGTH = 43  # secrets.token_urlsafe(32)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WebSessions:
    def __init__(
        self, sessions: sessionmaker[Session], lifetime: timedelta, now: Callable[[], datetime] = utcnow
    ) -> None:
        self._sessions, self._lifetime, self._now = sessions, lifetime, now

    def open(self, user_id: uuid.UUID, method: str, id_token: str | None = None) -> str:
        """A new session for the user; the token to put in the cookie. Expired sessions are swept on the way.
        ``id_token``: the portal's, for ending its session too at logout."""
        token = secrets.token_urlsafe(32)
        now = self._now()
        with self._sessions.begin() as s:
            s.execute(delete(WebSession).where(WebSession.expires_at <= now))
            s.add(WebSession(token_hash=_hash(token), user_id=user_id, method=method, created_at=now,
                             expires_at=now + self._lifetime, id_token=id_token))  # fmt: skip
        return token

    def user(self, token: str) -> UserView | None:
        """Whose session this is, or None (unknown, expired or malformed token)."""
        if len(token) != TOKEN_LENGTH:
            return None
        with self._sessions.begin() as s:
            row = s.get(WebSession, _hash(token))
            if row is None or row.expires_at <= self._now():
                return None
            u = s.get(User, row.user_id)
            if u is None:  # pragma: no cover - the foreign key cascades
                return None
            return UserView.of(u)

    def close(self, token: str) -> str | None:
        """End the session; the portal's ID token it was opened with, if any (to end the portal's session too)."""
        with self._sessions.begin() as s:
            row = s.get(WebSession, _hash(token))
            if row is None:
                return None
            id_token = row.id_token
            s.delete(row)
            return id_token

    def close_all(self, user_id: uuid.UUID) -> int:
        """Sign the user out everywhere (e.g. after a password change); how many sessions were open."""
        with self._sessions.begin() as s:
            count = len(s.scalars(select(WebSession.token_hash).where(WebSession.user_id == user_id)).all())
            s.execute(delete(WebSession).where(WebSession.user_id == user_id))
            return count
