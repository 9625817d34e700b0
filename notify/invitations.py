"""Invitations put in the outbox for the people on a conference's list: an email (with its calendar event) to an
address or to an account that has one, an SMS to a mobile number or to an account with only a phone.

Each invitee gets their own link; everyone gets the dial-in number(s), the conference code and the entry code. A
change of the conference sends the event again with the next SEQUENCE (to those already invited); a deletion, or
taking someone off the list, sends a cancellation to those who were invited. Composed when queued: what goes out
later is what the conference was at that moment, and a later change queues its own update.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import phonenumbers
from babel.dates import format_skeleton, format_time, get_timezone_location

from config import Settings
from notify import mail, sms
from notify.ics import Person
from notify.outbox import Outbox
from rooms import ConferenceView, InviteeKind, InviteeView, NotFoundError, Rooms
from rooms.models import Channel, DeliveryState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    channel: Channel
    address: str  # email address or E.164 number
    name: str
    timezone: str


class Invitations:
    def __init__(self, settings: Settings, rooms: Rooms, outbox: Outbox) -> None:
        self.settings, self.rooms, self.outbox = settings, rooms, outbox

    def recipient(self, conference: ConferenceView, invitee: InviteeView) -> Recipient | None:
        """How this invitee is reached, or None (an account with neither email nor mobile number)."""
        if invitee.kind is InviteeKind.EMAIL:
            return Recipient(Channel.EMAIL, invitee.address, "", conference.timezone)  # no name known: "Bonjour,"
        if invitee.kind is InviteeKind.PHONE:
            return Recipient(Channel.SMS, invitee.address, "", conference.timezone)
        try:
            user = self.rooms.get_user(invitee.address)
        except NotFoundError:
            return None
        if user.email:
            return Recipient(Channel.EMAIL, user.email, user.display_name, user.timezone)
        if user.phone_e164:
            return Recipient(Channel.SMS, user.phone_e164, user.display_name, user.timezone)
        return None

    def send(
        self,
        conference: ConferenceView,
        invitees: list[InviteeView],
        *,
        not_before: datetime | None = None,
        cancelled: bool = False,
        changes: tuple[str, ...] = (),
        note: str = "",
    ) -> tuple[int, int]:
        """Queue the invitation (or its cancellation) for each invitee; (queued, unreachable). ``changes`` makes it
        an update that says what changed ("time", "entry_code", "name", "message"). ``note``: a message of the
        one who invites from the room, in the email instead of the conference's own (an SMS has no room for it)."""
        queued = unreachable = 0
        for invitee in invitees:
            to = self.recipient(conference, invitee)
            if to is None:
                unreachable += 1
                continue
            if to.channel is Channel.EMAIL:
                payload = self._email(conference, invitee, to, cancelled, changes, note)
            else:
                payload = self._sms(conference, invitee, to, cancelled, changes)
            # a cancellation is not tied to the invitee: their row may be deleted with the conference
            self.outbox.enqueue(to.channel, to.address, payload, invitee_id=None if cancelled else invitee.id,
                                not_before=not_before)  # fmt: skip
            queued += 1
        log.info("conference %s: %d %s queued, %d invitees without an address", conference.id, queued,
                 "cancellations" if cancelled else "invitations", unreachable)  # fmt: skip
        return queued, unreachable

    @staticmethod
    def pending(invitees: list[InviteeView]) -> list[InviteeView]:
        """Those whose invitation is still to send: never sent, or given up on (sending again tries anew)."""
        return [i for i in invitees if i.delivery_state in (DeliveryState.NOT_SENT, DeliveryState.FAILED)]

    def to_update(self, invitees: list[InviteeView]) -> list[InviteeView]:
        """Those a change concerns: whose invitation went out, or is on its way (they get the new version too)."""
        return [i for i in invitees if i.delivery_state in (DeliveryState.SENT, DeliveryState.QUEUED)]

    def to_cancel(self, invitees: list[InviteeView]) -> list[InviteeView]:
        """Those a cancellation concerns: who were sent an invitation. (One still waiting in the outbox goes with
        its invitee: the outbox row is deleted with them, so it never leaves.)"""
        delivered = self.outbox.delivered_to([i.id for i in invitees])
        return [i for i in invitees if i.delivery_state is DeliveryState.SENT or i.id in delivered]

    def _email(self, conference: ConferenceView, invitee: InviteeView, to: Recipient, cancelled: bool,
               changes: tuple[str, ...], note: str = "") -> bytes:  # fmt: skip
        organizer = Person(conference.owner_name or "Passerelle",
                           conference.owner_email or _address(self.settings.email.sender))  # fmt: skip
        numbers = self.settings.dial_in.numbers
        local = self.settings.locale.phone_region == "FR" and invitee.language.value == "fr"
        invitation = mail.EmailInvitation(
            language=invitee.language.value, invitee=Person(to.name, to.address), organizer=organizer,
            conference=conference.name, starts_at=conference.starts_at, ends_at=conference.ends_at,
            timezone=to.timezone, link=invitee.join_url,
            dial_in=tuple(n.national if local else n.international for n in numbers),
            code=conference.code_display, entry_code=conference.entry_code, message=note or conference.message,
            uid=f"{conference.id}@{urlsplit(self.settings.http.public_base_url).hostname}",
            sequence=conference.sequence, cancelled=cancelled, changes=changes,
        )  # fmt: skip
        return bytes(mail.compose(invitation, self.settings.email.sender))

    def _sms(self, conference: ConferenceView, invitee: InviteeView, to: Recipient, cancelled: bool,
             changes: tuple[str, ...]) -> bytes:  # fmt: skip
        language = invitee.language.value
        when = None
        if conference.starts_at is not None:
            when = self._sms_when(conference.starts_at, conference.timezone, to, language)
        number = self.settings.dial_in.numbers[0]
        organiser = ", ".join(x for x in (conference.owner_name, self.settings.sms.sender_name) if x)
        if cancelled:
            return sms.compose_cancellation(language, conference.name, when, organiser).encode()
        text = sms.compose(sms.SmsInvitation(
            language=language, conference=conference.name, when=when, link=invitee.join_url,
            dial_in=number.national if to.address.startswith("+33") and number.e164.startswith("+33") else
            number.international, code=conference.code, entry_code=conference.entry_code, organiser=organiser,
            changed=bool(changes),
        ))  # fmt: skip
        return text.encode()

    def _sms_when(self, starts_at: datetime, conference_zone: str, to: Recipient, language: str) -> str:
        """ "jeu. 3 déc. 14:30", "Thu, Dec 3 2:30 PM": the weekday and the month's name in the reader's language
        (never "03/12"), and the zone's city when the reader may live in another zone than the conference's."""
        local = starts_at.astimezone(ZoneInfo(to.timezone))
        text = f"{format_skeleton('MMMEd', local, locale=language)} {format_time(local, 'short', locale=language)}"
        abroad = to.timezone != conference_zone or _region(to.address) not in ("", self.settings.locale.phone_region)
        if abroad:
            text += f" ({get_timezone_location(ZoneInfo(to.timezone), locale=language, return_city=True)})"
        return text


def _region(e164: str) -> str:
    """The country of a number ("FR", "MQ"), or "" when it is not one."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


def _address(sender: str) -> str:
    return sender.rsplit("<", 1)[-1].rstrip(">").strip()
