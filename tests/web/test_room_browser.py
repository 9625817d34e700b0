"""The room as people use it, in Debian's Chromium through a real `passerelle serve`, with a baresip phone: the
host, a guest and a late joiner chat (to everyone and privately; HTML and scripts inert, links safe), the phone
raises its hand with *9, the host mutes the phone, lowers its hand and takes the guest out; the host calls a phone
into the room (no answer, then answered), locks the room against a page and a caller, and switches microphone,
noise suppression and speaker during the call; the toolbar and the side bar at desktop and phone size, in both
languages, with nothing scrolling sideways."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from prometheus_client.parser import text_string_to_metric_families

from tests.bridge.phones import Phone
from tests.bridge.stack import free_port as free_udp_port
from tests.mixer.signals import tone
from tests.tools import free_tcp_port, require
from tests.web.site import Site, join_room, serving, talking_phone, tone_wav, webrtc_args
from tests.web.test_room_audio import LISTEN

SECRET = "room-browser-test-key"
PAYLOAD = '<img src=x onerror="window.pwned=1"> voir https://example.org/notice?x=1, pas javascript:alert(1)'


def open_panel(page: Page, name: str) -> None:
    tab = page.locator(f"#tab-{name}")
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
    expect(page.locator(f"#panel-{name}")).to_be_visible()


def settle(page: Page, expression: str, value: object, limit_s: float = 10.0) -> None:
    """Until ``expression`` is ``value`` in the page (wait_for_function's eval is refused by the room's CSP)."""
    deadline = time.monotonic() + limit_s
    while page.evaluate(expression) != value:
        assert time.monotonic() < deadline, f"{expression} is {page.evaluate(expression)!r}, not {value!r}"
        time.sleep(0.1)


def send_chat(page: Page, text: str, to: str | None = None) -> None:
    """To ``to`` (privately), else to everyone (the recipient chosen stays chosen, as in a private conversation)."""
    open_panel(page, "chat")
    page.select_option("#chat-to", label=to or ("Everyone" if page.evaluate("document.documentElement.lang") == "en"
                                                 else "Tout le monde"))  # fmt: skip
    page.fill("#chat-text", text)
    page.press("#chat-text", "Enter")


@contextmanager
def room_service(tmp_path: Path, mic: Path, **extra: str) -> Iterator[tuple[Site, dict[str, Any], Browser]]:
    """A real `passerelle serve` (WebRTC on loopback, host links signed), an open conference of it (no lobby) and
    Chromium with a fake microphone playing ``mic``."""
    with (
        serving(tmp_path, None, PASSERELLE_WEBRTC__HOST_ADDRESSES="127.0.0.1", PASSERELLE_SECURITY__SECRET_KEY=SECRET,
                **extra) as site,
        sync_playwright() as p,
    ):  # fmt: skip
        conference = site.conference("--lobby", "off")
        browser = p.chromium.launch(executable_path=require("chromium"), args=webrtc_args(mic))
        try:
            yield site, conference, browser
        finally:
            browser.close()


@pytest.mark.e2e
def test_chat_hands_and_the_hosts_controls_with_a_phone_in_the_room(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60)
    phone = talking_phone(tmp_path / "phone", 34800)
    try:
        with room_service(tmp_path, mic) as (site, conference, browser):
            host = browser.new_page(locale="en-GB")
            join_room(host, site, conference["host_url"], "Dr Martin")
            guest = browser.new_page(locale="en-GB")
            join_room(guest, site, conference["join_url"], "Anne <b>Petit</b>")
            phone.command("dial", f"sip:+33491000000@{site.sip}")
            time.sleep(1.5)
            phone.command("sndcode", conference["code"] + "#")
            people = host.locator("#participants li")
            expect(people).to_have_count(3, timeout=15_000)
            expect(host.locator("#people-count")).to_have_text("3")
            expect(host.locator("#by-phone-count")).to_contain_text("1 by phone")
            # A name is text, never markup.
            expect(people.filter(has_text="Anne <b>Petit</b>")).to_have_count(1)
            assert host.locator("#participants b").count() == 0

            # Chat to everyone: the message is text, its link safe, its script inert.
            send_chat(guest, PAYLOAD)
            open_panel(host, "chat")
            said = host.locator("#chat li", has_text="voir")
            expect(said).to_have_count(1, timeout=5_000)
            expect(said.locator(".chat-text")).to_have_text(PAYLOAD)
            assert said.locator("img").count() == 0
            link = said.locator("a")
            expect(link).to_have_count(1)
            assert link.get_attribute("href") == "https://example.org/notice?x=1"
            assert link.get_attribute("rel") == "noopener noreferrer"
            assert host.evaluate("window.pwned") is None
            # A private message: the guest gets it, marked private.
            send_chat(host, "Votre ordonnance est prête", to="Anne <b>Petit</b>")
            private = guest.locator("#chat li.private", has_text="ordonnance")
            expect(private).to_have_count(1, timeout=5_000)
            # The unread badge, on a page whose chat is closed.
            open_panel(guest, "people")
            send_chat(host, "Tout le monde m'entend ?")
            expect(guest.locator("#unread")).to_have_text("1", timeout=5_000)
            open_panel(guest, "chat")
            expect(guest.locator("#unread")).to_be_hidden()
            # A late joiner gets the messages to everyone, not the private one.
            late = browser.new_page(locale="en-GB")
            join_room(late, site, conference["join_url"], "Claire")
            open_panel(late, "chat")
            expect(late.locator("#chat li")).to_have_count(2, timeout=5_000)
            expect(late.locator("#chat")).not_to_contain_text("ordonnance")

            # *9 from the phone: its hand is up in everyone's list.
            phone.command("sndcode", "*9")
            on_phone = people.filter(has_text="by phone")
            expect(on_phone).to_have_attribute("data-hand", "yes", timeout=5_000)
            expect(guest.locator("#participants li", has_text="by phone")).to_contain_text("hand raised")
            # The host mutes the phone and lowers its hand.
            open_panel(host, "people")
            before = guest.evaluate(LISTEN)["phone"]
            on_phone.locator('[data-action="mute-other"]').click()
            expect(on_phone).to_have_attribute("data-muted", "yes", timeout=5_000)
            time.sleep(0.5)  # what was in the jitter buffer
            after = guest.evaluate(LISTEN)["phone"]
            assert before > -60, f"the guest did not hear the phone before: {before:.0f} dB"
            assert after < before - 30, f"the muted phone is still heard: {before:.0f} → {after:.0f} dB"
            on_phone.locator('[data-action="lower-hand"]').click()
            expect(on_phone).to_have_attribute("data-hand", "no", timeout=5_000)
            # A raised hand from the web, seen by the host, lowered from the toolbar.
            guest.click("#hand")
            expect(guest.locator("#hand")).to_have_attribute("aria-pressed", "true")
            expect(people.filter(has_text="Anne")).to_have_attribute("data-hand", "yes", timeout=5_000)
            guest.click("#hand")
            expect(people.filter(has_text="Anne")).to_have_attribute("data-hand", "no", timeout=5_000)
            # The host takes the guest out: told, and the room has two left.
            host.once("dialog", lambda dialog: dialog.accept())
            people.filter(has_text="Anne").locator('[data-action="take-out"]').click()
            expect(guest.locator("body")).to_have_attribute("data-ended", "taken-out", timeout=5_000)
            expect(guest.locator("#connection")).to_contain_text("took you out")
            expect(people).to_have_count(3, timeout=5_000)  # the host, the phone, the late joiner
            phone.command("hangup")
    finally:
        phone.stop()


@pytest.mark.e2e
def test_the_room_at_desktop_and_phone_size_in_both_languages(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60)
    with room_service(tmp_path, mic) as (site, conference, browser):
        for locale, words in (("fr-FR", ("Quitter", "Discussions", "Lever la main")),
                              ("en-GB", ("Leave", "Discussions", "Raise hand"))):  # fmt: skip
            for width, height in ((1366, 768), (390, 844)):
                phone_size = width < 500
                page = browser.new_page(viewport={"width": width, "height": height}, locale=locale,
                                        is_mobile=phone_size, has_touch=phone_size)  # fmt: skip
                join_room(page, site, conference["host_url"], "Dr Martin")
                expect(page.locator("#leave")).to_have_text(words[0])
                expect(page.locator("#tab-chat")).to_contain_text(words[1])
                expect(page.locator("#hand")).to_have_text(words[2])
                name = f"room-{locale[:2]}-{width}"
                page.screenshot(path=str(tmp_path / f"{name}.png"))
                assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} scrolls sideways"
                # The toolbar's controls in the first screen, the leave button red.
                for selector in ("#mute", "#hand", "#leave", "#tab-people", "#tab-chat"):
                    box = page.locator(selector).bounding_box()
                    assert box is not None, selector
                    assert box["x"] >= 0
                    assert box["x"] + box["width"] <= width, f"{selector} is cut off ({name})"
                    assert box["y"] + box["height"] <= height, f"{selector} is below the first screen ({name})"
                leave = page.eval_on_selector("#leave", "e => getComputedStyle(e).backgroundColor")
                assert leave == "rgb(165, 14, 14)", leave
                # On a phone a panel is a sheet: closed at first, opened and closed by its tab (and Escape).
                if phone_size:
                    expect(page.locator("#panel-people")).to_be_hidden()
                    page.click("#tab-identity")
                    expect(page.locator("#panel-identity")).to_be_visible()
                    expect(page.locator("#panel-identity #dial-in")).to_be_visible()
                    page.screenshot(path=str(tmp_path / f"{name}-identity.png"))
                    page.keyboard.press("Escape")
                    expect(page.locator("#panel-identity")).to_be_hidden()
                else:
                    expect(page.locator("#panel-people")).to_be_visible()
                # The keyboard reaches the tabs, and the arrows move between them.
                page.focus("#tab-identity")
                page.keyboard.press("ArrowDown")
                assert page.evaluate("document.activeElement.id") == "tab-people"
                open_panel(page, "settings")
                # The network panel reads the call's statistics (loopback: a good connection).
                expect(page.locator("#net")).to_have_attribute("data-quality", "good", timeout=8_000)
                expect(page.locator("#stat-rtt")).to_contain_text("ms")
                page.screenshot(path=str(tmp_path / f"{name}-settings.png"))
                expect(page.locator("#mic-select option")).not_to_have_count(0)
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.close()


@pytest.mark.e2e
def test_the_host_calls_a_phone_locks_the_room_and_switches_devices_without_reconnecting(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60)
    callee_port = free_udp_port()
    callee = Phone(
        tmp_path / "callee",
        callee_port,
        free_udp_port(),
        35000,
        tone(1300, 8000 * 60, 8000, rate=8000),
        keep_sip_port=True,
    )  # fmt: skip  (answers by hand: first it lets it ring)
    caller = talking_phone(tmp_path / "caller", 35200)
    try:
        with room_service(
            tmp_path, mic, PASSERELLE_TRUNK__DOMAIN=f"127.0.0.1:{callee_port}", PASSERELLE_TRUNK__ANSWER_TIMEOUT_S="5"
        ) as (site, conference, browser):
            host = browser.new_page(locale="en-GB")
            join_room(host, site, conference["host_url"], "Dr Martin")
            people = host.locator("#participants li")
            expect(people).to_have_count(1, timeout=10_000)
            me = people.first.get_attribute("data-id")

            # Devices switched during the call: the sender's track is replaced, the call is not renegotiated.
            open_panel(host, "settings")
            expect(host.locator("#mic-select option")).to_have_count(3)  # Chromium's fake microphones
            host.select_option("#mic-select", label="Fake Audio Input 1")
            settle(host, "window.passerelleTrackSwitched", 1)
            assert host.evaluate("window.passerelleSenders()") == ["Fake Audio Input 1"]
            host.uncheck("#noise")
            settle(host, "window.passerelleTrackSwitched", 2)
            assert host.evaluate("window.passerelleSenders()") == ["Fake Audio Input 1"]
            host.select_option("#speaker-select", label="Fake Audio Output 1")
            speaker = host.eval_on_selector("#speaker-select", "s => s.value")
            settle(host, "document.getElementById('remote').sinkId", speaker)
            expect(host.locator("body")).to_have_attribute("data-audio", "connected")
            assert people.first.get_attribute("data-id") == me, "the page reconnected to switch a device"
            assert host.evaluate("window.passerelleOffers") == 1, "a device switch renegotiated the call"
            # The pre-call check, again: the new microphone's level moves, a test sound plays on the speaker.
            host.click("#mic-test")
            expect(host.locator("body")).to_have_attribute(
                "data-mic-level", re.compile(r"^(0\.[3-9]\d|1\.00)$"), timeout=5_000
            )  # fmt: skip  (the 1 kHz tone)
            host.click("#speaker-test")
            expect(host.locator("body")).to_have_attribute("data-speaker", "played", timeout=5_000)

            # Call a phone: it rings, nobody answers; then it answers and the callee is in the room.
            open_panel(host, "people")
            host.fill("#call-number", "06 12 34 56 78")
            host.click("#call-send")
            calling = host.locator("#calls li")
            expect(calling).to_have_attribute("data-state", "ringing", timeout=5_000)
            expect(calling).to_contain_text("+33 6 •• •• •• 78 · ringing")
            expect(host.locator('#tiles [data-kind="call"]')).to_have_count(1)
            host.screenshot(path=str(tmp_path / "room-calling.png"))
            expect(calling).to_have_attribute("data-state", "no-answer", timeout=15_000)
            expect(calling).to_contain_text("no answer")
            callee.command("answermode", "auto")
            host.fill("#call-number", "+33 6 12 34 56 78")
            host.click("#call-send")
            expect(people).to_have_count(2, timeout=20_000)
            expect(people.filter(has_text="+33 6 •• •• •• 78")).to_contain_text("by phone")
            expect(host.locator("#calls li[data-state=joining], #calls li[data-state=ringing]")).to_have_count(0)
            host.fill("#call-number", "08 99 12 34 56")  # premium rate: refused before anything is dialled
            host.click("#call-send")
            expect(host.locator("#call-error")).to_contain_text("premium-rate")

            # Locked: a new page and a caller with the right code are turned away; the callee stays.
            host.check("#lock")
            expect(host.locator("#locked-line")).to_be_visible()
            guest = browser.new_page(locale="en-GB")
            guest.goto(site.base + "/" + conference["join_url"].split("/", 3)[3])
            guest.fill("#name", "Anne")
            guest.click("#join-button")
            expect(guest.locator("body")).to_have_attribute("data-ended", "locked", timeout=15_000)
            expect(guest.locator("#connection")).to_contain_text("locked the room")
            host.screenshot(path=str(tmp_path / "room-locked.png"))
            guest.screenshot(path=str(tmp_path / "room-locked-out.png"))
            caller.command("dial", f"sip:+33491000000@{site.sip}")
            time.sleep(1.5)
            caller.command("sndcode", conference["code"] + "#")
            deadline = time.monotonic() + 20
            while caller.in_call() and time.monotonic() < deadline:
                time.sleep(0.5)
            assert not caller.in_call(), "the caller was not hung up"
            expect(people).to_have_count(2)
            assert "is locked; not let in" in (tmp_path / "serve.log").read_text()
            # Unlocked: the page comes in.
            host.uncheck("#lock")
            expect(host.locator("#locked-line")).to_be_hidden()
            join_room(guest, site, conference["join_url"], "Anne")
            expect(people).to_have_count(3, timeout=10_000)
            callee.command("hangup")
    finally:
        callee.stop()
        caller.stop()


@pytest.mark.e2e
def test_a_phone_on_a_lossy_line_is_shown_so_in_the_list_and_in_the_stats(tmp_path: Path) -> None:
    """A caller (SIPp) whose network loses one packet in five: within a report or two the room's list says so
    next to the phone ("mauvaise ligne" / "poor line"), GET /stats gives the figures and /metrics the count."""
    from bench.rtp_pcap import write_call_pcap
    from bench.sip import CALLER
    from passerelle import control

    sipp = require("sipp")
    mic = tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60)
    exporter = f"127.0.0.1:{free_tcp_port()}"
    with room_service(tmp_path, mic, PASSERELLE_CONTROL__METRICS=exporter) as (site, conference, browser):
        pages = []
        for locale, width, height in (("fr-FR", 1366, 768), ("en-GB", 390, 844)):
            phone_size = width < 500
            page = browser.new_page(viewport={"width": width, "height": height}, locale=locale,
                                    is_mobile=phone_size, has_touch=phone_size)  # fmt: skip
            join_room(page, site, conference["host_url"], "Dr Martin")
            pages.append((page, locale, width))
        pcap = tmp_path / "lossy.pcap"
        voice = tone(600.0, 8000 * 40, 6000, rate=8000)
        seconds = write_call_pcap(pcap, 1.5, conference["code"] + "#", voice, drop_every=5)
        caller = tmp_path / "caller.xml"
        caller.write_text(
            CALLER.read_text().replace("PCAP_PATH", str(pcap)).replace("TALK_MS", str(int(seconds * 1000)))
        )
        host, port = site.sip.rsplit(":", 1)
        sipp_process = subprocess.Popen(
            [sipp, f"{host}:{port}", "-sf", str(caller), "-m", "1", "-l", "1", "-i", "127.0.0.1",
             "-p", str(free_udp_port()), "-mi", "127.0.0.1", "-mp", str(free_udp_port() // 2 * 2), "-nostdin",
             "-timeout", "90s", "-trace_err"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for page, locale, width in pages:
                phone = page.locator("#participants li[data-kind=sip]")
                if width < 500:
                    page.click("#tab-people")
                expect(phone).to_have_attribute("data-line", "poor", timeout=25_000)
                expect(phone).to_contain_text("mauvaise ligne" if locale == "fr-FR" else "poor line")
                page.screenshot(path=str(tmp_path / f"line-{locale[:2]}-{width}.png"))
                assert page.evaluate("document.documentElement.scrollWidth") <= width
            # The first report's interval began with the code, not lost; the next ones are all one in five.
            deadline = time.monotonic() + 15
            with ThreadPoolExecutor(1) as thread:  # out of Playwright's own event loop
                while True:
                    stats = thread.submit(control.call, Path(site.env["PASSERELLE_CONTROL__SOCKET"]), "GET", "/stats")
                    lines = stats.result()["lines"]
                    if time.monotonic() > deadline or (lines and (lines[0]["loss_in"] or 0) >= 0.18):
                        break
                    time.sleep(0.5)
            assert len(lines) == 1
            line = lines[0]
            assert line["in"] == "room"
            assert line["line"] == "poor"
            assert 0.18 <= line["loss_in"] <= 0.22, line  # one in five
            assert line["lost"] > 0
            assert line["codec"] == "PCMU"
            assert line["mos"] is not None
            assert line["mos"] < 3.0
            # The same, for Prometheus: no name, number or code in it.
            with urllib.request.urlopen(f"http://{exporter}/metrics", timeout=10) as response:
                text = response.read().decode()
            got = {(m.name, tuple(sorted(m.labels.items()))): m.value
                   for family in text_string_to_metric_families(text) for m in family.samples}  # fmt: skip
            assert got[("passerelle_phone_lines", (("line", "poor"),))] == 1
            assert got[("passerelle_legs", (("kind", "sip"),))] == 1
            assert got[("passerelle_legs", (("kind", "webrtc"),))] == 2
            assert got[("passerelle_legs_in", (("place", "room"),))] == 3
            assert 0.18 <= got[("passerelle_phone_loss_ratio", (("of", "max"),))] <= 0.22
            assert got[("passerelle_phone_mos", (("of", "min"),))] < 3.0  # one packet in five lost: "poor"
            assert got[("passerelle_media_ticks_total", ())] > 500
            assert got[("passerelle_media_tick_seconds_count", ())] > 500
            assert ("passerelle_janus_up", ()) in got
            assert got[("passerelle_outbox_messages", (("state", "pending"),))] == 0
            for personal in ("Martin", conference["code"], "+33"):
                assert personal not in text, personal
        finally:
            sipp_process.terminate()
            sipp_process.wait(timeout=10)
