"""Notices to a conference's host about its security: someone typing wrong entry codes for it (guessing).

An email through the outbox (so it survives restarts and is retried), in the host's language, saying what was seen
and what to do: nothing if they expected it, else give the conference a new entry code. It names the conference
(the host's own words) but never a caller's number or the codes typed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from config import Language, Settings
from notify.outbox import Outbox
from rooms import Rooms
from rooms.errors import NotFoundError
from rooms.models import Channel

log = logging.getLogger(__name__)

TEXTS = {
    Language.FR: (
        "Sécurité : codes d'accès erronés pour « {name} »",
        "Bonjour,\n\nPlus de {count} codes d'accès erronés ont été tapés en moins d'une heure pour votre conférence "
        "« {name} », par téléphone ou sur sa page. Les essais sont désormais ralentis (un toutes les {delay} "
        "secondes au plus) ; les participants qui ont le bon code entrent toujours.\n\nSi ce n'était pas attendu, "
        "donnez un nouveau code d'accès à la conférence depuis sa page et envoyez à nouveau les invitations.\n\n"
        "Passerelle\n",
    ),
    Language.EN: (
        "Security: wrong entry codes for “{name}”",
        "Hello,\n\nMore than {count} wrong entry codes were typed within an hour for your conference “{name}”, by "
        "phone or on its page. Tries are now slowed (one every {delay} seconds at most); participants with the "
        "right code still get in.\n\nIf you did not expect this, give the conference a new entry code from its "
        "page and send the invitations again.\n\nPasserelle\n",
    ),
}


def guessing_notice(settings: Settings, rooms: Rooms, outbox: Outbox) -> Callable[[str], None]:
    """What :class:`rooms.throttle.CodeLimits` calls (in a thread) when a conference's entry code is being guessed."""

    def notify(conference_id: str) -> None:
        try:
            conference = rooms.get_conference(conference_id)
            language = (
                rooms.get_user(conference.owner_username).language
                if conference.owner_username
                else settings.locale.default_language
            )
        except NotFoundError:
            return
        if not conference.owner_email:
            log.info("conference %s: its host has no email address to tell of the guessing", conference_id)
            return
        subject, body = TEXTS[language]
        values = {"name": conference.name, "count": settings.limits.conference_free_failures,
                  "delay": settings.limits.delay_max_s}  # fmt: skip
        message = EmailMessage()
        message["From"] = settings.email.sender
        message["To"] = conference.owner_email
        message["Subject"] = subject.format(**values)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="passerelle.invalid")
        message.set_content(body.format(**values))
        outbox.enqueue(Channel.EMAIL, conference.owner_email, bytes(message))
        log.info("conference %s: its host is told of the guessing", conference_id)

    return notify
