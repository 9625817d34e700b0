"""A browser (Debian's Chromium, fake microphone playing 1 kHz) and a baresip phone (700 Hz) in the same room
through a real `passerelle serve`: each hears the other, the phone never hears itself; the room page lists both
(the phone by its masked number, talking), mutes the browser, and a closed tab leaves the room within 5 s."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from passerelle import control
from tests.mixer.signals import magnitude_db
from tests.tools import require
from tests.web.site import join_room, serving, talking_phone, tone_wav, webrtc_args

LISTEN = """async () => {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  context.createMediaStreamSource(window.passerelleRemote).connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  const sums = new Float32Array(analyser.frequencyBinCount).fill(-Infinity);  // the loudest seen, per bin
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    analyser.getFloatFrequencyData(bins);
    for (let k = 0; k < bins.length; k++) sums[k] = Math.max(sums[k], bins[k]);
  }
  const at = (hz) => Math.max(...[-2, -1, 0, 1, 2].map((d) => sums[Math.round(hz / (context.sampleRate / 8192)) + d]));
  return { phone: at(700), own: at(1000) };
}"""


def legs_in_rooms(socket: Path) -> int:
    """Asked of the service's control socket, from a thread (Playwright's sync API holds this one's loop)."""
    with ThreadPoolExecutor(1) as pool:
        count: int = pool.submit(control.call, socket, "GET", "/stats").result()["legs_in_rooms"]
        return count


@pytest.mark.e2e
def test_browser_and_phone_hear_each_other_in_one_room(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60)
    phone = talking_phone(tmp_path / "phone", 34600)
    args = webrtc_args(mic)
    try:
        with serving(tmp_path, PASSERELLE_WEBRTC__HOST_ADDRESSES="127.0.0.1") as site, sync_playwright() as p:
            conference = site.conference("--lobby", "off")
            browser = p.chromium.launch(executable_path=require("chromium"), args=args)
            try:
                page = browser.new_page()
                join_room(page, site, conference["join_url"], "Dr Martin")
                phone.command("dial", f"sip:+33491000000@{site.sip}")
                time.sleep(1.5)
                phone.command("sndcode", conference["code"] + "#")
                time.sleep(6.0)  # the phone joins (first-participant prompt to the browser, join tone), then talk
                heard = page.evaluate(LISTEN)
                people = page.locator("#participants li")
                expect(people).to_have_count(2)
                expect(people.filter(has_text="Dr Martin (you)")).to_have_attribute("data-kind", "webrtc")
                on_phone_item = people.filter(has_text="+33 6 •• •• •• 78")
                expect(on_phone_item).to_contain_text("by phone")
                expect(on_phone_item).to_have_attribute("data-speaking", "yes", timeout=5_000)
                # The list is not a live region rebuilt at each change of state: its items stay (a mute changes
                # one item's attributes and text, adds and removes no item), and the arrival was said once.
                expect(page.locator("#announce")).to_have_text("+33 6 •• •• •• 78 joined")
                assert page.get_attribute("#participants", "aria-live") is None
                page.evaluate("""() => {
                    window.seen = {changes: 0, flips: 0};
                    const list = document.getElementById("participants");
                    window.observer = new MutationObserver((records) => records.forEach((r) => {
                        if (r.type === "childList" && r.target === list) {
                            window.seen.changes += r.addedNodes.length + r.removedNodes.length;
                        } else if (r.type === "attributes") window.seen.flips += 1;
                    }));
                    window.observer.observe(list, {childList: true, attributes: true, subtree: true});
                }""")
                page.click("#mute")
                expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")
                expect(people.filter(has_text="(you)")).to_have_attribute("data-muted", "yes", timeout=3_000)
                rebuilt = page.evaluate("() => { window.observer.disconnect(); return window.seen; }")
                assert rebuilt["flips"] > 0, "the mute was not seen by the observer (the test can see changes)"
                assert rebuilt["changes"] == 0, f"the list was rebuilt when one participant muted: {rebuilt}"
                in_room = legs_in_rooms(site.folder / "control.sock")
                page.close()  # the tab closes: its leg leaves the room within 5 s
                closed_at, left_after = time.monotonic(), None
                while time.monotonic() - closed_at < 8:
                    if legs_in_rooms(site.folder / "control.sock") == 1:
                        left_after = time.monotonic() - closed_at
                        break
                    time.sleep(0.2)
                phone.command("hangup")
            finally:
                browser.close()
        on_phone = phone.heard()[-8000 * 3 :]
    finally:
        phone.stop()
    assert in_room == 2
    assert left_after is not None, "the closed tab's leg stayed in the room"
    assert left_after < 5.0
    assert heard["phone"] > -60, f"the browser does not hear the phone: {heard}"
    assert heard["own"] < heard["phone"] - 30, f"the browser hears itself: {heard}"
    # The browser's own processing (noise suppression, gain control: on, as in real calls) lowers a steady tone by
    # some 20 dB: the test is that the tone stands far above the rest of the spectrum and the phone's own tone.
    browser_tone = magnitude_db(on_phone, 1000, rate=8000)
    assert browser_tone > -45, "the phone does not hear the browser"
    assert browser_tone > magnitude_db(on_phone, 1500, rate=8000) + 25, "the browser's tone is lost in noise"
    assert magnitude_db(on_phone, 700, rate=8000) < browser_tone - 30, "the phone hears itself"
