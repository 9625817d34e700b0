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
from collections.abc import Callable
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
    """The text in GSM-7: typographic signs replaced, letters outside the alphabet without their accent, emoji and
    other symbols left out (a "?" in a name looks like a broken message), and other scripts' letters as "?"."""
    out = []
    for char in text:
        char = NEAR.get(char, char)
        if septets(char) is not None:
            out.append(char)
            continue
        bare = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
        if bare and septets(bare) is not None:
            out.append(bare)
        elif unicodedata.category(char)[0] in "LN":
            out.append("?")
        # else: an emoji, a symbol, a joiner or a variation selector: nothing
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
    when: str | None  # already formatted in the invitee's zone ("jeu. 3 déc. 14:30"), or None for an open conference
    link: str  # the invitee's own join link
    dial_in: str  # the number as dialled in the invitee's country ("04 91 00 00 00")
    code: str  # conference code, digits
    entry_code: str | None = None
    organiser: str = ""  # who invites: the organiser's name, and the clinic's ([sms] sender_name) when set
    changed: bool = False  # an update: it replaces an earlier message


# Short on purpose: the link, the number and both codes take most of the 160 characters, and the organiser's name
# must fit beside them.
TEXTS = {
    "fr": {"cancelled": "Annulée", "by_phone": "ou tel. {number} code {code}#", "entry": " puis {entry}#",
           "join": "Lien : {link}", "invites": "{who} : ", "changed": "Modifiée par {who} : ",
           "cancelled_by": "Annulée par {who} : "},
    "en": {"cancelled": "Cancelled", "by_phone": "or call {number} code {code}#", "entry": " then {entry}#",
           "join": "Join: {link}", "invites": "{who}: ", "changed": "Changed by {who}: ",
           "cancelled_by": "Cancelled by {who}: "},
}  # fmt: skip


def _fit(build: Callable[[str, str], str], name: str, who: str) -> str:
    """The longest message of one segment: the conference's name shortened first (to nothing if need be), then
    the organiser said shorter ("Dr Claire Martin, Clinique du Parc" → "Dr Claire Martin" → "Dr Martin"), cut
    only as a last resort; never anything else."""
    name = " ".join(to_gsm7(name).split())
    forms = [" ".join(to_gsm7(w).split()) for w in _shorter(who)]
    if (septets(build(name, forms[0])) or 0) <= SINGLE:
        return build(name, forms[0])
    while name and (septets(build(name.rstrip() + "...", forms[0])) or 0) > SINGLE:
        name = name[:-1]
    if len(name.strip()) >= 5:  # the organiser in full, the name shortened
        return build(name.rstrip() + "...", forms[0])
    name = ""
    for form in forms:
        if (septets(build(name, form)) or 0) <= SINGLE:
            return build(name, form)
    last = forms[-1]
    while len(last) > 1 and (septets(build(name, last)) or 0) > SINGLE:
        last = last[:-1]
    return build(name, last.rstrip())


TITLES = frozenset({"dr", "dr.", "pr", "pr.", "me", "mme", "m.", "mr", "mrs", "ms", "prof.", "prof"})


def _shorter(who: str) -> list[str]:
    """The organiser's name, from the fullest to the shortest form worth showing."""
    forms = [who]
    person = who.split(",", 1)[0].strip()  # without the clinic
    if person and person != who:
        forms.append(person)
    words = person.split()
    if len(words) > 2 and words[0].lower() in TITLES:
        forms.append(f"{words[0]} {words[-1]}")  # "Dr Martin"
    elif len(words) > 1:
        forms.append(f"{words[0][0]}. {words[-1]}")  # "C. Martin"
    return forms


def compose_cancellation(language: str, conference: str, when: str | None, organiser: str = "") -> str:
    """ "Annulée par <organiser> : <name>, <when>." in one GSM-7 message (the name shortened if need be)."""
    texts = TEXTS.get(language, TEXTS["en"])
    tail = to_gsm7(f", {when}." if when else ".")

    def build(name: str, who: str) -> str:
        if who:
            return to_gsm7(texts["cancelled_by"].format(who=who)) + name + tail
        return f"{to_gsm7(texts['cancelled'])}{' :' if language == 'fr' else ':'} {name}{tail}"

    return _fit(build, conference, organiser)


def compose(invitation: SmsInvitation) -> str:
    """The message: "<organiser>: <name>, <when>. Join: <link> or call <number> code <code># [then <entry>#]" in
    GSM-7 ("Changed by <organiser>: …" for an update, which replaces an earlier one); the name, then the
    organiser, are shortened before anything that lets the invitee join."""
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
    lead = texts["changed" if invitation.changed else "invites"]

    def build(name: str, who: str) -> str:
        heading = (name + when).strip(", ")
        opening = to_gsm7(lead.format(who=who)) if who else ""
        if not heading:
            return f"{opening.rstrip(': ')}. {tail}" if opening else tail
        return f"{opening}{heading}. {tail}"

    return _fit(build, invitation.conference, invitation.organiser)


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
