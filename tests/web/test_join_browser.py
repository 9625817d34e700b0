"""The join page in real headless Chromium (Debian's, driven by Playwright) against a real `passerelle serve`:
the pre-call check works with a fake microphone file, both languages render, a phone-sized screen keeps the key
controls in view, a refused microphone gets an explanation, and the entry code leads to the room."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.tools import require
from tests.web.site import chromium_args, serving, tone_wav, webrtc_args


def launch(playwright: object, args: list[str]) -> Browser:
    browser: Browser = playwright.chromium.launch(executable_path=require("chromium"), args=args)  # type: ignore[attr-defined]
    return browser


def until(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Poll from the test (the page's Content-Security-Policy forbids the evaluated predicates of wait_for_function)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


@pytest.mark.e2e
def test_pre_call_check_languages_and_joining(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav")
    with serving(tmp_path) as site, sync_playwright() as p:
        conference = site.conference("--entry-code", "4821")
        browser = launch(p, chromium_args(mic))
        try:
            page = browser.new_page(locale="fr-FR")
            page.goto(site.base + path_of(conference["join_url"]))
            expect(page.locator("html")).to_have_attribute("lang", "fr")
            expect(page.locator("#dial-in")).to_contain_text("Par téléphone")
            expect(page.locator("#dial-in")).to_contain_text(conference["code"][:3])
            # The fake microphone plays a tone: the meter moves and says the microphone works.
            expect(page.locator("body")).to_have_attribute("data-mic-level", re.compile(r"^(0\.[3-9]\d|1\.00)$"),
                                                            timeout=10_000)  # fmt: skip
            expect(page.locator("#mic-status")).to_contain_text("Le micro fonctionne")
            expect(page.locator("body")).to_have_attribute("data-network", re.compile(".+"), timeout=15_000)
            expect(page.locator("#network-status")).to_contain_text("Bonne connexion")
            page.click("#speaker-test")
            assert page.evaluate("document.body.dataset.speaker") == "played"
            page.check('input[value="video"]')
            expect(page.locator("#camera-preview")).to_be_visible()
            until(lambda: page.evaluate("() => document.getElementById('camera-preview').videoWidth") > 0)
            # English on request.
            page.click("a[lang=en]")
            expect(page.locator("html")).to_have_attribute("lang", "en")
            expect(page.locator("#dial-in")).to_contain_text("By phone")
            # Wrong entry code, then the right one: the room.
            page.fill("#name", "Dr Martin")
            page.fill("#entry_code", "1234")
            page.click("#join-button")
            expect(page.locator("#error")).to_contain_text("Wrong entry code")
            page.fill("#entry_code", "4821")
            page.click("#join-button")
            page.wait_for_url("**/room/**")
            expect(page.locator("main")).to_contain_text("You are Dr Martin.")
        finally:
            browser.close()


@pytest.mark.e2e
def test_phone_sized_screen_keeps_the_key_controls_in_view(tmp_path: Path) -> None:
    """The longest first screen: an entry code to type and a conference that says when it opens, overnight (its
    longest wording) whatever the hour the test runs."""
    mic = tone_wav(tmp_path / "mic.wav")
    with serving(tmp_path) as site, sync_playwright() as p:
        paris = ZoneInfo("Europe/Paris")
        tomorrow = datetime.now(paris).date() + timedelta(days=1)
        starts = datetime.combine(tomorrow, dt_time(23, 30), paris)
        conference = site.conference("--entry-code", "482915", "--start", starts.isoformat(timespec="seconds"),
                                     "--end", (starts + timedelta(hours=1)).isoformat(timespec="seconds"))  # fmt: skip
        browser = launch(p, chromium_args(mic))
        try:
            page: Page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page.goto(site.base + path_of(conference["join_url"]))
            page.screenshot(path=str(tmp_path / "join-mobile.png"), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
            expect(page.locator("#opens")).to_be_visible()
            expect(page.locator("body")).to_have_attribute("data-network", re.compile(".+"), timeout=15_000)
            for selector in ("#dial-in", "#name", "#entry_code", "#speaker-test", "#join-button"):
                box = page.locator(selector).bounding_box()
                assert box is not None, selector
                assert box["x"] >= 0
                assert box["x"] + box["width"] <= 390, f"{selector} is cut off"
            join = page.locator("#join-button").bounding_box()
            assert join is not None
            assert join["y"] + join["height"] <= 844, "the join button is below the first screen"
            assert join["height"] >= 44, "the join button is smaller than a finger"
        finally:
            browser.close()


@pytest.mark.e2e
def test_refused_microphone_is_explained(tmp_path: Path) -> None:
    with serving(tmp_path) as site, sync_playwright() as p:
        conference = site.conference()
        browser = launch(p, chromium_args(None, allow_media=False))
        try:
            page = browser.new_page(locale="fr-FR")
            page.goto(site.base + path_of(conference["join_url"]))
            expect(page.locator("body")).to_have_attribute("data-mic", "refused", timeout=10_000)
            expect(page.locator("#mic-status")).to_contain_text("n'a pas autorisé le micro")
            expect(page.locator("#mic-status")).to_contain_text("par téléphone")
            expect(page.locator("#join-button")).to_be_enabled()
        finally:
            browser.close()


@pytest.mark.e2e
def test_room_page_in_french_on_a_phone_sized_screen(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav")
    args = webrtc_args(mic)
    with serving(tmp_path, PASSERELLE_WEBRTC__HOST_ADDRESSES="127.0.0.1") as site, sync_playwright() as p:
        conference = site.conference("--lobby", "off")
        browser = launch(p, args)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                    locale="fr-FR")  # fmt: skip
            page.goto(site.base + path_of(conference["join_url"]))
            page.fill("#name", "Dr Martin")
            page.click("#join-button")
            page.wait_for_url("**/room/**")
            expect(page.locator("body")).to_have_attribute("data-audio", "connected", timeout=20_000)
            expect(page.locator("#connection")).to_contain_text("Audio connecté")
            expect(page.locator("#mute")).to_have_text("Couper le micro")
            expect(page.locator("#participants li")).to_contain_text("Dr Martin (vous) · sur le web")
            page.screenshot(path=str(tmp_path / "room-mobile.png"), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the room scrolls sideways"
            page.click("#tab-identity")  # "join by phone instead" is one tap away, in its sheet
            for selector in ("#dial-in", "#mute", "#leave"):
                box = page.locator(selector).bounding_box()
                assert box is not None, selector
                assert box["x"] >= 0
                assert box["x"] + box["width"] <= 390, f"{selector} is cut off"
                assert box["y"] + box["height"] <= 844, f"{selector} is below the first screen"
        finally:
            browser.close()


@pytest.mark.e2e
def test_room_reconnects_by_itself_after_the_connection_drops(tmp_path: Path) -> None:
    """The service goes away for a moment (the strongest blip: every connection drops) and comes back: the page
    says it reconnects, then is in the room again without anyone touching it."""
    mic = tone_wav(tmp_path / "mic.wav")
    args = webrtc_args(mic)
    with serving(tmp_path, PASSERELLE_WEBRTC__HOST_ADDRESSES="127.0.0.1",
                 PASSERELLE_SECURITY__SECRET_KEY="k" * 64) as site, sync_playwright() as p:  # fmt: skip
        conference = site.conference("--lobby", "off")
        browser = launch(p, args)
        try:
            page = browser.new_page()
            page.goto(site.base + path_of(conference["join_url"]))
            page.fill("#name", "Dr Martin")
            page.click("#join-button")
            page.wait_for_url("**/room/**")
            expect(page.locator("body")).to_have_attribute("data-audio", "connected", timeout=20_000)
            site.stop()
            expect(page.locator("body")).to_have_attribute("data-audio", "lost", timeout=10_000)
            expect(page.locator("#connection")).to_contain_text("reconnecting")
            site.start()
            expect(page.locator("body")).to_have_attribute("data-audio", "connected", timeout=30_000)
            expect(page.locator("#participants li")).to_contain_text("Dr Martin (you)")
        finally:
            browser.close()


@pytest.mark.e2e
def test_no_camera_unless_chosen_and_the_check_comes_before_join(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav")
    with serving(tmp_path) as site, sync_playwright() as p:
        conference = site.conference()
        browser = launch(p, chromium_args(mic))
        try:
            page = browser.new_page(locale="fr-FR")
            page.goto(site.base + path_of(conference["join_url"]))
            expect(page.locator("body")).to_have_attribute("data-mic", "ok", timeout=10_000)
            expect(page.locator("#check-camera")).to_be_hidden()
            assert page.locator("#camera-preview").bounding_box() is None, "no camera box with the microphone only"
            # Keyboard order: the name, the choices, the check, and only then Join.
            page.focus("#name")
            order = []
            for _ in range(8):
                page.keyboard.press("Tab")
                order.append(page.evaluate("document.activeElement.id || document.activeElement.value"))
            assert "speaker-test" in order, order
            assert "join-button" in order, order
            assert order.index("speaker-test") < order.index("join-button"), order
            page.check('input[value="video"]')
            expect(page.locator("#camera-preview")).to_be_visible()
            page.check('input[value="audio"]')
            expect(page.locator("#check-camera")).to_be_hidden()
        finally:
            browser.close()


@pytest.mark.e2e
def test_the_page_says_when_it_opens_and_enters_by_itself(tmp_path: Path) -> None:
    """Opening in a few seconds: the page says when at once, counts down, and a patient who already clicked Join
    is in the room when it opens, without touching anything."""
    mic = tone_wav(tmp_path / "mic.wav")
    starts = datetime.now(UTC) + timedelta(minutes=10, seconds=12)  # the room opens 10 min before its start
    with serving(tmp_path, PASSERELLE_SCHEDULE__OPEN_BEFORE_MIN="10") as site, sync_playwright() as p:
        ends = starts + timedelta(minutes=30)
        conference = site.conference("--lobby", "off", "--start", starts.isoformat(timespec="seconds"),
                                     "--end", ends.isoformat(timespec="seconds"))  # fmt: skip
        browser = launch(p, webrtc_args(mic))
        try:
            page = browser.new_page(locale="fr-FR")
            page.goto(site.base + path_of(conference["join_url"]))
            expect(page.locator("#opens")).to_contain_text("Elle ouvre à")
            expect(page.locator("#when")).to_contain_text("(heure : France)")
            expect(page.locator("#countdown")).to_contain_text("Elle ouvre dans 1 min.")
            page.fill("#name", "Mme Durand")
            page.click("#join-button")
            expect(page.locator("body")).to_have_attribute("data-waiting", "yes")
            expect(page.locator("#join-button")).to_be_disabled()
            expect(page.locator("#join-button")).to_contain_text("vous entrerez dès l’ouverture")
            assert "/room/" not in page.url
            page.wait_for_url("**/room/**", timeout=30_000)
            expect(page.locator("main")).to_contain_text("Vous êtes Mme Durand.")
        finally:
            browser.close()


@pytest.mark.e2e
def test_without_a_microphone_one_can_listen(tmp_path: Path) -> None:
    """The microphone refused: the page offers to listen; a listener hears the room and nobody hears them."""
    with serving(tmp_path, PASSERELLE_WEBRTC__HOST_ADDRESSES="127.0.0.1") as site, sync_playwright() as p:
        conference = site.conference("--lobby", "off")
        args = [*chromium_args(None, allow_media=False), "--allow-loopback-in-peer-connection",
                "--disable-features=WebRtcHideLocalIpsWithMdns"]  # fmt: skip
        browser = launch(p, args)
        try:
            page = browser.new_page(locale="en-GB")
            page.goto(site.base + path_of(conference["join_url"]))
            expect(page.locator("body")).to_have_attribute("data-mic", "refused", timeout=10_000)
            expect(page.locator("#mic-status")).to_contain_text("Listen only")
            page.check('input[value="listen"]')
            expect(page.locator("body")).to_have_attribute("data-mic", "unused")
            page.fill("#name", "Mr Smith")
            page.click("#join-button")
            page.wait_for_url("**/room/**")
            expect(page.locator("body")).to_have_attribute("data-audio", "connected", timeout=20_000)
            expect(page.locator("#listening")).to_contain_text("listening only")
            expect(page.locator("#participants li")).to_contain_text("Mr Smith (you)")
        finally:
            browser.close()
