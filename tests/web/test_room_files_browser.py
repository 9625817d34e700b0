"""The room's Files panel in Chromium against a real `passerelle serve`: the host shares an image, the other page
lists it (who, size, type), previews it and downloads the same bytes; a guest may not share until the host allows
it, then a program renamed .pdf and a file over the limit are each refused with their message; the panel at phone
size does not scroll sideways; the pages in both languages, at both sizes, for the eye."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import FilePayload, expect

from tests.web.site import join_room, tone_wav
from tests.web.test_room_browser import room_service


def png(width: int = 40, height: int = 30) -> bytes:
    """A real PNG (an orange gradient), made here."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (255, 4 * x % 256, 4 * y % 256))
                    for y in range(height))  # fmt: skip
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def payload(name: str, mime_type: str, data: bytes) -> FilePayload:
    return {"name": name, "mimeType": mime_type, "buffer": data}


@pytest.mark.e2e
def test_a_file_shared_in_the_room_is_listed_previewed_and_downloaded_by_the_others(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav", freq=1000.0, seconds=60)
    image = png()
    with room_service(tmp_path, mic) as (site, conference, browser):
        host = browser.new_page(viewport={"width": 1366, "height": 768}, locale="fr-FR")
        join_room(host, site, conference["host_url"], "Dr Martin")
        guest = browser.new_page(viewport={"width": 390, "height": 844}, locale="en-GB", is_mobile=True,
                                 has_touch=True)  # fmt: skip
        join_room(guest, site, conference["join_url"], "Anne")
        guest.click("#tab-files")
        expect(guest.locator("#file-host-only")).to_be_visible()
        expect(guest.locator("#file-send")).to_be_hidden()

        host.click("#tab-files")
        host.set_input_files("#file-input", files=[payload("radio-genou.png", "image/png", image)])
        expect(host.locator("#files li")).to_have_count(1, timeout=10_000)
        item = guest.locator("#files li")
        expect(item).to_have_count(1, timeout=10_000)
        expect(item.locator(".file-name")).to_have_text("radio-genou.png")
        expect(item.locator(".file-meta")).to_contain_text("Dr Martin")
        expect(item.locator(".file-meta")).to_contain_text("PNG")
        expect(guest.locator("#files-count")).to_have_text("1")
        with guest.expect_download() as downloading:
            item.locator("a", has_text="Download").click()
        download = downloading.value
        assert Path(download.path()).read_bytes() == image
        assert download.suggested_filename == "radio-genou.png"
        item.locator("[data-action=preview]").click()
        expect(guest.locator("#preview-image")).to_be_visible()
        expect(guest.locator("#preview-image")).to_have_js_property("naturalWidth", 40)
        guest.screenshot(path=str(tmp_path / "files-en-390.png"), full_page=True)
        assert guest.evaluate("document.documentElement.scrollWidth") <= 390, "the Files panel scrolls sideways"
        assert item.locator("[data-action=delete]").count() == 0, "a guest may delete the host's file"

        # The host lets participants share: the guest's program renamed .pdf, and a file over 25 MB, are refused.
        host.click("#tab-settings")
        host.check("#guests-upload")
        expect(guest.locator("#file-send")).to_be_visible(timeout=10_000)
        guest.set_input_files(
            "#file-input", files=[payload("facture.pdf", "application/pdf", b"MZ\x90\x00" + b"\x00" * 256)]
        )
        expect(guest.locator("#file-error")).to_have_text("Programs cannot be shared here.", timeout=10_000)
        guest.set_input_files(
            "#file-input", files=[payload("scanner.pdf", "application/pdf", b"%PDF-1.7\n" + b"0" * (25 * 2**20))]
        )
        expect(guest.locator("#file-error")).to_have_text("This file is larger than 25 MB.")
        guest.set_input_files(
            "#file-input", files=[payload("notes.txt", "text/plain", "Tension 12/8, à revoir.\n".encode())]
        )
        expect(host.locator("#files li")).to_have_count(2, timeout=10_000)
        expect(guest.locator('#files li:has-text("notes.txt") [data-action=delete]')).to_have_count(1)
        host.click("#tab-files")
        host.screenshot(path=str(tmp_path / "files-fr-1366.png"))
        host.on("dialog", lambda dialog: dialog.accept())
        host.locator('#files li:has-text("radio-genou.png") [data-action=delete]').click()
        expect(guest.locator("#files li")).to_have_count(1, timeout=10_000)
