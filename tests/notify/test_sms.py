"""The SMS invitation: one GSM-7 message where possible, and never without the link, the number and the code."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config import Settings, load_settings
from notify.sms import (
    SINGLE,
    SendError,
    SmsInvitation,
    compose,
    compose_cancellation,
    segments,
    send,
    septets,
    to_gsm7,
)
from tests.tools import free_tcp_port, server_process

LINK = "https://visio.example.org/i/Xk3d9Qa2LmP0"


def invitation(**changes: object) -> SmsInvitation:
    fields: dict[str, object] = {
        "language": "fr",
        "conference": "Consultation Dr Martin",
        "when": "03/12 14:30",
        "link": LINK,
        "dial_in": "04 91 00 00 00",
        "code": "123456789",
        "entry_code": "4821",
    }
    fields.update(changes)
    return SmsInvitation(**fields)  # type: ignore[arg-type]


def test_french_invitation_is_one_gsm7_message_with_everything() -> None:
    text = compose(invitation())
    assert text == ("Consultation Dr Martin, 03/12 14:30. Lien : " + LINK +
                    " ou tel. 04 91 00 00 00 code 123456789# puis 4821#")  # fmt: skip
    assert septets(text) is not None
    assert segments(text) == 1


def test_english_and_open_conference() -> None:
    text = compose(invitation(language="en", when=None, entry_code=None))
    assert text == f"Consultation Dr Martin. Join: {LINK} or call 04 91 00 00 00 code 123456789#"


def test_a_long_name_is_shortened_not_the_details() -> None:
    text = compose(invitation(conference="Réunion de concertation pluridisciplinaire en oncologie thoracique du CHU"))
    assert segments(text) == 1
    assert len(text) <= SINGLE
    assert text.startswith("Réunion de concert")
    assert "...," in text
    for part in (LINK, "04 91 00 00 00", "123456789#", "4821#"):
        assert part in text


def test_letters_outside_gsm7_lose_their_accent_not_the_message() -> None:
    assert to_gsm7("Rééducation fonctionnelle, Dr Françoise Lefèvre-Hôpital « Sud » … 🙂") == (
        'Rééducation fonctionnelle, Dr Francoise Lefèvre-Hopital " Sud " ... '
    ), "emoji are left out, not turned into a '?' that looks like a broken message"
    assert to_gsm7("RCP 👩\u200d⚕️ ✅ Иван") == "RCP   ????"
    text = compose(invitation(conference="Bilan pédiatrique — Dr Ançay", entry_code=None))
    assert septets(text) is not None
    assert "Dr Ancay" in text


def test_segments_count_gsm7_extension_and_ucs2() -> None:
    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2
    assert segments("€" * 80) == 1  # two septets each
    assert segments("€" * 81) == 2
    assert segments("ç" * 70) == 1  # UCS-2
    assert segments("ç" * 71) == 2


def test_the_organiser_is_named_and_an_update_says_it_changed() -> None:
    text = compose(invitation(organiser="Dr Claire Martin", when="jeu. 3 déc. 14:30"))
    assert text.startswith("Dr Claire Martin : Consultation Dr Martin, jeu. 3 déc. 14:30. Lien : ")
    assert segments(text) == 1
    clinic = compose(invitation(organiser="Dr Claire Martin, Clinique du Parc", when="jeu. 3 déc. 14:30"))
    assert clinic.startswith("Dr Claire Martin, Clinique du Parc : jeu. 3 déc."), "the conference's name gives way"
    assert segments(clinic) == 1
    changed = compose(invitation(organiser="Dr Claire Martin", changed=True, language="en", when="Thu, Dec 3 3:00 PM"))
    assert changed.startswith("Changed by Dr Claire Martin: Consultati..., Thu, Dec 3 3:00 PM. Join: ")
    long_link = "https://visio.chu-exemple.fr/i/" + "K" * 22  # as long as the service's links are
    crowded = compose(invitation(link=long_link, organiser="Dr Marie-Anne-Clotilde de La Tour d'Auvergne, "
                                 "Centre hospitalier régional", entry_code="48291537"))  # fmt: skip
    assert segments(crowded) == 1, "the name, then the organiser, are shortened to keep one message"
    assert crowded.startswith("Dr d'Auvergne : "), "without the clinic, then title and surname"
    for part in (long_link, "04 91 00 00 00", "123456789#", "48291537#"):
        assert part in crowded
    cancelled = compose_cancellation("fr", "Consultation Dr Martin", "jeu. 3 déc. 14:30", "Dr Claire Martin")
    assert cancelled == "Annulée par Dr Claire Martin : Consultation Dr Martin, jeu. 3 déc. 14:30."


@given(st.text(max_size=200), st.sampled_from(["fr", "en"]), st.one_of(st.none(), st.text(max_size=20)),
       st.text(max_size=80), st.booleans())  # fmt: skip
def test_any_name_gives_gsm7_with_the_details(name: str, language: str, when: str | None, who: str,
                                              changed: bool) -> None:  # fmt: skip
    text = compose(invitation(conference=name, language=language, when=when, organiser=who, changed=changed))
    assert septets(text) is not None, "the message left GSM-7"
    for part in (LINK, "04 91 00 00 00", "123456789#", "4821#"):
        assert part in text
    if when is None or len(to_gsm7(when)) < 20:
        assert segments(text) == 1


GATEWAY_URL = ("http://127.0.0.1:{port}/cgi-bin/sendsms?username={{username}}&password={{password}}&from={{sender}}"
               "&to={{to}}&text={{text}}&coding={{coding}}&charset=UTF-8")  # fmt: skip


@contextmanager
def gateway(folder: Path) -> Iterator[tuple[int, Path]]:
    port, out = free_tcp_port(), folder / "sms.jsonl"
    command = [sys.executable, "-m", "tests.notify.sms_gateway", str(port), str(out), "clinic", GATEWAY_PASSWORD]
    with server_process(command, port, folder / "gateway.log", "the SMS gateway"):
        yield port, out


GATEWAY_PASSWORD = "s3cret"


def sms_settings(port: int, password: str = GATEWAY_PASSWORD) -> Settings:
    return load_settings(environ={
        "PASSERELLE_SMS__URL": GATEWAY_URL.format(port=port), "PASSERELLE_SMS__USERNAME": "clinic",
        "PASSERELLE_SMS__PASSWORD": password,
    })  # fmt: skip


def test_the_invitation_reaches_a_kannel_style_gateway(tmp_path: Path) -> None:
    text = compose(invitation())
    with gateway(tmp_path) as (port, out):
        answer = asyncio.run(send("+33612345678", text, sms_settings(port)))
        assert answer == "0: Accepted for delivery"
        asyncio.run(send("+33612345678", "Réunion : ça commence", sms_settings(port)))
        (first, second) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert first["to"] == "33612345678"
    assert first["text"] == text, "the text arrived changed"
    assert first["coding"] == "0"
    assert first["from"] == "Passerelle"
    assert second["coding"] == "2", "text outside GSM-7 goes as UCS-2"


def test_gateway_refusals_and_absence_are_clear_errors(tmp_path: Path) -> None:
    with gateway(tmp_path) as (port, _), pytest.raises(SendError, match="403: Authorization failed"):
        asyncio.run(send("+33612345678", "x", sms_settings(port, password="wrong")))
    with pytest.raises(SendError, match="ClientConnectorError"):
        asyncio.run(send("+33612345678", "x", sms_settings(port)))  # the gateway is gone
    with pytest.raises(SendError, match=r"sms\.url"):
        asyncio.run(send("+33612345678", "x", load_settings(environ={})))
