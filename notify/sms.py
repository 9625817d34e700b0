"""The invitation by SMS: the join link, the dial-in number and the code, in one 160-character GSM-7 message where
possible.

GSM 03.38's 7-bit alphabet holds French's é, è, ù, à but not ê, â, î, ô, û, ç, nor "…" or typographic quotes: a
single such character turns the whole message into UCS-2, 70 characters a segment. So the text is written in GSM-7
(those letters lose their accent: "entree" rather than "entrée", which every phone shows), the link, number and
code are never cut, and the conference's name is shortened first when the message would need a second segment.
"""

from __future__ import annotations

import unicodedata
import urllib.parse
from dataclasses import dataclass

from config import Settings

# GSM 03.38 default alphabet (one septet each) and its extension table (two septets: escape + character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
SINGLE = 160  # septets in one message
PART = 153  # septets per part of a concatenated message (the rest is the user data header)
UCS2_SINGLE, UCS2_PART = 70, 67
NEAR = {"…": "...", "’": "'", "‘": "'", "“": '"', "”": '"', "«": '"', "»": '"', "–": "-", "—": "-", "\u00a0": " ",
        "\u202f": " ", "œ": "oe", "Œ": "OE"}  # fmt: skip


def septets(text: str) -> int | None:
    """Septets the text takes in GSM-7, or None when it cannot be written in GSM-7."""
    count = 0
    for char in text:
        if char in GSM7_BASIC:
            count += 1
        elif char in GSM7_EXTENSION:
            count += 2
        else:
            return None
    return count


def to_gsm7(text: str) -> str:
    """The text in GSM-7: typographic signs replaced, letters outside the alphabet without their accent, and what is
    left (emoji, other scripts) as "?"."""
    out = []
    for char in text:
        char = NEAR.get(char, char)
        if septets(char) is not None:
            out.append(char)
            continue
        bare = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
        out.append(bare if bare and septets(bare) is not None else "?")
    return "".join(out)


def segments(text: str) -> int:
    """How many SMS the text is sent as (GSM-7 if it can be, UCS-2 otherwise)."""
    count = septets(text)
    if count is not None:
        return 1 if count <= SINGLE else -(-count // PART)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= UCS2_SINGLE else -(-units // UCS2_PART)


@dataclass(frozen=True)
class SmsInvitation:
    language: str  # "fr" or "en"
    conference: str  # its name
    when: str | None  # already formatted in the invitee's zone ("03/12 14:30"), or None for an open conference
    link: str  # the invitee's own join link
    dial_in: str  # the number as dialled in the invitee's country ("04 91 00 00 00")
    code: str  # conference code, digits
    entry_code: str | None = None


TEXTS = {
    "fr": {"cancelled": "Annulée", "by_phone": "ou par tel. au {number}, code {code}#",
           "entry": ", code d'entree {entry}#",
           "join": "Rejoindre : {link}"},
    "en": {"cancelled": "Cancelled", "by_phone": "or by phone {number}, code {code}#",
           "entry": ", entry code {entry}#",
           "join": "Join: {link}"},
}  # fmt: skip


def compose_cancellation(language: str, conference: str, when: str | None) -> str:
    """ "Annulee : <name>, <when>." in one GSM-7 message (the name shortened if need be)."""
    word = to_gsm7(TEXTS.get(language, TEXTS["en"])["cancelled"])
    name = to_gsm7(" ".join(conference.split()))
    tail = to_gsm7(f", {when}." if when else ".")
    while name and (septets(f"{word} : {name}{tail}") or 0) > SINGLE:
        name = name[:-1]
    return f"{word} : {name}{tail}" if language == "fr" else f"{word}: {name}{tail}"


def compose(invitation: SmsInvitation) -> str:
    """The message: "<name>, <when>. Join: <link> or by phone <number>, code <code>#[, entry code <e>#]", in GSM-7;
    the name is shortened (then left out) before anything that lets the invitee join."""
    texts = TEXTS.get(invitation.language, TEXTS["en"])
    tail = (
        texts["join"].format(link=invitation.link)
        + " "
        + texts["by_phone"].format(number=invitation.dial_in, code=invitation.code)
    )
    if invitation.entry_code:
        tail += texts["entry"].format(entry=invitation.entry_code)
    tail = to_gsm7(tail)
    when = to_gsm7(f", {invitation.when}" if invitation.when else "")
    name = to_gsm7(" ".join(invitation.conference.split()))

    def build(title: str) -> str:
        heading = (title + when).strip(", ")
        return f"{heading}. {tail}" if heading else tail

    message = build(name)
    if (septets(message) or 0) > SINGLE:  # shorten the name, to nothing if need be; never the rest
        while name and (septets(build(name.rstrip() + "...")) or 0) > SINGLE:
            name = name[:-1]
        message = build(name.rstrip() + "..." if len(name.strip()) >= 5 else "")
    return message


class SendError(Exception):
    """The gateway could not be reached or refused the message (the outbox tries again later)."""


async def send(to_e164: str, text: str, settings: Settings) -> str:
    """One message through the HTTP gateway of ``[sms]`` (Kannel's ``sendsms`` or any gateway taking a URL); returns
    the gateway's answer. GSM-7 text goes as coding 0, anything else as UCS-2 (coding 2); always UTF-8 on the wire."""
    import aiohttp

    sms = settings.sms
    if not sms.url:
        raise SendError("no SMS gateway is set (sms.url)")
    coding = "0" if septets(text) is not None else "2"
    values = {"username": sms.username, "password": sms.password.reveal(), "sender": sms.sender,
              "to": to_e164.removeprefix("+"), "text": text, "coding": coding}  # fmt: skip
    url = sms.url.format(**{k: urllib.parse.quote(v, safe="") for k, v in values.items()})
    try:
        timeout = aiohttp.ClientTimeout(total=sms.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            answer = (await response.text()).strip()
            if response.status >= 300:
                raise SendError(f"the gateway answered {response.status}: {answer[:200]}")
            return answer
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from exc
