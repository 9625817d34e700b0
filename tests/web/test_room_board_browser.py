"""The whiteboard in Chromium against a real `passerelle serve`: a stroke drawn with the mouse on one page appears on
the other (the board's model, and ink on its canvas); a rectangle; an eraser and an undo; a late joiner gets the
whole board; the board saved as an image lands in the files, not blank; a text typed in place (Enter puts it, Escape
drops it); every page saved as one PDF that pdf.js presents, its pages' images the board's; the board on a phone in
English, nothing scrolling sideways."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web.site import CANVAS_INK, join_room, tone_wav
from tests.web.test_pages_browser import AXE
from tests.web.test_room_browser import room_service

SERIOUS = """async () => { const r = await axe.run(document, {resultTypes: ["violations"]});
  return { passes: r.passes.length, found: r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`) }; }"""


def serious(page: Page) -> list[str]:
    """What axe-core finds serious or critical on the page as it is now."""
    page.evaluate(AXE.read_text(encoding="utf-8"))  # not a script tag: the room's CSP allows no inline script
    result = page.evaluate(SERIOUS)
    assert result["passes"] > 10, "axe did not run its rules"
    found: list[str] = result["found"]
    return found


# The same, of an image of the room's files (the board saved as PNG), drawn into a canvas of its own.
IMAGE_INKED = """async (url) => { const image = new Image(); image.src = url; await image.decode();
  const c = document.createElement("canvas"); c.width = image.naturalWidth; c.height = image.naturalHeight;
  const g = c.getContext("2d"); g.drawImage(image, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) n++;
  return { n, width: c.width }; }"""


def objects(page: Page) -> list[dict[str, object]]:
    found: list[dict[str, object]] = page.evaluate("window.passerelleBoard.pages[0]")
    return found


def pdf_images(data: bytes) -> list[bytes]:
    """The RGB pixels of each page's image of a board saved as PDF (its Flate streams, in page order)."""
    images = []
    for found in re.finditer(rb"/FlateDecode /Length (\d+) >>\nstream\n", data):
        start = found.end()
        images.append(zlib.decompress(data[start : start + int(found.group(1))]))
    return images


def inked(rgb: bytes) -> int:
    """How many pixels of an RGB image are not near white."""
    return sum(1 for i in range(0, len(rgb), 3) if min(rgb[i], rgb[i + 1], rgb[i + 2]) < 200)


def drag(page: Page, points: list[tuple[float, float]], canvas: str = "#board-canvas") -> None:
    """Press, move through ``points`` (fractions of the canvas), release."""
    box = page.locator(canvas).bounding_box()
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
        expect(guest.locator("#board-error")).to_have_text("")  # dragged over it: erased once, no refusal
        guest.click("#board-undo")  # the guest's erase undone: the stroke is back, first as before
        expect(host.locator("#board-canvas")).to_have_attribute("data-objects", "2", timeout=10_000)
        assert [o["kind"] for o in objects(host)] == ["pen", "rect"]

        late = browser.new_page(viewport={"width": 1366, "height": 768}, locale="en-GB")
        join_room(late, site, conference["join_url"], "Paul")
        late.click("#board-toggle")
        expect(late.locator("#board-canvas")).to_have_attribute("data-objects", "2", timeout=10_000)
        assert objects(late) == objects(host)
        host.screenshot(path=str(tmp_path / "board-fr-1366.png"))

        board_ink = host.evaluate(CANVAS_INK, "board-canvas")
        board_width = host.evaluate("document.getElementById('board-canvas').width")
        host.click("#board-export")
        host.click("#tab-files")
        item = guest.locator("#files li", has_text="tableau-page-1.png")
        expect(item).to_have_count(1, timeout=10_000)
        url = item.locator("a", has_text="Download").get_attribute("href")
        saved = guest.evaluate(IMAGE_INKED, f"{url}?inline=1")
        assert saved["n"] > 500, "the board saved as an image is blank"
        assert saved == {"n": board_ink, "width": board_width}, "the image saved is not the board shown"

        # A text typed in place: the field where one clicked, Enter puts it on everyone's board, Escape drops it.
        host.click('#board-tools [data-tool="text"]')
        drag(host, [(0.2, 0.8)])
        field = host.locator("input.board-text")
        expect(field).to_be_focused()
        field.type("Tension <b>12/8</b>")
        field.press("Enter")
        expect(guest.locator("#board-canvas")).to_have_attribute("data-objects", "3", timeout=10_000)
        text = objects(guest)[2]
        assert (text["kind"], text["text"], text["at"]) == ("text", "Tension <b>12/8</b>", [0.2, 0.8])
        assert guest.locator("#board b").count() == 0, "a typed text became HTML"
        drag(host, [(0.5, 0.9)])
        host.locator("input.board-text").type("dropped")
        host.locator("input.board-text").press("Escape")
        expect(host.locator("input.board-text")).to_have_count(0)
        host.wait_for_timeout(500)
        assert len(objects(guest)) == 3, "a text dropped with Escape reached the board"

        # Every page as one PDF: page 1's image holds the ink, page 2 (empty) is white; pdf.js presents it.
        host.click("#board-add-page")
        expect(host.locator("#board-page")).to_have_text("Page 1 sur 2", timeout=10_000)
        host.click("#board-export-pdf")
        item = guest.locator("#files li", has_text="tableau-blanc.pdf")
        expect(item).to_have_count(1, timeout=15_000)
        url = item.locator("a", has_text="Download").get_attribute("href")
        assert url is not None
        data = guest.request.get(site.base + url).body()
        assert data.startswith(b"%PDF-1.4")
        assert data.count(b"/Type /Page ") == 2
        images = pdf_images(data)
        assert [len(image) for image in images] == [1600 * 1200 * 3] * 2
        assert inked(images[0]) > 2000, "the board's first page is blank in the PDF"
        assert inked(images[1]) == 0, "the empty second page is not white"
        shown = host.evaluate(CANVAS_INK, "board-canvas") / host.evaluate(
            "(() => { const c = document.getElementById('board-canvas'); return c.width * c.height; })()"
        )
        in_pdf = inked(images[0]) / (1600 * 1200)
        assert 0.5 < in_pdf / shown < 2, (in_pdf, shown)  # the same drawing, at another size
        host.locator("#files li", has_text="tableau-blanc.pdf").locator("[data-action=present]").click()
        expect(host.locator("#present-canvas")).to_have_attribute("data-page", "1", timeout=15_000)
        assert host.evaluate(CANVAS_INK, "present-canvas") > 500, "pdf.js shows the saved board blank"

        # On a phone, in English: the board fits, its tools wrap, nothing scrolls sideways.
        phone = browser.new_page(viewport={"width": 390, "height": 844}, locale="en-GB")
        join_room(phone, site, conference["join_url"], "Léa")
        phone.click("#board-toggle")
        expect(phone.locator("#board-canvas")).to_have_attribute("data-objects", "3", timeout=10_000)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390, "the board scrolls sideways"
        box = phone.locator("#board-canvas").bounding_box()
        assert box is not None
        assert box["width"] <= 390
        phone.locator("#board-canvas").scroll_into_view_if_needed()
        phone.screenshot(path=str(tmp_path / "board-en-390.png"))
        guest.set_viewport_size({"width": 1366, "height": 768})
        guest.screenshot(path=str(tmp_path / "board-en-1366.png"))
        assert serious(phone) == []
        assert serious(host) == []  # the board open, its tools, the PDF presented
