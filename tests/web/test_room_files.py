"""A room's files over HTTP (web/room_files.py), with the room's channel: a host shares a file and every page is
told; a guest downloads the same bytes, as an attachment or, for a PDF, inline, never sniffed and sandboxed; a guest
may not share until a host allows it, nor delete another's file; a program renamed .pdf, a file over the size
limit, a page in the lobby, another conference's ticket and a page without the CSRF token are each refused with
their reason, and nothing is kept."""

from __future__ import annotations

import io
import json
import re
import urllib.parse
from typing import Any

from config import Settings
from rooms import ConferenceDraft, Rooms
from tests.web.test_room_follows import Client, offer, run, until
from web import tickets

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def _page(client: Client, key: bytes, conference_id: Any, name: str, *, host: bool = False) -> tuple[Any, str]:
    """A room page: its socket (in the room once its offer is taken) and its ticket."""
    ticket = tickets.issue(key, conference_id, name, "audio", None, host=host)
    socket = await client.ws_connect(f"/ws/room/{ticket}")
    await until(socket, "welcome")
    await socket.send_json(await offer())
    return socket, ticket


async def _csrf(client: Client, ticket: str) -> str:
    """The room page's CSRF token, as the page has it (and its cookie, in the client's jar)."""
    page = await client.get(f"/room/{ticket}")
    config = re.search(r'<script type="application/json" id="room-config">(.*?)</script>', await page.text(), re.S)
    assert config is not None
    token: str = json.loads(config.group(1))["csrf"]
    return token


async def _share(client: Client, ticket: str, csrf: str, name: str, data: bytes) -> tuple[int, dict[str, Any]]:
    response = await client.post(f"/room/{ticket}/files", data=io.BytesIO(data), headers={
        "X-File-Name": urllib.parse.quote(name), "X-CSRF-Token": csrf,
        "Content-Type": "application/octet-stream"})  # fmt: skip
    body: dict[str, Any] = await response.json()
    return response.status, body


def test_files_are_shared_listed_downloaded_and_deleted_by_who_may(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    other = rooms.create_conference(ConferenceDraft(name="Autre"))

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        host, host_ticket = await _page(client, key, conference.id, "Dr Martin", host=True)
        await until(host, "pass")
        out["first_list"] = (await until(host, "files"))["list"]
        guest, guest_ticket = await _page(client, key, conference.id, "Anne")
        await until(guest, "pass")
        await until(guest, "files")
        csrf = await _csrf(client, host_ticket)
        out["no_csrf"] = (await client.post(f"/room/{host_ticket}/files", data=PDF)).status
        status, shared = await _share(client, host_ticket, csrf, "Ordonnance Dupont.pdf", PDF)
        out["shared"] = (status, shared["name"], shared["type"], shared["size"], shared["by"])
        out["guest_told"] = [f["name"] for f in (await until(guest, "files"))["list"]]
        got = await client.get(f"/room/{guest_ticket}/files/{shared['id']}")
        out["download"] = (got.status, await got.read(), dict(got.headers))
        inline = await client.get(f"/room/{guest_ticket}/files/{shared['id']}?inline=1")
        out["inline"] = inline.headers["Content-Disposition"]
        elsewhere = tickets.issue(key, other.id, "Intrus", "audio", None)
        out["other_conference"] = (await client.get(f"/room/{elsewhere}/files/{shared['id']}")).status
        out["bad_ticket"] = (await client.get(f"/room/not-a-ticket/files/{shared['id']}")).status
        # A guest may not share until a host allows it.
        out["guest_share"] = await _share(client, guest_ticket, csrf, "notes.txt", b"notes\n")
        await host.send_json({"type": "settings", "guests_upload": True})
        await until(guest, "settings")
        out["guest_program"] = await _share(client, guest_ticket, csrf, "facture.pdf", b"MZ\x90\x00" + b"\x00" * 64)
        out["guest_too_large"] = await _share(client, guest_ticket, csrf, "big.txt",
                                              b"a" * (settings.files.max_mb * 2**20 + 1))  # fmt: skip
        status, notes = await _share(client, guest_ticket, csrf, "notes.txt", b"tension 12/8\n")
        out["guest_notes"] = status
        delete = await client.delete(f"/room/{guest_ticket}/files/{shared['id']}", headers={"X-CSRF-Token": csrf})
        out["guest_deletes_host_file"] = (delete.status, (await delete.json())["reason"])
        delete = await client.delete(f"/room/{guest_ticket}/files/{notes['id']}", headers={"X-CSRF-Token": csrf})
        out["guest_deletes_own"] = delete.status
        delete = await client.delete(f"/room/{host_ticket}/files/{shared['id']}", headers={"X-CSRF-Token": csrf})
        out["host_deletes"] = delete.status
        out["after"] = (await until(guest, "files"))["list"]
        while out["after"]:  # the guest's own deletion and the host's, told in turn
            out["after"] = (await until(guest, "files"))["list"]
        out["gone"] = (await client.get(f"/room/{guest_ticket}/files/{shared['id']}")).status
        await host.close()
        await guest.close()
        return out

    out = run(settings, rooms, scenario)
    assert out["first_list"] == []
    assert out["no_csrf"] == 403
    assert out["shared"] == (201, "Ordonnance Dupont.pdf", "application/pdf", len(PDF), "Dr Martin")
    assert out["guest_told"] == ["Ordonnance Dupont.pdf"]
    status, body, headers = out["download"]
    assert status == 200
    assert body == PDF
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"] == "attachment; filename*=UTF-8''Ordonnance%20Dupont.pdf"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"].startswith("sandbox")
    assert out["inline"].startswith("inline;")
    assert out["other_conference"] == 404
    assert out["bad_ticket"] == 403
    assert out["guest_share"] == (403, {"error": "Only the host can share files in this room.", "reason": "host-only"})
    assert out["guest_program"][0] == 422
    assert out["guest_program"][1]["reason"] == "type"
    assert out["guest_too_large"][0] == 413
    assert out["guest_too_large"][1]["reason"] == "size"
    assert out["guest_notes"] == 201
    assert out["guest_deletes_host_file"] == (403, "not-yours")
    assert out["guest_deletes_own"] == 200
    assert out["host_deletes"] == 200
    assert out["gone"] == 404
    stored = [p for p in settings.files.folder.iterdir() if p.is_file()]
    assert stored == [], "a refused or deleted file's bytes were kept"


def test_a_page_in_the_lobby_may_not_share_a_file(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="always"))

    async def scenario(client: Client, key: bytes) -> tuple[int, str]:
        guest, _ = await _page(client, key, conference.id, "Anne", host=True)
        await until(guest, "pass")  # a host is in straight away; now a guest waits
        waiting, waiting_ticket = await _page(client, key, conference.id, "Paul")
        await until(waiting, "waiting")
        csrf = await _csrf(client, waiting_ticket)
        status, body = await _share(client, waiting_ticket, csrf, "notes.txt", b"notes\n")
        await guest.close()
        await waiting.close()
        return status, body["reason"]

    assert run(settings, rooms, scenario) == (403, "not-in")


def test_a_presentation_is_a_pdf_of_the_room_one_presenter_at_a_time(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Formation", lobby_mode="off"))

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        host, host_ticket = await _page(client, key, conference.id, "Dr Martin", host=True)
        await until(host, "pass")
        guest, _ = await _page(client, key, conference.id, "Anne")
        await until(guest, "pass")
        csrf = await _csrf(client, host_ticket)
        _, shared = await _share(client, host_ticket, csrf, "protocole.pdf", PDF)
        _, text = await _share(client, host_ticket, csrf, "notes.txt", b"notes\n")
        await host.send_json({"type": "present", "file": text["id"], "page": 1})
        out["not_pdf"] = (await until(host, "error"))["message"]
        await host.send_json({"type": "present", "file": shared["id"], "page": 0})
        out["page_zero"] = (await until(host, "error"))["message"]
        await host.send_json({"type": "present", "file": shared["id"], "page": 1})
        out["shown"] = await until(guest, "presentation")
        await guest.send_json({"type": "present", "file": shared["id"], "page": 2})
        out["guest_turns"] = (await until(guest, "error"))["message"]
        await guest.send_json({"type": "present-stop"})
        out["guest_stops"] = (await until(guest, "error"))["message"]
        late, _ = await _page(client, key, conference.id, "Paul")
        out["late"] = (await until(late, "presentation"))["page"]
        await host.send_json({"type": "present", "file": shared["id"], "page": 3})
        out["turned"] = (await until(guest, "presentation"))["page"]
        await client.delete(f"/room/{host_ticket}/files/{shared['id']}", headers={"X-CSRF-Token": csrf})
        out["deleted"] = (await until(guest, "presentation"))["file"]
        for socket in (host, guest, late):
            await socket.close()
        return out

    out = run(settings, rooms, scenario)
    assert out["not_pdf"] == "file: a PDF of this room's files"
    assert out["page_zero"] == "page: from 1 to 10000"
    shown = out["shown"]
    assert (shown["name"], shown["page"], shown["by_name"]) == ("protocole.pdf", 1, "Dr Martin")
    assert out["guest_turns"] == "someone else is presenting"
    assert out["guest_stops"] == "only its presenter or a host may stop the presentation"
    assert out["late"] == 1
    assert out["turned"] == 3
    assert out["deleted"] is None
