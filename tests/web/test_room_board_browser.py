"""The whiteboard in Chromium against a real `passerelle serve`: a stroke drawn with the mouse on one page appears on
the other (the board's model, and ink on its canvas); a rectangle; an eraser and an undo; a late joiner gets the
whole board; the board saved as an image lands in the files, not blank."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web.site import CANVAS_INK, join_room, tone_wav
from tests.web.test_room_browser import room_service

# The same, of an image of the room's files (the board saved as PNG), drawn into a canvas of its own.
IMAGE_INKED = """async (url) => { const image = new Image(); image.src = url; await image.decode();
  const c = document.createElement("canvas"); c.width = image.naturalWidth; c.height = image.naturalHeight;
  const g = c.getContext("2d"); g.drawImage(image, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) n++;
  return { n, width: c.width }; }"""


def objects(page: Page) -> list[dict[str, object]]:
    found: list[dict[str, object]] = page.evaluate("window.passerelleBoard.pages[0]")
    return found


def drag(page: Page, points: list[tuple[float, float]]) -> None:
    """Press, move through ``points`` (fractions of the canvas), release."""
    box = page.locator("#board-canvas").bounding_box()
    assert box is not None
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()


@pytest.mark.e2e
def test_strokes_reach_the_other_pages_as_drawn_and_the_board_is_saved_into_the_files(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60)
    with room_service(tmp_path, mic) as (site, conference, browser):
        host = browser.new_page(viewport={"width": 1366, "height": 768}, locale="fr-FR")
        join_room(host, site, conference["host_url"], "Dr Martin")
        guest = browser.new_page(viewport={"width": 1366, "height": 768}, locale="en-GB")
        join_room(guest, site, conference["join_url"], "Anne")
        for page in (host, guest):
            page.click("#board-toggle")
            expect(page.locator("#board")).to_be_visible()
        drag(host, [(0.1, 0.5), (0.3, 0.3), (0.5, 0.6), (0.7, 0.4)])
        expect(guest.locator("#board-canvas")).to_have_attribute("data-objects", "1", timeout=10_000)
        stroke = objects(guest)[0]
        assert stroke["kind"] == "pen"
        assert len(stroke["points"]) >= 8, stroke  # type: ignore[arg-type]
        assert objects(guest) == objects(host), "the two pages do not hold the same board"
        assert guest.evaluate(CANVAS_INK, "board-canvas") > 500, "the stroke is not drawn on the other page"

        host.click('#board-tools [data-tool="rect"]')
        drag(host, [(0.6, 0.1), (0.9, 0.3)])
        expect(guest.locator("#board-canvas")).to_have_attribute("data-objects", "2", timeout=10_000)
        guest.click('#board-tools [data-tool="eraser"]')
        drag(guest, [(0.3, 0.3), (0.31, 0.31)])  # on the stroke
        expect(host.locator("#board-canvas")).to_have_attribute("data-objects", "1", timeout=10_000)
        assert objects(host)[0]["kind"] == "rect"
        guest.click("#board-undo")  # the guest's erase undone: the stroke is back, first as before
        expect(host.locator("#board-canvas")).to_have_attribute("data-objects", "2", timeout=10_000)
        assert [o["kind"] for o in objects(host)] == ["pen", "rect"]

        late = browser.new_page(viewport={"width": 1366, "height": 768}, locale="en-GB")
        join_room(late, site, conference["join_url"], "Paul")
        late.click("#board-toggle")
        expect(late.locator("#board-canvas")).to_have_attribute("data-objects", "2", timeout=10_000)
        assert objects(late) == objects(host)
        host.screenshot(path=str(tmp_path / "board-fr-1366.png"))

        host.click("#board-export")
        host.click("#tab-files")
        item = guest.locator("#files li", has_text="tableau-page-1.png")
        expect(item).to_have_count(1, timeout=10_000)
        url = item.locator("a", has_text="Download").get_attribute("href")
        saved = guest.evaluate(IMAGE_INKED, f"{url}?inline=1")
        assert saved["n"] > 500, "the board saved as an image is blank"
        assert saved["width"] > 100
