"""The invitation by email, in French or English: the invitee's own join link, the date and time in the invitee's
zone, the dial-in number(s), the conference code and the entry code — the portal's invitations leave the phone part
out; ours carry it by default — and the calendar event (:mod:`notify.ics`) as a ``text/calendar`` part.
Sent over SMTP with aiosmtplib (STARTTLS, TLS or plain, from ``[email]``).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from zoneinfo import ZoneInfo

from config import Settings
from config.enums import SmtpSecurity
from notify.ics import Event, Method, Person, calendar
from rooms import dates


class SendError(Exception):
    """The SMTP server could not be reached or refused the message (the outbox tries again later)."""


@dataclass(frozen=True)
class EmailInvitation:
    language: str  # "fr" or "en"
    invitee: Person
    organizer: Person
    conference: str  # its name
    starts_at: datetime | None  # aware; None for a conference open without schedule
    ends_at: datetime | None
    timezone: str  # the invitee's (IANA name)
    link: str  # the invitee's own join link
    dial_in: tuple[str, ...]  # numbers as written for the invitee ("04 91 00 00 00", "+33 4 91 00 00 00")
    code: str  # as shown: "123 456 789"
    entry_code: str | None
    message: str  # the organiser's words, may be empty
    uid: str
    sequence: int = 0
    cancelled: bool = False
    changes: tuple[str, ...] = ()  # an update: what changed ("time", "entry_code", "name", "message")


TEXTS = {
    "fr": {
        "subject": "Invitation : {name}", "subject_cancel": "Annulée : {name}",
        "subject_changed": "Modifiée : {name}", "hello": "Bonjour {name},", "hello_anyone": "Bonjour,",
        "invites": "{organizer} vous invite à la conférence « {name} ».",
        "cancelled": "{organizer} a annulé la conférence « {name} ».",
        "changed": "{organizer} a modifié la conférence « {name} » : {what}. Cette invitation remplace la précédente.",
        "time": "nouvel horaire", "entry_code": "nouveau code d'entrée", "name": "nouveau nom",
        "message": "nouveau message",
        "when": "Quand : {span}", "open": "Conférence ouverte, sans horaire.",
        "web": "Rejoindre depuis un ordinateur, une tablette ou un téléphone :",
        "phone": "Ou par téléphone, sans ordinateur :", "numbers": "Numéro : {numbers}",
        "code": "Code de la conférence : {code} #", "entry": "Code d'entrée : {entry} #",
        "how": "Composez le numéro, tapez le code de la conférence suivi de # sur le clavier.",
    },
    "en": {
        "subject": "Invitation: {name}", "subject_cancel": "Cancelled: {name}",
        "subject_changed": "Changed: {name}", "hello": "Hello {name},", "hello_anyone": "Hello,",
        "invites": "{organizer} invites you to the conference “{name}”.",
        "cancelled": "{organizer} cancelled the conference “{name}”.",
        "changed": "{organizer} changed the conference “{name}”: {what}. This invitation replaces the previous one.",
        "time": "new time", "entry_code": "new entry code", "name": "new name", "message": "new message",
        "when": "When: {span}", "open": "Open conference, with no set time.",
        "web": "Join from a computer, tablet or phone:",
        "phone": "Or by phone, with no computer:", "numbers": "Number: {numbers}",
        "code": "Conference code: {code} #", "entry": "Entry code: {entry} #",
        "how": "Dial the number, then type the conference code followed by # on the keypad.",
    },
}  # fmt: skip


def compose(invitation: EmailInvitation, sender: str, now: datetime | None = None) -> EmailMessage:
    language = invitation.language if invitation.language in TEXTS else "en"
    t = TEXTS[language]
    name = invitation.conference
    message = EmailMessage()
    message["From"] = sender
    message["To"] = formataddr((invitation.invitee.name, invitation.invitee.email))
    kind = "cancelled" if invitation.cancelled else "changed" if invitation.changes else "invites"
    subject = {"cancelled": "subject_cancel", "changed": "subject_changed", "invites": "subject"}[kind]
    message["Subject"] = t[subject].format(name=name)
    message["Date"] = format_datetime(now or datetime.now(ZoneInfo("UTC")))
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    message["Content-Language"] = language
    hello = t["hello"].format(name=invitation.invitee.name) if invitation.invitee.name.strip() else t["hello_anyone"]
    lines = [hello, ""]
    what = ", ".join(t[c] for c in invitation.changes if c in t)
    lines.append(t[kind].format(organizer=invitation.organizer.name, name=name, what=what))
    if invitation.starts_at is not None and invitation.ends_at is not None:
        # The weekday, the date, the hours and the zone's name, in the reader's language and zone.
        lines.append(t["when"].format(span=dates.span(invitation.starts_at, invitation.ends_at, invitation.timezone,
                                                      language)))  # fmt: skip
    else:
        lines.append(t["open"])
    if invitation.message.strip() and not invitation.cancelled:
        lines += ["", invitation.message.strip()]
    if not invitation.cancelled:
        lines += [
            "",
            t["web"],
            invitation.link,
            "",
            t["phone"],
            t["numbers"].format(numbers=" · ".join(invitation.dial_in)),
            t["code"].format(code=invitation.code),
        ]
        if invitation.entry_code:
            lines.append(t["entry"].format(entry=invitation.entry_code))
        lines.append(t["how"])  # fmt: skip
    message.set_content("\n".join(lines) + "\n")
    if invitation.starts_at is not None and invitation.ends_at is not None:
        event = Event(uid=invitation.uid, sequence=invitation.sequence, summary=name,
                      description="\n".join(lines[2:]), starts_at=invitation.starts_at, ends_at=invitation.ends_at,
                      organizer=invitation.organizer, attendee=invitation.invitee, url=invitation.link)  # fmt: skip
        method = Method.CANCEL if invitation.cancelled else Method.REQUEST
        ics = calendar(event, method, now)
        message.add_attachment(ics, maintype="text", subtype="calendar", filename="invitation.ics",
                               params={"method": method.value, "charset": "UTF-8"})  # fmt: skip
    return message


async def send(message: EmailMessage, settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> None:
    """One attempt; raises :class:`SendError` with the server's or the network's reason."""
    import aiosmtplib

    email = settings.email
    if email.smtp is None:
        raise SendError("no SMTP server is set (email.smtp)")
    context = tls_context or ssl.create_default_context()
    try:
        await aiosmtplib.send(
            message, hostname=email.smtp.host, port=email.smtp.port, timeout=email.timeout_s,
            use_tls=email.security is SmtpSecurity.TLS, start_tls=email.security is SmtpSecurity.STARTTLS,
            tls_context=context if email.security is not SmtpSecurity.NONE else None,
            username=email.username or None, password=email.password.reveal() or None,
        )  # fmt: skip
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from exc
