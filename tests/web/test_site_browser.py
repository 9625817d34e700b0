"""The professional's journey in real headless Chromium against a real `passerelle serve`: sign in through the
portal (a real OpenID Connect provider), plan a conference with every option (a refused first attempt keeps every
value), the invitations arrive on a real SMTP server process (the calendar event parses) and at the SMS gateway,
and the link in the email opens the join page."""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import subprocess
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.cli.test_serve import free_port
from tests.notify.test_mail import smtp_server
from tests.notify.test_sms import GATEWAY_PASSWORD, GATEWAY_URL, gateway
from tests.tools import require
from tests.web.portal import portal
from tests.web.site import serving
from tests.web.test_join_browser import launch, path_of


def arrived(box: Path, count: int, limit_s: float = 30.0) -> list[EmailMessage]:
    """The messages the SMTP server stored, once there are ``count`` (the outbox worker looks every 5 s)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if box.exists():
            found = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
                     for m in mailbox.Maildir(str(box), create=False)]  # fmt: skip
            if len(found) >= count:
                return [m for m in found if isinstance(m, EmailMessage)]
        time.sleep(0.25)
    raise AssertionError(f"{count} emails did not arrive in {limit_s} s")


def texts(out: Path, count: int, limit_s: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if out.exists() and len(lines := out.read_text(encoding="utf-8").splitlines()) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.25)
    raise AssertionError(f"{count} SMS did not arrive in {limit_s} s")


def chips(page: Page, field: str) -> list[str]:
    values: list[str] = page.locator(f"#{field}-chips input[type=hidden]").evaluate_all("(l) => l.map(i => i.value)")
    return values


@pytest.mark.e2e
def test_sign_in_through_the_portal_plan_and_the_invitations_arrive(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    paris = ZoneInfo("Europe/Paris")
    day = (datetime.now(paris) + timedelta(days=2)).strftime("%Y-%m-%d")
    with portal(tmp_path, base) as provider, smtp_server(tmp_path) as (smtp_port, box), \
            gateway(tmp_path) as (sms_port, sms_out):  # fmt: skip
        env = {**provider.settings(), "PASSERELLE_EMAIL__SMTP": f"127.0.0.1:{smtp_port}",
               "PASSERELLE_EMAIL__SECURITY": "none", "PASSERELLE_SMS__URL": GATEWAY_URL.format(port=sms_port),
               "PASSERELLE_SMS__USERNAME": "clinic", "PASSERELLE_SMS__PASSWORD": GATEWAY_PASSWORD}  # fmt: skip
        with serving(tmp_path, port=port, **env) as site, sync_playwright() as p:
            subprocess.run([require("passerelle"), "user", "create", "--username", "inf.durand", "--name",
                            "Sophie Durand", "--email", "sophie.durand@example.org", "--language", "en",
                            "--timezone", "America/Martinique"], env=site.env, cwd=site.folder, check=True,
                           capture_output=True, timeout=30)  # fmt: skip
            browser = launch(p, ["--no-first-run"])
            try:
                page = browser.new_page(locale="fr-FR")
                page.goto(f"{base}/")
                expect(page).to_have_url(f"{base}/login?next=/")
                page.click("#portal")
                # the provider's own pages: its login form, then its consent
                page.fill("input[name=login]", "dr.bernard")
                page.fill("input[name=password]", "anything")
                page.click("button[type=submit]")
                page.click("button[type=submit]")
                expect(page).to_have_url(f"{base}/")
                expect(page.locator("#who")).to_have_text("Dr Luc Bernard")
                expect(page.locator("#room-code")).to_contain_text("#")

                page.click("#plan")
                expect(page.locator("#step-1")).to_be_visible()
                expect(page.locator("#step-2")).to_be_hidden()
                page.fill("#user", "inf")
                expect(page.locator('#user-suggestions option[value="inf.durand"]')).to_have_count(1)
                page.fill("#user", "inf.durand")
                page.click('button.add[data-for="user"]')
                page.fill("#email", "anne.petit@example.org")
                page.press("#email", "Enter")
                page.fill("#email", "pas-une-adresse")
                page.press("#email", "Enter")
                page.fill("#phone", "06 11 22 33 44")
                page.click('button.add[data-for="phone"]')
                assert chips(page, "user") == ["inf.durand"]
                assert chips(page, "email") == ["anne.petit@example.org", "pas-une-adresse"]
                page.fill("#name", "Réunion de concertation")
                page.click("details.advanced summary")
                page.check("input[name=entry][value=chosen]")
                page.fill("#entry_code", "482915")
                page.select_option("#lobby", "always")
                page.click("#next")
                expect(page.locator("#step-2")).to_be_visible()
                page.fill("#day", "2020-01-02")  # passed
                page.fill("#at", "14:30")
                page.select_option("#duration", "45")
                page.select_option("#timezone", "Europe/Paris")
                page.click("#next")
                page.fill("#message", "Merci d'être à l'heure.")
                page.click("#submit")

                # refused: the first step with the address problem, every value still there
                expect(page.locator("#errors")).to_contain_text("« pas-une-adresse » n'est pas une adresse e-mail")
                expect(page.locator("#errors")).to_contain_text("Cette date et cette heure sont passées.")
                expect(page.locator("#step-1")).to_be_visible()
                assert chips(page, "user") == ["inf.durand"]
                assert chips(page, "email") == ["anne.petit@example.org", "pas-une-adresse"]
                assert chips(page, "phone") == ["06 11 22 33 44"]
                expect(page.locator("#name")).to_have_value("Réunion de concertation")
                expect(page.locator("#entry_code")).to_have_value("482915")
                expect(page.locator("#lobby")).to_have_value("always")
                expect(page.locator("#day")).to_have_value("2020-01-02")
                expect(page.locator("#duration")).to_have_value("45")
                expect(page.locator("#message")).to_have_value("Merci d'être à l'heure.")
                page.click('#email-chips li:has-text("pas-une-adresse") button.remove')
                page.click("#next")
                page.fill("#day", day)
                page.click("#next")
                page.click("#submit")

                expect(page.locator("#notice")).to_contain_text("La conférence est planifiée.")
                expect(page.locator("h1")).to_have_text("Réunion de concertation")
                expect(page.locator("#entry-code")).to_contain_text("482915")
                code = "".join(c for c in page.locator("#code").inner_text() if c.isdigit())
                expect(page.locator(".delivery")).to_have_count(3)

                mails = {str(m["To"]): m for m in arrived(box, 2)}
                sms = texts(sms_out, 1)
                # The page follows the deliveries by itself: no reload.
                expect(page.locator(".delivery-sent")).to_have_count(3, timeout=15_000)
                expect(page.locator("#send-pending")).to_be_hidden()
                anne = mails["anne.petit@example.org"]
                sophie = mails["Sophie Durand <sophie.durand@example.org>"]
                assert anne["Subject"] == "Invitation : Réunion de concertation"
                assert sophie["Subject"] == "Invitation: Réunion de concertation"
                body = anne.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                assert body.startswith("Bonjour,\n")
                assert "Merci d'être à l'heure." in body
                assert f"{code[:3]} {code[3:6]} {code[6:]} #" in body
                assert "482915 #" in body
                link = next(line for line in body.splitlines() if line.startswith(f"{base}/i/"))
                part = next(x for x in anne.walk() if x.get_content_type() == "text/calendar")
                raw = part.get_payload(decode=True)
                assert isinstance(raw, bytes)
                calendar = icalendar.Calendar.from_ical(raw)
                event = next(iter(calendar.walk("VEVENT")))
                assert calendar["METHOD"] == "REQUEST"
                assert event.decoded("DTSTART").astimezone(paris).strftime("%Y-%m-%d %H:%M") == f"{day} 14:30"
                assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=45)
                assert link in str(event["URL"])
                (message,) = sms
                assert message["to"] == "33611223344"
                assert code in message["text"]
                assert "482915" in message["text"]
                assert f"{base}/i/" in message["text"]

                page.reload()
                expect(page.locator(".delivery-sent")).to_have_count(3)

                # the invitation's link: the join page, the phone details for that invitee
                page.goto(link)
                expect(page.locator("h1")).to_have_text("Réunion de concertation")
                expect(page.locator("#dial-in")).to_contain_text("482915")
                expect(page.locator("#entry_code")).to_have_count(0)
                assert path_of(link).startswith("/i/")

                page.goto(f"{base}/")
                page.click("#logout")  # out of the site, and out of the portal: its page asks to confirm
                page.click("button[name=logout][value=yes]")
                expect(page).to_have_url(f"{base}/login")
                page.click("#portal")
                expect(page.locator("input[name=login]")).to_be_visible()  # nobody is signed in at the portal
            finally:
                browser.close()
