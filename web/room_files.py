"""A room's files over HTTP (the room page's Files panel): ``POST /room/<ticket>/files`` (the raw bytes, the name in
``X-File-Name``, URI-encoded; the CSRF header), ``GET /room/<ticket>/files/<id>`` (``?inline=1`` for a previewed
type), ``DELETE /room/<ticket>/files/<id>`` (its uploader or a host). Everyone in the room is told the new list
over the room's channel (``files``).

Who: an upload comes from a page in the room (not its lobby), a guest's only while a host allows it; a download
needs a valid ticket of the file's conference, nothing else (a link copied out of the room works only as long as
its ticket). What goes back is never rendered by the browser as this site's page: ``attachment``, or ``inline``
for PDF, images and text under a sandboxing Content-Security-Policy, always ``nosniff``. Refusals say why in JSON
(``{"error", "reason"}``); nothing a file is or is called reaches the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from rooms.errors import NotFoundError
from rooms.files import FileRefused, ScanUnavailable
from web import tickets
from web.hub import Hub, Member, RateLimit

if TYPE_CHECKING:
    from web.live import Live

log = logging.getLogger(__name__)
UPLOADS = ((5, 60.0), (30, 3600.0))  # per participant: 5 a minute, 30 an hour
READ_CHUNK = 256 * 1024
MISSING = "This file is not in this conference (or was deleted)."


def uploader_key(key: str) -> str:
    """Who uploaded a file, as the database keeps it: a digest of the ticket's key (never the ticket)."""
    return hashlib.sha256(f"file-owner:{key}".encode()).hexdigest()


def _refused(status: type[web.HTTPException], reason: str, message: str) -> web.HTTPException:
    body = json.dumps({"error": message, "reason": reason})
    if status is web.HTTPRequestEntityTooLarge:  # its own constructor; the same answer
        refused = web.HTTPClientError(text=body, content_type="application/json")
        refused.set_status(413)
        return refused
    return status(text=body, content_type="application/json")


class RoomFiles:
    def __init__(self, live: Live) -> None:
        self.live = live
        self.files = live.rooms.files
        self.rate = RateLimit(*UPLOADS)

    def routes(self, app: web.Application) -> None:
        ticket = r"{ticket:[A-Za-z0-9_.-]{1,2000}}"
        app.router.add_post(rf"/room/{ticket}/files", self.upload)
        app.router.add_get(rf"/room/{ticket}/files/{{id:[0-9a-f-]{{36}}}}", self.download)
        app.router.add_delete(rf"/room/{ticket}/files/{{id:[0-9a-f-]{{36}}}}", self.delete)

    def _ticket(self, request: web.Request) -> tuple[tickets.Ticket, str]:
        text = request.match_info["ticket"]
        try:
            return tickets.read(self.live.key, text), text
        except tickets.BadTicket:
            raise _refused(web.HTTPForbidden, "ticket", "This room link is not valid any more.") from None

    def _member(self, ticket: tickets.Ticket, text: str) -> tuple[Hub, Member]:
        """The page of this ticket in its room (not in the lobby), or 403."""
        from web.live import ticket_key

        hub = self.live.hubs.find(str(ticket.conference_id))
        key = ticket_key(text)
        member = None if hub is None else next((m for m in hub.members.values() if m.key == key and m.admitted),
                                               None)  # fmt: skip
        if hub is None or member is None:
            raise _refused(web.HTTPForbidden, "not-in", "Only a participant in the room can do this.")
        return hub, member

    async def upload(self, request: web.Request) -> web.Response:
        ticket, text = self._ticket(request)
        hub, member = self._member(ticket, text)
        if not member.host and not hub.guests_upload:
            raise _refused(web.HTTPForbidden, "host-only", "Only the host can share files in this room.")
        if not self.rate.allow(member.key):
            raise _refused(web.HTTPTooManyRequests, "rate", "Too many files at once: wait a minute.")
        name = urllib.parse.unquote(request.headers.get("X-File-Name", ""))[:500] or "file"
        declared = request.content_length
        if declared is not None and declared > self.files.max_bytes:
            raise _refused(web.HTTPRequestEntityTooLarge, "size",
                           f"This file is larger than {self.files.max_bytes // 2**20} MB.")  # fmt: skip
        upload = await asyncio.to_thread(self.files.incoming)
        try:
            written = 0
            with upload.open("wb") as out:
                async for chunk in request.content.iter_chunked(READ_CHUNK):
                    written += len(chunk)
                    if written > self.files.max_bytes:
                        raise _refused(web.HTTPRequestEntityTooLarge, "size",
                                       f"This file is larger than {self.files.max_bytes // 2**20} MB.")  # fmt: skip
                    await asyncio.to_thread(out.write, chunk)  # never a disk write on the media clock's loop
            view = await asyncio.to_thread(self.files.add, ticket.conference_id, upload, name, member.name,
                                           uploader_key(member.key))  # fmt: skip
        except FileRefused as refused:
            raise _refused(web.HTTPUnprocessableEntity, refused.reason, refused.message) from None
        except ScanUnavailable as exc:
            log.error("a file was refused: %s", exc)
            raise _refused(web.HTTPServiceUnavailable, "scan",
                           "Files cannot be checked for viruses now: try again later.") from None  # fmt: skip
        except NotFoundError:
            raise _refused(web.HTTPGone, "cancelled", "This conference was cancelled.") from None
        finally:
            with contextlib.suppress(OSError):
                upload.unlink(missing_ok=True)
        log.info("leg %s shared a file (%d bytes) in conference %s", member.leg_id, view.size, hub.room)
        await self.tell(hub)
        return web.json_response(view.as_message(), status=201)

    async def download(self, request: web.Request) -> web.StreamResponse:
        ticket, _ = self._ticket(request)
        try:
            view, path = await asyncio.to_thread(
                self.files.open, ticket.conference_id, uuid.UUID(request.match_info["id"])
            )
        except (NotFoundError, ValueError):
            raise _refused(
                web.HTTPNotFound, "missing", "This file is not in this conference (or was deleted)."
            ) from None
        inline = request.query.get("inline") == "1" and view.previewed
        disposition = "inline" if inline else "attachment"
        quoted = urllib.parse.quote(view.name, safe="")
        response = web.FileResponse(path, headers={
            "Content-Type": view.media_type + ("; charset=utf-8" if view.media_type == "text/plain" else ""),
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quoted}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
            "Cache-Control": "private, no-store",
            "Cross-Origin-Resource-Policy": "same-origin",
        })  # fmt: skip
        return response

    async def delete(self, request: web.Request) -> web.Response:
        ticket, text = self._ticket(request)
        hub, member = self._member(ticket, text)
        file_id = uuid.UUID(request.match_info["id"])
        listed = {f.id: f for f in await asyncio.to_thread(self.files.listed, ticket.conference_id)}
        view = listed.get(file_id)
        if view is None:
            raise _refused(web.HTTPNotFound, "missing", MISSING)
        if not member.host and view.uploader_key != uploader_key(member.key):
            raise _refused(web.HTTPForbidden, "not-yours", "Only the host or who shared it can delete this file.")
        await asyncio.to_thread(self.files.delete, ticket.conference_id, file_id)
        if hub.presentation is not None and hub.presentation["file"] == str(file_id):
            hub.presentation = None  # the file presented is gone: so is the presentation
            hub.to_all(hub.presentation_message)
        await self.tell(hub)
        return web.json_response({"deleted": str(file_id)})

    async def tell(self, hub: Hub) -> None:
        hub.to_all(await self.listing(hub.room))

    async def listing(self, room: str) -> dict[str, Any]:
        views = await asyncio.to_thread(self.files.listed, uuid.UUID(room))
        return {"type": "files", "list": [v.as_message() for v in views]}
