"""The host's lobby panel in Chromium: a baresip phone caller waits in the lobby of a conference, the host (joined
through the signed host link) sees the masked number and admits them; both are then in the room. A browser guest
then waits in the same lobby, hearing and seeing nobody, and the host refuses them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.tools import require
from tests.web.site import serving, talking_phone, tone_wav, webrtc_args


@pytest.mark.e2e
def test_host_admits_a_waiting_phone_caller_from_the_lobby_panel(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60)
    phone = talking_phone(tmp_path / "phone", 34800)
    args = webrtc_args(mic)
    try:
        with serving(tmp_path, PASSERELLE_WEBRTC__HOST_ADDRESSES="127.0.0.1",
                     PASSERELLE_SECURITY__SECRET_KEY="k" * 64) as site, sync_playwright() as p:  # fmt: skip
            conference = site.conference("--lobby", "always", "--entry-code", "4821")
            assert conference["host_url"], "no host link with a secret key set"
            browser = p.chromium.launch(executable_path=require("chromium"), args=args)
            try:
                page = browser.new_page()
                page.goto(site.base + "/" + conference["host_url"].split("/", 3)[3])
                expect(page.locator("#entry_code")).to_have_count(0)  # the host is not asked the entry code
                page.fill("#name", "Dr Martin")
                page.click("#join-button")
                page.wait_for_url("**/room/**")
                expect(page.locator("body")).to_have_attribute("data-audio", "connected", timeout=20_000)
                expect(page.locator("#lobby")).to_contain_text("Nobody is waiting.")
                phone.command("dial", f"sip:+33491000000@{site.sip}")
                time.sleep(1.5)
                phone.command("sndcode", conference["code"] + "#")
                time.sleep(1.0)
                phone.command("sndcode", "4821#")
                waiting = page.locator("#lobby li", has_text="+33 6 •• •• •• 78")
                expect(waiting).to_have_count(1, timeout=15_000)
                # The host is told even with the panel out of sight: a badge on its tab, the tab's title.
                expect(page.locator("#lobby-count")).to_have_text("1")
                expect(page).to_have_title(re.compile(r"^\(1\) 1 waiting to enter"))
                expect(page.locator("#participants li")).to_have_count(1)  # waiting is not in the room
                waiting.locator("button[data-action=admit]").click()
                expect(page.locator("#participants li")).to_have_count(2, timeout=10_000)
                expect(page.locator("#lobby")).to_contain_text("Nobody is waiting.")
                # A browser guest waits too; the host refuses them.
                guest = browser.new_page()
                guest.goto(site.base + "/" + conference["join_url"].split("/", 3)[3])
                guest.fill("#name", "Mme Durand")
                guest.fill("#entry_code", "4821")
                guest.click("#join-button")
                guest.wait_for_url("**/room/**")
                expect(guest.locator("body")).to_have_attribute("data-lobby", "waiting", timeout=20_000)
                expect(guest.locator("#connection")).to_contain_text("the host will let you in")
                expect(guest.locator("#participants li")).to_have_count(0)  # a waiting guest sees nobody
                web_waiting = page.locator("#lobby li", has_text="Mme Durand")
                expect(web_waiting).to_have_count(1, timeout=10_000)
                expect(page.locator("#participants li")).to_have_count(2)
                web_waiting.locator("button[data-action=deny]").click()
                expect(guest.locator("body")).to_have_attribute("data-lobby", "denied", timeout=10_000)
                expect(guest.locator("#connection")).to_contain_text("did not let you in")
                # Refused, the same link cannot queue again at once.
                guest.reload()
                expect(guest.locator("body")).to_have_attribute("data-ended", "denied", timeout=10_000)
                expect(guest.locator("#connection")).to_contain_text("did not let you in")
                expect(page.locator("#lobby")).to_contain_text("Nobody is waiting.")
                expect(page.locator("#participants li")).to_have_count(2)
                phone.command("hangup")
            finally:
                browser.close()
    finally:
        phone.stop()


@pytest.mark.e2e
def test_until_host_lobby_opens_for_phone_and_browser_when_the_host_arrives(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60)
    phone = talking_phone(tmp_path / "phone", 35000)
    args = webrtc_args(mic)
    try:
        with serving(tmp_path, PASSERELLE_WEBRTC__HOST_ADDRESSES="127.0.0.1",
                     PASSERELLE_SECURITY__SECRET_KEY="k" * 64) as site, sync_playwright() as p:  # fmt: skip
            conference = site.conference("--lobby", "until-host")
            browser = p.chromium.launch(executable_path=require("chromium"), args=args)
            try:
                guest = browser.new_page()
                guest.goto(site.base + "/" + conference["join_url"].split("/", 3)[3])
                guest.fill("#name", "Mme Durand")
                guest.click("#join-button")
                expect(guest.locator("body")).to_have_attribute("data-lobby", "waiting", timeout=20_000)
                phone.command("dial", f"sip:+33491000000@{site.sip}")
                time.sleep(1.5)
                phone.command("sndcode", conference["code"] + "#")
                time.sleep(2.0)
                expect(guest.locator("#participants li")).to_have_count(0)  # nobody is in: everyone waits
                host = browser.new_page()
                host.goto(site.base + "/" + conference["host_url"].split("/", 3)[3])
                host.fill("#name", "Dr Martin")
                host.click("#join-button")
                # The host is in: the waiting browser and the waiting phone come in without anyone clicking.
                expect(host.locator("#participants li")).to_have_count(3, timeout=20_000)
                expect(guest.locator("body")).to_have_attribute("data-lobby", "admitted", timeout=5_000)
                expect(host.locator("#participants li", has_text="+33 6 •• •• •• 78")).to_have_count(1)
                phone.command("hangup")
            finally:
                browser.close()
    finally:
        phone.stop()
