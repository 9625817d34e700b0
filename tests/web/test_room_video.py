"""Cameras in a room: two browsers join with "camera and microphone" (Chromium's fake camera), a third with the
microphone only; each page shows the cameras of the others, moving, under their names, and never its own; the
microphone-only page sees both; when a camera's tab closes, its picture leaves the others' pages. A guest waiting
in the lobby neither sees the host's camera nor shows theirs until admitted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.tools import require
from tests.web.site import serving, tone_wav, webrtc_args

# Two looks at a video element 3 s apart: its size and whether frames kept coming (the fake camera's picture moves;
# 15 frames a second asked, a few are enough: three pages and the bridge's encoders share two loaded cores in CI).
PLAYING = """async (mid) => {
  const video = document.querySelector(`#videos video[data-mid="${mid}"]`);
  const before = video.getVideoPlaybackQuality().totalVideoFrames;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  return { width: video.videoWidth, frames: video.getVideoPlaybackQuality().totalVideoFrames - before };
}"""
# Keeps the page's peer connection where RECEIVED finds it (an init script: the page's own code is unchanged).
RECORD_PEER = """(() => {
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) { const pc = new Original(...args); window.__passerellePeer = pc;
                                                  return pc; };
  window.RTCPeerConnection.prototype = Original.prototype;
})();"""
# What the page's receiver saw of that stream, to tell a failure's cause (nothing arriving, losses waiting for a
# keyframe, frames decoded but not shown) from the test's output alone.
RECEIVED = """async (mid) => {
  const pc = window.__passerellePeer;
  if (!pc) return "no peer connection exposed";
  const stats = [];
  (await pc.getStats()).forEach((r) => { if (r.type === "inbound-rtp" && r.kind === "video" && r.mid === mid)
    stats.push({ packets: r.packetsReceived, lost: r.packetsLost, frames: r.framesReceived, decoded: r.framesDecoded,
                 dropped: r.framesDropped, keyframes: r.keyFramesDecoded, pli: r.pliCount, nack: r.nackCount,
                 freezes: r.freezeCount, jitter: r.jitter }); });
  return stats;
}"""


def join(page: Page, url: str, name: str, media: str) -> None:
    page.goto(url)
    page.fill("#name", name)
    page.check(f"input[name=media][value={media}]")
    page.click("#join-button")
    page.wait_for_url("**/room/**")
    expect(page.locator("body")).to_have_attribute("data-audio", "connected", timeout=20_000)


def shown(page: Page) -> dict[str, str]:
    """Caption → the slot's mid, of the cameras this page shows."""
    out: dict[str, str] = {}
    for figure in page.locator("#videos figure").all():
        out[figure.locator("figcaption").inner_text()] = figure.locator("video").get_attribute("data-mid") or ""
    return out


@pytest.mark.e2e
def test_cameras_are_shown_to_the_others_and_leave_with_their_tab(tmp_path: Path) -> None:
    args = webrtc_args(tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60))
    with serving(tmp_path, PASSERELLE_WEBRTC__HOST_ADDRESSES="127.0.0.1") as site, sync_playwright() as p:
        conference = site.conference("--lobby", "off")
        url = site.base + "/" + conference["join_url"].split("/", 3)[3]
        browser = p.chromium.launch(executable_path=require("chromium"), args=args)
        try:
            martin, durand, listener = (browser.new_context().new_page() for _ in range(3))
            for page in (martin, durand, listener):
                page.add_init_script(RECORD_PEER)
            join(martin, url, "Dr Martin", "video")
            join(durand, url, "Dr Durand", "video")
            join(listener, url, "Mme Petit", "audio")
            for page, expected in ((martin, {"Dr Durand"}), (durand, {"Dr Martin"}),
                                   (listener, {"Dr Martin", "Dr Durand"})):  # fmt: skip
                expect(page.locator("#videos figure")).to_have_count(len(expected), timeout=15_000)
                cameras = shown(page)
                assert set(cameras) == expected, f"this page shows {set(cameras)}"
                for name, mid in cameras.items():
                    expect(page.locator(f'#videos video[data-mid="{mid}"]')).to_have_js_property(
                        "readyState", 4, timeout=15_000
                    )
                    playing = page.evaluate(PLAYING, mid)
                    assert playing["width"] > 0, f"{name}'s picture is empty"
                    if playing["frames"] < 3:
                        received = [page.evaluate(RECEIVED, mid)]
                        time.sleep(3)
                        received.append(page.evaluate(RECEIVED, mid))
                        raise AssertionError(
                            f"{name}'s picture does not move: {playing}; received then and 3 s "
                            f"later: {received}; bridge log: {site.folder / 'serve.log'}"
                        )
            expect(martin.locator("#video-panel")).to_be_visible()
            durand.close()  # Dr Durand's tab closes: the others stop showing that camera
            expect(martin.locator("#videos figure")).to_have_count(0, timeout=10_000)
            expect(martin.locator("#video-panel")).to_be_hidden()
            expect(listener.locator("#videos figure")).to_have_count(1, timeout=10_000)
            assert set(shown(listener)) == {"Dr Martin"}
        finally:
            browser.close()


@pytest.mark.e2e
def test_a_guest_waiting_in_the_lobby_neither_sees_nor_is_seen_until_admitted(tmp_path: Path) -> None:
    args = webrtc_args(tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60))
    with serving(tmp_path, PASSERELLE_WEBRTC__HOST_ADDRESSES="127.0.0.1",
                 PASSERELLE_SECURITY__SECRET_KEY="k" * 64) as site, sync_playwright() as p:  # fmt: skip
        conference = site.conference("--lobby", "always")
        browser = p.chromium.launch(executable_path=require("chromium"), args=args)
        try:
            host, guest = (browser.new_context().new_page() for _ in range(2))
            join(host, site.base + "/" + conference["host_url"].split("/", 3)[3], "Dr Martin", "video")
            guest.goto(site.base + "/" + conference["join_url"].split("/", 3)[3])
            guest.fill("#name", "Mme Durand")
            guest.check("input[name=media][value=video]")
            guest.click("#join-button")
            guest.wait_for_url("**/room/**")
            expect(guest.locator("body")).to_have_attribute("data-lobby", "waiting", timeout=20_000)
            waiting = host.locator("#lobby li", has_text="Mme Durand")
            expect(waiting).to_have_count(1, timeout=10_000)
            time.sleep(2.0)  # long enough for a camera to appear, were it shown
            expect(guest.locator("#videos figure")).to_have_count(0)
            expect(host.locator("#videos figure")).to_have_count(0)
            waiting.locator("button[data-action=admit]").click()
            expect(guest.locator("body")).to_have_attribute("data-lobby", "admitted", timeout=10_000)
            expect(host.locator("#videos figure")).to_have_count(1, timeout=15_000)
            expect(guest.locator("#videos figure")).to_have_count(1, timeout=15_000)
            assert set(shown(host)) == {"Mme Durand"}
            assert set(shown(guest)) == {"Dr Martin"}
            mid = shown(guest)["Dr Martin"]
            expect(guest.locator(f'#videos video[data-mid="{mid}"]')).to_have_js_property("readyState", 4,
                                                                                           timeout=15_000)  # fmt: skip
        finally:
            browser.close()
