"""A presentation in Chromium against a real `passerelle serve`: the host presents a PDF of the room's files, the
other page shows its page drawn by pdf.js (not blank) and follows the page turns; it may browse on its own and go
back to the presenter's page; the page annotated (the board's layer over it, drawn by the presenter and by a guest,
each page its own annotations); a malformed PDF is said on the page and nothing else stops; the host stops it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web.site import CANVAS_INK, join_room, tone_wav
from tests.web.test_room_board_browser import drag
from tests.web.test_room_browser import room_service
from tests.web.test_room_files_browser import payload


def pdf(pages: int) -> bytes:
    """A real PDF of ``pages`` pages, each with a dark band and its number in Helvetica, made here: objects 1 the
    catalogue, 2 the page tree, 3 the font, then a content stream and its page for each page."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for n in range(1, pages + 1):
        content = f"0.1 0.2 0.5 rg 50 {600 - 40 * n} 500 120 re f BT /F1 48 Tf 80 700 Td (Page {n}) Tj ET".encode()
        objects.append(f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objects)} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>".encode())  # fmt: skip
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>".encode()
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def shown_page(page: Page) -> str:
    return page.locator("#present-canvas").get_attribute("data-page") or ""


@pytest.mark.e2e
def test_a_pdf_presented_by_the_host_is_followed_browsed_and_a_broken_one_is_said(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60)
    with room_service(tmp_path, mic) as (site, conference, browser):
        host = browser.new_page(viewport={"width": 1366, "height": 768}, locale="fr-FR")
        join_room(host, site, conference["host_url"], "Dr Martin")
        guest = browser.new_page(viewport={"width": 1366, "height": 768}, locale="en-GB")
        join_room(guest, site, conference["join_url"], "Anne")
        host.click("#tab-files")
        host.set_input_files("#file-input", files=[payload("protocole.pdf", "application/pdf", pdf(3))])
        expect(host.locator("#files li")).to_have_count(1, timeout=10_000)
        # Previewed in the Files panel, page by page, before anyone presents it.
        guest.click("#tab-files")
        guest.locator("#files li [data-action=preview]").click()
        expect(guest.locator("#preview-pdf")).to_have_attribute("data-page", "1", timeout=15_000)
        expect(guest.locator("#preview-page")).to_have_text("Page 1 of 3")
        assert guest.evaluate(CANVAS_INK, "preview-pdf") > 500, "the preview's page is blank"
        guest.click("#preview-next")
        expect(guest.locator("#preview-pdf")).to_have_attribute("data-page", "2", timeout=10_000)
        guest.screenshot(path=str(tmp_path / "preview-pdf-en-1366.png"))
        guest.click("#preview-close")
        expect(guest.locator("#file-preview")).to_be_hidden()

        host.locator("#files li [data-action=present]").click()
        expect(guest.locator("#presentation")).to_be_visible(timeout=10_000)
        expect(guest.locator("#present-title")).to_have_text("Dr Martin presents protocole.pdf")
        expect(guest.locator("#present-canvas")).to_have_attribute("data-page", "1", timeout=15_000)
        expect(guest.locator("#present-page")).to_have_text("Page 1 of 3")
        assert guest.evaluate(CANVAS_INK, "present-canvas") > 1000, "the page was not drawn"
        host.screenshot(path=str(tmp_path / "present-fr-1366.png"))

        host.click("#present-next")  # the host turns: the guest follows
        expect(guest.locator("#present-canvas")).to_have_attribute("data-page", "2", timeout=10_000)
        guest.click("#present-next")  # the guest browses on its own
        expect(guest.locator("#present-canvas")).to_have_attribute("data-page", "3")
        expect(guest.locator("#present-follow")).not_to_be_checked()
        host.click("#present-prev")
        expect(host.locator("#present-canvas")).to_have_attribute("data-page", "1", timeout=10_000)
        guest.wait_for_timeout(1000)
        assert shown_page(guest) == "3", "a guest browsing on its own was taken back"
        guest.click("#present-back")
        expect(guest.locator("#present-canvas")).to_have_attribute("data-page", "1", timeout=10_000)
        guest.screenshot(path=str(tmp_path / "present-en-1366.png"))

        # Annotations: the board's layer over the page, drawn on after "Annotate", each page its own.
        expect(host.locator("#present-annotate")).to_be_visible()
        host.click("#present-annotate")
        expect(host.locator("#present-annotate")).to_have_attribute("aria-pressed", "true")
        expect(host.locator("#presentation #board-tools")).to_be_visible()  # the tools came to the page
        host.click('#board-tools [data-tool="pen"]')
        host.click('#board-colours [data-colour="#cf222e"]')
        drag(host, [(0.2, 0.2), (0.4, 0.3), (0.6, 0.2)], canvas="#present-notes")
        notes = guest.locator("#present-notes")
        expect(notes).to_have_attribute("data-objects", "1", timeout=10_000)
        layer = notes.get_attribute("data-target") or ""
        assert re.fullmatch(r"pdf:[0-9a-f-]{36}:1", layer), layer
        assert guest.evaluate(CANVAS_INK, "present-notes") > 200, "the annotation is not drawn on the other page"
        guest.click("#present-annotate")  # a guest may annotate too (the host has not said only hosts draw)
        guest.click('#board-tools [data-tool="rect"]')
        drag(guest, [(0.5, 0.5), (0.8, 0.7)], canvas="#present-notes")
        expect(host.locator("#present-notes")).to_have_attribute("data-objects", "2", timeout=10_000)
        kinds = host.evaluate(f"window.passerelleBoard.layers[{layer!r}].map((o) => o.kind)")
        assert kinds == ["pen", "rect"]
        host.screenshot(path=str(tmp_path / "present-annotated-fr-1366.png"))
        host.click("#present-next")  # another page: its own (empty) layer
        expect(guest.locator("#present-canvas")).to_have_attribute("data-page", "2", timeout=10_000)
        expect(notes).to_have_attribute("data-objects", "0")
        host.click("#present-prev")
        expect(guest.locator("#present-canvas")).to_have_attribute("data-page", "1", timeout=10_000)
        expect(notes).to_have_attribute("data-objects", "2")
        host.click("#present-annotate")
        expect(host.locator("#present-annotate")).to_have_attribute("aria-pressed", "false")

        # A broken PDF (a PDF's first bytes, then anything): said on the page; the room goes on.
        host.set_input_files("#file-input", files=[payload("casse.pdf", "application/pdf",
                                                           b"%PDF-1.7\n" + os.urandom(4000))])  # fmt: skip
        expect(host.locator("#files li")).to_have_count(2, timeout=10_000)
        host.locator('#files li:has-text("casse.pdf") [data-action=present]').click()
        expect(guest.locator("#present-error")).to_have_text("This PDF cannot be shown: download it instead.",
                                                             timeout=15_000)  # fmt: skip
        guest.locator('#files li:has-text("casse.pdf") [data-action=preview]').click()  # its preview says so too
        expect(guest.locator("#preview-error")).to_have_text("This PDF cannot be shown: download it instead.",
                                                             timeout=15_000)  # fmt: skip
        expect(guest.locator("#preview-pdf")).to_be_hidden()
        expect(guest.locator("body")).to_have_attribute("data-audio", "connected")
        host.click("#present-stop")
        expect(guest.locator("#presentation")).to_be_hidden(timeout=10_000)
