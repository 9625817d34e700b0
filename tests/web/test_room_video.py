"""Cameras and screen shares in Chromium (fake camera, fake screen) through a real `passerelle serve` and its Janus
child: each page shows the others' cameras and its own, moving (frames decoded rising, from the page's receiving
connection); a tile made large receives a larger layer and a small one a smaller; a hidden tab receives nothing
until it is back; a camera turned off leaves the name on its tile; a screen share reaches the others, one at a
time, with the pointers set on it where they were set, held still by its sharer and annotated (the picture
still for everyone, the annotations gone when it moves again); a guest in the lobby neither sees nor is seen;
Janus killed mid-call: the pictures come back within 10 s and a phone and a browser keep hearing each other."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from config import load_settings
from tests.mixer.signals import magnitude_db
from tests.tools import require
from tests.web.site import CANVAS_INK, Site, serving, talking_phone, tone_wav, webrtc_args
from tests.web.test_room_board_browser import drag
from tests.web.test_room_browser import SECRET, room_service
from web import tickets
from web.app import service_key

# What the page's receiving connection to Janus decodes, per (leg/source) it shows: frames so far, current width.
RECEIVED = """async () => {
  const v = window.passerelleVideo, out = {};
  if (!v.viewer) return out;
  (await v.viewer.getStats()).forEach((r) => {
    const owner = r.type === "inbound-rtp" && r.kind === "video" ? v.byMid[r.mid] : null;
    if (owner) out[`${owner.leg}/${owner.source}`] = { frames: r.framesDecoded || 0, width: r.frameWidth || 0 };
  });
  return out;
}"""
# Where on the screen share's video element a point (fractions of the shared picture) is, in page coordinates:
# the picture is shown whole (object-fit: contain), bars around it.
PICTURE_POINT = """([leg, fx, fy]) => {
  const video = document.querySelector(`#screens figure[data-leg="${leg}"] video`);
  const rect = video.getBoundingClientRect();
  const scale = Math.min(rect.width / video.videoWidth, rect.height / video.videoHeight);
  const w = video.videoWidth * scale, h = video.videoHeight * scale;
  return { x: rect.left + (rect.width - w) / 2 + fx * w, y: rect.top + (rect.height - h) / 2 + fy * h };
}"""


# How much the picture of a screen share's video changes between two looks, a second apart: the mean difference
# of its pixels (0 to 255), drawn small.
PICTURE_CHANGE = """async (leg) => {
  const video = document.querySelector(`#screens figure[data-leg="${leg}"] video`);
  const c = document.createElement("canvas"); c.width = 320; c.height = 180;
  const g = c.getContext("2d", { willReadFrequently: true });
  const look = () => { g.drawImage(video, 0, 0, 320, 180); return g.getImageData(0, 0, 320, 180).data; };
  const a = look(); await new Promise((r) => setTimeout(r, 1000)); const b = look();
  let sum = 0; for (let i = 0; i < a.length; i += 4) sum += Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]);
  return sum / (a.length / 2); }"""


@contextmanager
def video_service(tmp_path: Path) -> Iterator[tuple[Site, dict[str, Any], Browser]]:
    """The room tests' service and Chromium (tests/web/test_room_browser.py), with its Janus child."""
    require("janus")
    with room_service(tmp_path, tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=120)) as running:
        yield running


@contextmanager
def quiet_pages(site: Site, conference_id: str, count: int) -> Iterator[None]:
    """``count`` more participants in the room for the length of the block: room sockets with an audio offer
    and no candidates (as `passerelle bench room`'s pages), held open from a thread of their own."""
    from bench.roomclients import make_offer

    key = service_key(load_settings(environ=site.env))
    ready, stop = threading.Event(), threading.Event()

    async def hold() -> None:
        import aiohttp

        sdp = await make_offer()
        async with aiohttp.ClientSession() as session:
            sockets = []
            for n in range(count):
                ticket = tickets.issue(key, uuid.UUID(conference_id), f"Stagiaire {n + 1}", "listen", None)
                socket = await session.ws_connect(f"{site.base.replace('http', 'ws')}/ws/room/{ticket}")
                await socket.send_json({"type": "offer", "sdp": sdp})
                sockets.append(socket)
            ready.set()
            while not stop.is_set():
                for socket in sockets:  # read what comes, so the room never waits on them
                    with contextlib.suppress(TimeoutError):
                        await socket.receive(timeout=0.01)
                await asyncio.sleep(0.05)
            for socket in sockets:
                await socket.close()

    thread = threading.Thread(target=lambda: asyncio.run(hold()), daemon=True)
    thread.start()
    assert ready.wait(30), "the quiet participants did not come in"
    try:
        yield
    finally:
        stop.set()
        thread.join(15)


def enter(browser: Browser, site: Site, link: str, name: str, media: str = "video") -> tuple[Page, str]:
    """A page joins through its link as a person would, until its audio is connected: the page and its leg id."""
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(site.base + "/" + link.split("/", 3)[3])
    page.fill("#name", name)
    page.check(f"input[name=media][value={media}]")
    page.click("#join-button")
    page.wait_for_url("**/room/**")
    expect(page.locator("body")).to_have_attribute("data-audio", "connected", timeout=20_000)
    leg = page.evaluate("window.passerelleVideo.myId")
    assert leg, "the page has no leg id"
    return page, leg


def moving(page: Page, keys: set[str], limit_s: float = 20.0) -> dict[str, Any]:
    """Until every one of ``keys`` (leg/source) is decoded and its frame count rises over a second."""
    deadline = time.monotonic() + limit_s
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        before = page.evaluate(RECEIVED)
        time.sleep(1.0)
        seen = page.evaluate(RECEIVED)
        if all(k in seen and k in before and seen[k]["frames"] > before[k]["frames"] for k in keys):
            return seen
    raise AssertionError(f"not all of {keys} move on this page: {seen}")


def width_of(page: Page, key: str, until: Any, limit_s: float = 20.0) -> int:
    """The received width of ``key`` once ``until(width)`` holds."""
    deadline, width = time.monotonic() + limit_s, 0
    while time.monotonic() < deadline:
        width = page.evaluate(RECEIVED).get(key, {}).get("width", 0)
        if width and until(width):
            return int(width)
        time.sleep(0.5)
    raise AssertionError(f"{key}: received width {width} did not change as expected")


def tile(page: Page, leg: str) -> Any:
    return page.locator(f'#tiles .tile[data-id="{leg}"]')


@pytest.mark.e2e
def test_cameras_reach_the_others_with_the_layer_their_tile_needs_and_a_camera_off_leaves_the_name(
    tmp_path: Path,
) -> None:
    with video_service(tmp_path) as (site, conference, browser):
        martin, martin_leg = enter(browser, site, conference["join_url"], "Dr Martin")
        durand, durand_leg = enter(browser, site, conference["join_url"], "Dr Durand")
        petit, _ = enter(browser, site, conference["join_url"], "Mme Petit", media="audio")
        for page, others in ((martin, {durand_leg}), (durand, {martin_leg}), (petit, {martin_leg, durand_leg})):
            moving(page, {f"{leg}/camera" for leg in others})
            for leg in others:
                expect(tile(page, leg)).to_have_attribute("data-video", "yes", timeout=10_000)
        # One's own camera in one's own tile (as in a mirror), never received back from Janus.
        expect(tile(martin, martin_leg)).to_have_attribute("data-video", "yes")
        assert "mirror" in (tile(martin, martin_leg).locator("video").get_attribute("class") or "")
        assert f"{martin_leg}/camera" not in martin.evaluate(RECEIVED)
        expect(tile(petit, petit.evaluate("window.passerelleVideo.myId"))).to_have_attribute("data-video", "no")

        # Mme Petit pins Dr Martin: his tile is the large one, and a larger layer comes; unpinned, a smaller one.
        small = width_of(petit, f"{martin_leg}/camera", lambda w: True)
        petit.click(f'#participants li[data-id="{martin_leg}"] [data-action="pin"]')
        expect(tile(petit, martin_leg)).to_have_class(re.compile(r"\bmain\b"))
        large = width_of(petit, f"{martin_leg}/camera", lambda w: w > small)
        petit.click(f'#participants li[data-id="{martin_leg}"] [data-action="pin"]')
        again = width_of(petit, f"{martin_leg}/camera", lambda w: w < large)
        assert small < large, (small, large)
        assert again < large, (large, again)

        # Mme Petit's tab goes to the background: nothing comes any more (Janus stops sending); back, it comes again.
        petit.evaluate("""() => { Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
                                  document.dispatchEvent(new Event("visibilitychange")); }""")
        time.sleep(2.0)  # the pause asked and taken
        before = petit.evaluate(RECEIVED)
        time.sleep(2.0)
        after = petit.evaluate(RECEIVED)
        for leg in (martin_leg, durand_leg):
            key = f"{leg}/camera"
            assert after[key]["frames"] - before[key]["frames"] <= 1, f"a hidden tab still receives {key}"
        petit.evaluate("""() => { Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
                                  document.dispatchEvent(new Event("visibilitychange")); }""")
        moving(petit, {f"{martin_leg}/camera", f"{durand_leg}/camera"})

        # Dr Martin picks his camera again in the settings: the new track goes into the same sender, no new offer
        # for the audio, and his picture keeps coming to the others.
        offers = martin.evaluate("window.passerelleOffers")
        martin.click("#tab-settings")
        martin.select_option("#camera-select", index=0)
        deadline = time.monotonic() + 5
        while not martin.evaluate("window.passerelleTrackSwitched") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert martin.evaluate("window.passerelleTrackSwitched") == 1, "the camera was not switched"
        assert martin.evaluate("window.passerelleOffers") == offers, "the audio was negotiated again"
        moving(petit, {f"{martin_leg}/camera"})

        # Dr Durand turns his camera off: the others show his name where his picture was.
        durand.click("#camera")
        expect(durand.locator("#camera")).to_have_attribute("aria-pressed", "false")
        for page in (martin, petit):
            expect(tile(page, durand_leg)).to_have_attribute("data-video", "no", timeout=10_000)
            expect(tile(page, durand_leg).locator(".tile-name")).to_have_text("Dr Durand")
            expect(tile(page, durand_leg).locator(".avatar")).to_be_visible()
        durand.click("#camera")  # and on again
        moving(petit, {f"{durand_leg}/camera"})
        durand.close()  # his tab closes: his tile leaves the others' pages
        expect(tile(martin, durand_leg)).to_have_count(0, timeout=10_000)


@pytest.mark.e2e
def test_a_screen_share_reaches_the_others_with_the_pointers_set_on_it_and_the_host_may_stop_it(
    tmp_path: Path,
) -> None:
    with video_service(tmp_path) as (site, conference, browser):
        host, host_leg = enter(browser, site, conference["host_url"], "Dr Martin", media="audio")
        anne, anne_leg = enter(browser, site, conference["join_url"], "Anne", media="audio")
        anne.click("#share")  # Chromium's fake screen (1280 × 720) is chosen without a prompt
        expect(anne.locator("#share")).to_have_attribute("aria-pressed", "true", timeout=10_000)
        screen = host.locator(f'#screens figure[data-leg="{anne_leg}"]')
        expect(screen).to_be_visible(timeout=15_000)
        expect(screen.locator("figcaption")).to_contain_text("Anne shares their screen")
        moving(host, {f"{anne_leg}/screen"})
        expect(host.locator("#share")).to_be_disabled()  # one share at a time
        settings = anne.evaluate("window.passerelleVideo.screen.stream.getVideoTracks()[0].contentHint")
        assert settings == "detail"
        # Nothing of the share was refused on the way (its candidates to Janus included).
        expect(anne.locator("#connection")).to_have_text("Audio connected.")
        expect(host.locator("#connection")).to_have_text("Audio connected.")

        # The host points a quarter across, three quarters down Anne's picture: Anne sees his pointer there, named.
        screen.locator("[data-action=point]").click()
        expect(screen.locator("video")).to_have_js_property("readyState", 4, timeout=10_000)
        at = host.evaluate(PICTURE_POINT, [anne_leg, 0.25, 0.75])
        host.mouse.move(at["x"] - 30, at["y"] - 30)
        host.mouse.move(at["x"], at["y"], steps=3)
        pointer = anne.locator(f'#screens figure[data-leg="{anne_leg}"] .pointer[data-leg="{host_leg}"]')
        expect(pointer).to_have_count(1, timeout=5_000)
        expect(pointer.locator(".pointer-name")).to_have_text("Dr Martin")
        deadline = time.monotonic() + 3.0  # the first position of the move, then where it came to rest
        while True:
            x, y = float(pointer.get_attribute("data-x") or 0), float(pointer.get_attribute("data-y") or 0)
            if (abs(x - 0.25) < 0.02 and abs(y - 0.75) < 0.02) or time.monotonic() > deadline:
                break  # at rest on both axes (x may come to rest a step before y)
            time.sleep(0.1)
        assert abs(x - 0.25) < 0.02, x
        assert abs(y - 0.75) < 0.02, y
        # Drawn there on Anne's own view of her screen too (letterboxing taken off both ways).
        drawn = pointer.bounding_box()
        expected = anne.evaluate(PICTURE_POINT, [anne_leg, x, y])
        assert drawn is not None
        assert abs(drawn["x"] + drawn["width"] / 2 - expected["x"]) < 4, (drawn, expected)
        assert abs(drawn["y"] + drawn["height"] / 2 - expected["y"]) < 4, (drawn, expected)

        # Anne holds her share still: the host sees the still picture, annotates it, Anne sees the annotation over
        # her own view; when it moves again the annotations go.
        moving_before = host.evaluate(PICTURE_CHANGE, anne_leg)
        own = anne.locator(f'#screens figure[data-leg="{anne_leg}"]')
        own.locator("[data-action=hold]").click()
        expect(own.locator("[data-action=hold]")).to_have_attribute("aria-pressed", "true")
        expect(screen.locator("figcaption")).to_contain_text("held still for annotations", timeout=10_000)
        host.wait_for_timeout(1500)  # what was on its way before the still picture
        held = host.evaluate(PICTURE_CHANGE, anne_leg)
        assert held < moving_before / 4, (held, moving_before)
        screen.locator("[data-action=annotate]").click()
        expect(screen.locator("[data-action=annotate]")).to_have_attribute("aria-pressed", "true")
        drag(host, [(0.3, 0.3), (0.5, 0.4), (0.7, 0.3)], canvas=f'#screens figure[data-leg="{anne_leg}"] canvas.notes')
        notes = own.locator("canvas.notes")
        expect(notes).to_have_attribute("data-objects", "1", timeout=10_000)
        expect(notes).to_have_attribute("data-target", f"screen:{anne_leg}")
        assert anne.evaluate(CANVAS_INK, f'#screens figure[data-leg="{anne_leg}"] canvas.notes') > 200
        anne.screenshot(path=str(tmp_path / "screen-held-en-1366.png"))
        own.locator("[data-action=hold]").click()  # it moves again: the annotations go, everywhere
        expect(screen.locator("canvas.notes")).to_have_attribute("data-objects", "0", timeout=10_000)
        expect(screen.locator("[data-action=annotate]")).to_be_hidden()
        expect(notes).to_have_attribute("data-objects", "0")
        host.wait_for_timeout(1500)
        assert host.evaluate(PICTURE_CHANGE, anne_leg) > held, "the share did not move again"

        # The host stops Anne's share: she is told, and the share leaves the host's page.
        screen.locator("[data-action=stop-share]").click()
        expect(anne.locator("#share")).to_have_attribute("aria-pressed", "false", timeout=10_000)
        expect(anne.locator("#connection")).to_have_text("The host stopped your screen share.")
        expect(host.locator("#screens")).to_be_hidden(timeout=10_000)
        expect(host.locator("#share")).to_be_enabled()


@pytest.mark.e2e
def test_a_guest_in_the_lobby_neither_sees_nor_is_seen_until_admitted(tmp_path: Path) -> None:
    require("janus")
    mic = tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60)
    with serving(tmp_path, None, PASSERELLE_WEBRTC__HOST_ADDRESSES="127.0.0.1",
                 PASSERELLE_SECURITY__SECRET_KEY=SECRET) as site, sync_playwright() as p:  # fmt: skip
        conference = site.conference("--lobby", "always")
        browser = p.chromium.launch(executable_path=require("chromium"), args=webrtc_args(mic))
        try:
            host, host_leg = enter(browser, site, conference["host_url"], "Dr Martin")
            guest = browser.new_page(viewport={"width": 1366, "height": 768})
            guest.goto(site.base + "/" + conference["join_url"].split("/", 3)[3])
            guest.fill("#name", "Mme Durand")
            guest.check("input[name=media][value=video]")
            guest.click("#join-button")
            guest.wait_for_url("**/room/**")
            expect(guest.locator("body")).to_have_attribute("data-lobby", "waiting", timeout=20_000)
            waiting = host.locator("#lobby li", has_text="Mme Durand")
            expect(waiting).to_have_count(1, timeout=10_000)
            time.sleep(3.0)  # long enough for a camera to go up and be shown, were it allowed
            assert guest.evaluate("window.passerelleVideo.camera") is None, "a guest in the lobby published"
            assert guest.evaluate(RECEIVED) == {}, "a guest in the lobby receives a camera"
            assert host.locator("#tiles .tile[data-video=yes]").count() == 1  # the host's own, only
            waiting.locator("button[data-action=admit]").click()
            expect(guest.locator("body")).to_have_attribute("data-lobby", "admitted", timeout=10_000)
            guest_leg = guest.evaluate("window.passerelleVideo.myId")
            moving(guest, {f"{host_leg}/camera"})
            moving(host, {f"{guest_leg}/camera"})
        finally:
            browser.close()


@pytest.mark.e2e
def test_janus_killed_mid_call_the_pictures_come_back_within_10_s_and_the_sound_never_stops(tmp_path: Path) -> None:
    phone = talking_phone(tmp_path / "phone", 35600)
    try:
        with video_service(tmp_path) as (site, conference, browser):
            martin, martin_leg = enter(browser, site, conference["join_url"], "Dr Martin")
            anne, _ = enter(browser, site, conference["join_url"], "Anne")
            phone.command("dial", f"sip:+33491000000@{site.sip}")
            time.sleep(1.5)
            phone.command("sndcode", conference["code"] + "#")
            expect(martin.locator("#participants li")).to_have_count(3, timeout=15_000)
            moving(anne, {f"{martin_leg}/camera"})
            # Speaker view: with Anne muted (the browsers' microphones play a steady tone), the one the mixer hears
            # is the phone, and its tile is the large one.
            anne.click("#mute")
            martin.click("#layout")
            expect(martin.locator('#tiles .tile[data-kind="sip"]')).to_have_class(re.compile(r"\bmain\b"),
                                                                                 timeout=10_000)  # fmt: skip
            martin.evaluate("""() => { window.audioLost = 0; new MutationObserver(() => {
                if (document.body.dataset.audio !== "connected") window.audioLost += 1;
              }).observe(document.body, { attributes: true, attributeFilter: ["data-audio"] }); }""")
            found = re.search(r"Janus 1 is up \(pid (\d+)\)", (site.folder / "serve.log").read_text())
            assert found, "no Janus child in the service's log"
            os.kill(int(found.group(1)), signal.SIGKILL)
            killed = time.monotonic()
            time.sleep(0.5)
            back = moving(anne, {f"{martin_leg}/camera"}, limit_s=15.0)
            back_after = time.monotonic() - killed
            time.sleep(max(0.0, 9.0 - back_after))
            lost = martin.evaluate("window.audioLost")
            phone.command("hangup")
        after_kill = phone.heard()[-8000 * 8 :]  # the last 8 s of the call, all after the kill
    finally:
        phone.stop()
    assert back, "the camera did not come back"
    assert back_after < 10.0, f"the camera came back {back_after:.1f} s after Janus was killed"
    assert lost == 0, "the browser's audio connection dropped while Janus restarted"
    # The phone heard the browsers' tone in every second after the kill (the bridge's mix never stopped).
    seconds = np.array_split(after_kill, 8)
    levels = [magnitude_db(second, 1000, rate=8000) for second in seconds]
    assert min(levels) > -50, f"the phone's sound dropped after the kill: {levels}"


@pytest.mark.e2e
def test_a_training_of_twelve_is_paged_by_nine_and_a_page_shows_only_its_own_cameras(tmp_path: Path) -> None:
    with video_service(tmp_path) as (site, conference, browser):
        trainer, trainer_leg = enter(browser, site, conference["host_url"], "Dr Martin")
        page = browser.new_page(viewport={"width": 1100, "height": 800})  # narrower than 1200 px: 9 tiles a page
        page.goto(site.base + "/" + conference["join_url"].split("/", 3)[3])
        page.fill("#name", "Anne")
        page.check("input[name=media][value=audio]")
        page.click("#join-button")
        expect(page.locator("body")).to_have_attribute("data-audio", "connected", timeout=20_000)
        with quiet_pages(site, conference["id"], 10):  # 12 in the room
            expect(page.locator("#participants li")).to_have_count(12, timeout=15_000)
            shown = page.locator("#tiles .tile:not([hidden])")
            expect(shown).to_have_count(9)
            expect(page.locator("#page-of")).to_have_text("Page 1 of 2")
            expect(page.locator("#page-prev")).to_be_disabled()
            moving(page, {f"{trainer_leg}/camera"})  # the trainer is on the first page
            page.click("#page-next")
            expect(shown).to_have_count(3)
            expect(page.locator("#page-of")).to_have_text("Page 2 of 2")
            # The trainer's tile is on page 1 now hidden: his camera is no longer received.
            deadline = time.monotonic() + 10
            while f"{trainer_leg}/camera" in page.evaluate(RECEIVED) and time.monotonic() < deadline:
                time.sleep(0.3)
            assert f"{trainer_leg}/camera" not in page.evaluate(RECEIVED), "a camera off the page is still received"
            assert page.evaluate("document.documentElement.scrollWidth") <= 1100
            page.click("#page-prev")
            moving(page, {f"{trainer_leg}/camera"})
        trainer.close()
