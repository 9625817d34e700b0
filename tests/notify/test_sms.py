"""The SMS invitation: one GSM-7 message where possible, and never without the link, the number and the code."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from notify.sms import SINGLE, SmsInvitation, compose, segments, septets, to_gsm7

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
    assert text == ("Consultation Dr Martin, 03/12 14:30. Rejoindre : " + LINK +
                    " ou par tel. au 04 91 00 00 00, code 123456789#, code d'entree 4821#")  # fmt: skip
    assert septets(text) is not None
    assert segments(text) == 1


def test_english_and_open_conference() -> None:
    text = compose(invitation(language="en", when=None, entry_code=None))
    assert text == f"Consultation Dr Martin. Join: {LINK} or by phone 04 91 00 00 00, code 123456789#"


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
        'Rééducation fonctionnelle, Dr Francoise Lefèvre-Hopital " Sud " ... ?'
    )
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


@given(st.text(max_size=200), st.sampled_from(["fr", "en"]), st.one_of(st.none(), st.text(max_size=20)))
def test_any_name_gives_gsm7_with_the_details(name: str, language: str, when: str | None) -> None:
    text = compose(invitation(conference=name, language=language, when=when))
    assert septets(text) is not None, "the message left GSM-7"
    for part in (LINK, "04 91 00 00 00", "123456789#", "4821#"):
        assert part in text
    if when is None or len(to_gsm7(when)) < 20:
        assert segments(text) == 1
