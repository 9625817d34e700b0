"""The invitation email: what it says in French and English, its calendar part, and its delivery to a real SMTP
server process (aiosmtpd), plain and with STARTTLS."""

from __future__ import annotations

import asyncio
import mailbox
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from config import load_settings
from notify.ics import Person
from notify.mail import EmailInvitation, SendError, compose, send
from tests.tools import free_tcp_port, require, server_process

PARIS = ZoneInfo("Europe/Paris")
SENDER = "Passerelle <invitations@visio.example.org>"


def invitation(**changes: object) -> EmailInvitation:
    fields: dict[str, object] = {
        "language": "fr", "invitee": Person("Anne Petit", "anne.petit@example.org"),
        "organizer": Person("Dr Martin", "martin@clinique.example"), "conference": "Consultation de suivi",
        "starts_at": datetime(2026, 12, 3, 14, 30, tzinfo=PARIS), "ends_at": datetime(2026, 12, 3, 15, 0, tzinfo=PARIS),
        "timezone": "Europe/Paris", "link": "https://visio.example.org/i/Xk3d9Qa2", "dial_in": ("04 91 00 00 00",),
        "code": "123 456 789", "entry_code": "4821", "message": "Pensez à préparer vos derniers résultats.",
        "uid": "c0ffee@visio.example.org",
    }  # fmt: skip
    fields.update(changes)
    return EmailInvitation(**fields)  # type: ignore[arg-type]


def test_french_invitation_carries_link_phone_codes_and_calendar() -> None:
    message = compose(invitation(), SENDER, now=datetime(2026, 11, 29, 9, 0, tzinfo=UTC))
    assert message["Subject"] == "Invitation : Consultation de suivi"
    assert message["To"] == "Anne Petit <anne.petit@example.org>"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for part in ("Bonjour Anne Petit,", "Dr Martin vous invite à la conférence « Consultation de suivi ».",
                 "Quand : jeudi 3 décembre 2026, 14:30 – 15:00 (heure : France)", "Pensez à préparer",
                 "https://visio.example.org/i/Xk3d9Qa2", "Numéro : 04 91 00 00 00",
                 "Code de la conférence : 123 456 789 #", "Code d'entrée : 4821 #"):  # fmt: skip
        assert part in text, part
    (ics,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert ics.get_param("method") == "REQUEST"
    event = icalendar.Calendar.from_ical(ics.get_content()).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == datetime(2026, 12, 3, 13, 30, tzinfo=UTC)
    assert "04 91 00 00 00" in str(event["DESCRIPTION"])


def test_english_open_conference_has_no_calendar_and_a_cancellation_says_so() -> None:
    message = compose(invitation(language="en", starts_at=None, ends_at=None, timezone="America/Montreal"), SENDER)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Open conference, with no set time." in text
    assert "Conference code: 123 456 789 #" in text
    assert not [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    cancelled = compose(invitation(language="en", cancelled=True, sequence=2), SENDER)
    assert cancelled["Subject"] == "Cancelled: Consultation de suivi"
    (ics,) = [p for p in cancelled.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert icalendar.Calendar.from_ical(ics.get_content())["METHOD"] == "CANCEL"
    body = cancelled.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "https://visio.example.org/i/" not in body, "a cancelled invitation does not invite"


def test_an_update_says_it_changed_and_what() -> None:
    message = compose(invitation(changes=("time", "entry_code"), sequence=1), SENDER)
    assert message["Subject"] == "Modifiée : Consultation de suivi"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert ("Dr Martin a modifié la conférence « Consultation de suivi » : nouvel horaire, nouveau code d'entrée. "
            "Cette invitation remplace la précédente.") in text  # fmt: skip
    english = compose(invitation(language="en", changes=("time",), timezone="America/Martinique"), SENDER)
    assert english["Subject"] == "Changed: Consultation de suivi"
    body = english.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "changed the conference “Consultation de suivi”: new time." in body
    # In the reader's zone, with the weekday and the month's name: never an ambiguous "03/12".
    assert "When: Thursday, December 3, 2026, 9:30\u202fAM – 10:00\u202fAM (Martinique Time)" in body
    assert "03/12" not in body


@contextmanager
def smtp_server(folder: Path, *tls: str) -> Iterator[tuple[int, Path]]:
    """aiosmtpd in its own process, storing what it receives in a Maildir."""
    port, box = free_tcp_port(), folder / "maildir"
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Mailbox",
               *tls, str(box)]  # fmt: skip
    with server_process(command, port, folder / "smtp.log", "aiosmtpd"):
        yield port, box


def received(box: Path) -> list[mailbox.MaildirMessage]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if box.exists() and (messages := list(mailbox.Maildir(str(box), create=False))):
            return messages
        time.sleep(0.1)
    return []


def test_sent_over_smtp_to_a_real_server(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as (port, box):
        settings = load_settings(environ={"PASSERELLE_EMAIL__SMTP": f"127.0.0.1:{port}",
                                          "PASSERELLE_EMAIL__SECURITY": "none"})  # fmt: skip
        asyncio.run(send(compose(invitation(), SENDER), settings))
        (got,) = received(box)
    assert got["To"] == "Anne Petit <anne.petit@example.org>"
    parts = [part.get_content_type() for part in got.walk()]
    assert "text/plain" in parts
    assert "text/calendar" in parts


def test_starttls_with_the_servers_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([require("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)  # fmt: skip
    with smtp_server(tmp_path, "--tlscert", str(cert), "--tlskey", str(key)) as (port, box):
        settings = load_settings(environ={"PASSERELLE_EMAIL__SMTP": f"127.0.0.1:{port}",
                                          "PASSERELLE_EMAIL__SECURITY": "starttls"})  # fmt: skip
        asyncio.run(send(compose(invitation(), SENDER), settings, tls_context=ssl.create_default_context(cafile=cert)))
        assert len(received(box)) == 1
        with pytest.raises(SendError, match=r"SSL|certificate|verify"):  # an unknown certificate is refused
            asyncio.run(send(compose(invitation(), SENDER), settings))


def test_unreachable_server_is_a_clear_error() -> None:
    settings = load_settings(environ={"PASSERELLE_EMAIL__SMTP": f"127.0.0.1:{free_tcp_port()}",
                                      "PASSERELLE_EMAIL__SECURITY": "none"})  # fmt: skip
    with pytest.raises(SendError, match="Connect"):
        asyncio.run(send(compose(invitation(), SENDER), settings))
    with pytest.raises(SendError, match=r"email\.smtp"):
        asyncio.run(send(compose(invitation(), SENDER), load_settings(environ={})))
