"""The join page (``/c/<link>``: the conference's link, entry code asked if it has one; ``/i/<link>``: an invitee's
own link) with its pre-call check, and the small network-test endpoints that check uses.

A join that passes gives a signed, expiring participant ticket (:mod:`web.tickets`) and goes on to the room.
Wrong entry codes are counted like the phone's (:mod:`rooms.throttle`), per client address and per conference,
with the phone's tries of that conference: the web is no easier to guess through than the keypad, and guessing is
slowed ("try again in 40 seconds"), never answered with a lockout of every web participant.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import unicodedata
from dataclasses import dataclass
from typing import Any, cast

import jinja2
from aiohttp import web
from babel.support import Translations

from config import Settings
from rooms import AuditKind, Rooms, dates
from rooms.cluster import Cluster
from rooms.codes import entry_code_matches, normalise_code
from rooms.errors import NotFoundError
from rooms.schedule import WindowState
from rooms.views import ConferenceView, InviteeView
from web import tickets
from web.auth import CSRF_TOKEN, USER
from web.i18n import COOKIE, N_, load_catalogs, negotiate

TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")
MAX_NAME = 60
MEDIA = ("audio", "video", "listen")  # listen: no microphone at all (refused, or none), the room heard all the same
MAX_DOWNLOAD = 2 * 1024 * 1024


@dataclass(frozen=True)
class DialIn:
    shown: str  # as people read it
    e164: str  # as a tel: link dials it


class Pages:
    def __init__(self, settings: Settings, rooms: Rooms, key: bytes) -> None:
        self.settings, self.rooms, self.key = settings, rooms, key
        self.cluster: Cluster | None = None  # `passerelle serve` sets it: a room mixed on another node is there
        self.catalogs = load_catalogs()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
            auto_reload=False,  # the templates are the installed code's: no stat of the file at every page
        )  # fmt: skip
        self.limits = rooms.code_limits
        self._blob = os.urandom(MAX_DOWNLOAD)  # incompressible: a proxy cannot shrink the throughput test

    # -- rendering -----------------------------------------------------------------------------------------------

    def compile_templates(self) -> int:
        """Every template compiled now (``passerelle serve`` does it before it takes requests): compiling one is
        tens of ms of Python that, at its first page, ran beside the media clock (bench hostile: late ticks)."""
        names = self.env.list_templates(extensions=["html", "txt"])
        for name in names:
            self.env.get_template(name)
        return len(names)

    def render(self, request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
        return self._response(request, self._text(request, template, context), status)

    async def render_off_loop(self, request: web.Request, template: str, status: int = 200,
                              **context: Any) -> web.Response:  # fmt: skip
        """The same, the template rendered in a thread: a large page (the dashboard, the wizard, a conference)
        does not hold the event loop that runs the media clock (bench hostile)."""
        text = await asyncio.to_thread(self._text, request, template, context)
        return self._response(request, text, status)

    def _text(self, request: web.Request, template: str, context: dict[str, Any]) -> str:
        language, _ = negotiate(request, self.settings.locale.default_language)
        translations: Translations = self.catalogs[language]

        def gettext(message: str, **values: Any) -> str:
            translated: str = translations.gettext(message)
            return translated % values if values else translated  # autoescaped as a whole where it is shown

        context.setdefault("user", request.get(USER))
        return self.env.get_template(template).render(
            lang=language.value,
            _=gettext,
            texts=self._script_texts(translations),
            csrf=request.get(CSRF_TOKEN, ""),
            **context,
        )

    def _response(self, request: web.Request, text: str, status: int) -> web.Response:
        language, chosen = negotiate(request, self.settings.locale.default_language)
        response = web.Response(text=text, status=status, content_type="text/html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["Referrer-Policy"] = "no-referrer"  # the link is the secret: never sent elsewhere
        if chosen:
            response.set_cookie(COOKIE, language.value, max_age=365 * 86400, samesite="Lax", httponly=True)
        return response

    def error(self, request: web.Request, status: int, title: str, message: str) -> web.Response:
        t = self._gettext(request)
        return self.render(request, "error.html", status=status, title=t(title), message=t(message))

    def _gettext(self, request: web.Request) -> Any:
        language, _ = negotiate(request, self.settings.locale.default_language)
        return self.catalogs[language].gettext

    @staticmethod
    def _script_texts(t: Translations) -> dict[str, str]:
        _ = t.gettext
        return {
            "mic_ok": _("Microphone working: speak and watch the level move."),
            "mic_denied": _("Your browser did not allow the microphone. Allow it for this site (the padlock or "
                            "camera icon in the address bar), then reload the page. You can also join by phone."),
            "mic_missing": _("No microphone was found. Plug one in, or join by phone with the number above."),
            "mic_busy": _("The microphone is used by another application. Close it, then reload the page."),
            "mic_unavailable": _("The microphone could not be opened. Reload the page, or join by phone."),
            "mic_unsupported": _("This browser cannot use a microphone here. Use a recent browser, or join by phone."),
            "network_good": _("Good connection ({rtt} ms)."),
            "network_weak": _("Weak connection ({rtt} ms, {kbps} kbit/s): choose microphone only, or join by phone."),
            "network_insufficient": _("Connection too weak for the call ({rtt} ms, {kbps} kbit/s): join by phone."),
            "network_failed": _("The network test failed: check your connection, or join by phone."),
            "listen_only": _("Listen only: no microphone is used; you hear the conference, nobody hears you."),
            "or_listen": _("You can still join to listen: choose “Listen only”."),
            "opens_in": _("It opens in {minutes} min."),
            "open_now": _("It is open: you can join."),
            "will_enter": _("Waiting: you will enter as soon as it opens"),
            "name_missing": _("Enter your name."),
            "entry_code_form": _("The entry code has 4 to 8 digits."),
            "connected": _("Audio connected."),
            "phone": _("Phone"),
            "someone": _("Participant"),
            "by_phone": _("by phone"),
            "on_web": _("on the web"),
            "you": _("you"),
            "muted": _("muted"),
            "speaking": _("speaking"),
            "joined": _("{name} joined"),
            "left": _("{name} left"),
            "admit": _("Admit"),
            "waiting": _("Please wait: the host will let you in."),
            "denied": _("The host did not let you in."),
            "deny": _("Refuse"),
            "nobody_waiting": _("Nobody is waiting."),
            "reconnecting": _("Connection lost: reconnecting…"),
            "connection_failed": _("The audio could not be connected. Reload the page, or join by phone."),
            "restarting": _("The service is restarting: you will be reconnected in a moment."),
            "ended_cancelled": _("This conference was cancelled by its organiser."),
            "ended_ended": _("This conference has ended."),
            "ended_removed": _("You are no longer invited to this conference."),
            "ended_not-open": _("This conference is not open yet: come back a few minutes before it starts."),
            "end_confirm": _("End the conference for everyone? Everyone, phones included, will be taken out."),
            "ended_taken-out": _("The host took you out of the conference."),
            "ended_denied": _("The host did not let you in."),
            "ended_locked": _("The host has locked the room: nobody else can come in for now."),
            "locked": _("The room is locked."),
            "unlocked": _("The room is open again."),
            "hand_raised": _("hand raised"),
            "raised_hand": _("{name} raised their hand"),
            "mute_other": _("Mute"),
            "lower_hand": _("Lower the hand"),
            "take_out": _("Take out"),
            "take_out_confirm": _("Take {name} out of the conference?"),
            "muted_by_host": _("The host muted your microphone. Press “Unmute” to speak."),
            "by_phone_count": _("{count} by phone (they do not see the messages)"),
            "everyone": _("Everyone"),
            "privately": _("privately to {name}"),
            "private_from": _("privately"),
            "delete": _("Delete"),
            "clear_confirm": _("Delete every message of the chat, for everyone?"),
            "new_message": _("New message from {name}"),
            "someone_waiting": _("{count} waiting to enter"),
            "net_good": _("good"),
            "net_weak": _("weak"),
            "net_poor": _("poor"),
            "line_weak": _("weak line"),
            "line_poor": _("poor line"),
            "device_failed": _("This device could not be opened: choose another one."),
            "default_device": _("Default"),
            "invite_queued": _("on its way"),
            "invite_sent": _("sent"),
            "invite_failed": _("could not be delivered"),
            "call_ringing": _("ringing…"),
            "call_joining": _("answered, joining…"),
            "call_busy": _("busy"),
            "call_declined": _("declined"),
            "call_no-answer": _("no answer"),
            "call_no-trunk": _("this service cannot call out"),
            "call_failed": _("the call could not be placed"),
            "camera_failed": _("The camera could not be opened: check that no other application uses it."),
            "page_of": _("Page {page} of {pages}"),
            "your_screen": _("Your screen, as the others see it"),
            "screen_of": _("{name} shares their screen"),
            "point": _("Point"),
            "stop_share": _("Stop this share"),
            "share_stopped_by_host": _("The host stopped your screen share."),
            "pin": _("Pin"),
            "bytes": _("bytes"),
            "kind_text": _("text"),
            "present": _("Present"),
            "board_text": _("Text to write on the board (Enter puts it there, Escape drops it)"),
            "board_clear_confirm": _("Clear this page of the board for everyone?"),
            "board_file": _("whiteboard-page-{page}.png"),
            "board_pdf_file": _("whiteboard.pdf"),
            "pause_share": _("Hold still to annotate"),
            "resume_share": _("Resume the share"),
            "annotate": _("Annotate"),
            "stop_annotating": _("Stop annotating"),
            "screen_paused": _("held still for annotations"),
            "presents": _("{name} presents {file}"),
            "present_failed": _("This PDF cannot be shown: download it instead."),
            "download": _("Download"),
            "preview": _("Preview"),
            "delete_file_confirm": _("Delete {name} for everyone?"),
            "file_failed": _("The file could not be sent: try again."),
            "file_shared": _("{name} shared a file"),
            "file_sent": _("{name} is shared with the room."),
            "file_too_large": _("This file is larger than {mb} MB."),
        }  # fmt: skip

    # -- the join page -------------------------------------------------------------------------------------------

    async def _conference(self, request: web.Request) -> tuple[ConferenceView, InviteeView | None]:
        token = request.match_info["token"]
        try:
            if self._is_host(request):
                conference_id = tickets.host_conference(self.key, token)
                return await asyncio.to_thread(self.rooms.get_conference, conference_id), None
            return await asyncio.to_thread(self.rooms.by_link, token)
        except (NotFoundError, tickets.BadTicket):
            if not self._is_host(request) and await asyncio.to_thread(self.rooms.was_cancelled, token):
                raise self._cancelled(request) from None
            raise self._not_found(request) from None

    @staticmethod
    def _is_host(request: web.Request) -> bool:
        return request.path.startswith("/h/")

    @web.middleware
    async def site_errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """A path that leads nowhere gets the site's own page in the visitor's language, not aiohttp's plain
        "404: Not Found" (the API keeps its JSON answers)."""
        try:
            return cast(web.StreamResponse, await handler(request))
        except web.HTTPNotFound as exc:
            if request.path.startswith("/api/") or exc.content_type != "text/plain":
                raise
            raise _as_not_found(self.error(request, 404, N_("Page not found"),
                                           N_("There is no page at this address. Check the link, or start from "
                                              "the invitation you received.")))  from None  # fmt: skip

    def _cancelled(self, request: web.Request) -> web.HTTPException:
        """410 Gone: the link was right, its conference was deleted (said so, not "not found")."""
        response = self.error(request, 410, N_("Conference cancelled"),
                              N_("This conference was cancelled by its organiser. If you still need it, ask the "
                                 "person who invited you."))  # fmt: skip
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
        return web.HTTPGone(text=response.text, content_type="text/html", headers=headers)

    def _not_found(self, request: web.Request) -> web.HTTPException:
        response = self.error(request, 404, N_("Link not found"),
                              N_("This link leads to no conference. Check the link in your invitation, or join by "
                                 "phone with the number and code it gives."))  # fmt: skip
        return _as_not_found(response)

    def dial_in(self) -> DialIn:
        """The first public number as the page shows it (national form for callers in its region) and dials it."""
        number = self.settings.dial_in.numbers[0]
        shown = number.national if self.settings.locale.phone_region == "FR" else number.international
        return DialIn(shown=shown, e164=number.e164)

    def _join_context(
        self, request: web.Request, conference: ConferenceView, invitee: InviteeView | None, **extra: Any
    ) -> dict[str, Any]:
        language = negotiate(request, self.settings.locale.default_language)[0].value
        when = None
        if conference.starts_at is not None and conference.ends_at is not None:
            when = dates.span(conference.starts_at, conference.ends_at, conference.timezone, language)
        now = self.rooms.now()
        state = conference.window.state(now)
        opens_at = conference.window.opens_at
        user = request.get(USER)
        # Under a line that already says the day and the zone, the time alone says when it opens (a phone's first
        # screen is short); an opening on another day than the start is said in full.
        opens_clock = ""
        starts_at = conference.starts_at
        if opens_at is not None and starts_at is not None and dates.same_day(opens_at, starts_at, conference.timezone):
            opens_clock = dates.clock(opens_at, conference.timezone, language)
        return {
            "conference": conference,
            "when": when,
            "state": state.value,
            # The page counts down to the opening with the server's clock (the browser's may be off).
            "opens_at": opens_at.isoformat() if opens_at is not None else "",
            "now": now.isoformat(),
            "opens_text": dates.moment(opens_at, conference.timezone, language) if opens_at is not None else "",
            "opens_clock": opens_clock,
            "opens_before_min": self.settings.schedule.open_before_min,
            "media": "audio",
            "dial_in": self.dial_in(),
            "ask_entry_code": invitee is None and conference.has_entry_code and not self._is_host(request),
            "show_entry_code": (invitee is not None or self._is_host(request)) and conference.has_entry_code,
            "action": request.path,
            "name": user.display_name if user is not None else "",  # a signed-in professional: their own name
            "error": None,
            **extra,
        }

    async def join_page(self, request: web.Request) -> web.Response:
        conference, invitee = await self._conference(request)
        return await self.render_off_loop(request, "join.html", **self._join_context(request, conference, invitee))

    async def join(self, request: web.Request) -> web.Response:
        conference, invitee = await self._conference(request)
        t = self._gettext(request)
        try:
            form = await request.post()
        except ValueError:
            raise web.HTTPBadRequest(text="the form could not be read") from None
        name = _clean_name(str(form.get("name", "")))
        media = str(form.get("media", "audio"))
        context = self._join_context(request, conference, invitee, name=name)

        def again(message: str, status: int = 400, **values: object) -> web.Response:
            text = t(message) % values if values else t(message)
            return self.render(request, "join.html", status=status, **{**context, "error": text})

        if not name:
            return again(N_("Enter your name."))
        if media not in MEDIA:
            return again(N_("Choose microphone only, camera and microphone, or listen only."))
        context["media"] = media
        state = conference.window.state(self.rooms.now())
        if state is WindowState.NOT_YET_OPEN:
            return again(
                N_("This conference is not open yet: it opens on %(moment)s."), 403, moment=context["opens_text"]
            )
        if state is WindowState.ENDED:
            return again(N_("This conference has ended."), 403)
        if invitee is None and conference.entry_code is not None and not self._is_host(request):
            limits = self.limits
            keys = [*limits.web_keys(request.remote), limits.conference_key(conference.id)]
            wait = await asyncio.to_thread(limits.throttle.wait_s, keys)
            claim = await asyncio.to_thread(limits.throttle.claim, keys) if wait <= 0 else None
            if claim is None:
                seconds = max(1, math.ceil(wait or 1))
                response = again(N_("Too many wrong entry codes were tried: try again in %(seconds)s seconds, or "
                                    "join by phone."), 429, seconds=seconds)  # fmt: skip
                response.headers["Retry-After"] = str(seconds)
                return response
            typed = normalise_code(str(form.get("entry_code", "")))
            if not entry_code_matches(conference.entry_code, typed):
                await asyncio.to_thread(limits.failed, keys, conference_id=conference.id)
                await asyncio.to_thread(self.rooms.record, AuditKind.DIAL_IN_REFUSED, conference_id=conference.id,
                                        detail={"reason": "wrong-entry-code", "source": "web"})  # fmt: skip
                return again(N_("Wrong entry code."), 403)
            await asyncio.to_thread(limits.throttle.succeeded, claim)
        ticket = tickets.issue(self.key, conference.id, name, media, invitee.id if invitee else None,
                               host=self._is_host(request))  # fmt: skip
        raise web.HTTPSeeOther(f"/room/{ticket}")

    async def room(self, request: web.Request) -> web.Response:
        try:
            ticket = tickets.read(self.key, request.match_info["ticket"])
        except tickets.BadTicket:
            return self.error(request, 403, N_("Link expired"),
                              N_("Open the link of your invitation again to rejoin the conference."))  # fmt: skip
        try:
            conference = await asyncio.to_thread(self.rooms.get_conference, ticket.conference_id)
        except NotFoundError:
            return self.error(request, 410, N_("Conference cancelled"),
                              N_("This conference was cancelled by its organiser."))  # fmt: skip
        if ticket.invitee_id is not None:
            try:
                await asyncio.to_thread(self.rooms.get_invitee, ticket.invitee_id)
            except NotFoundError:
                return self.error(request, 403, N_("No longer invited"),
                                  N_("You are no longer invited to this conference."))  # fmt: skip
        state = conference.window.state(self.rooms.now())
        if state is WindowState.ENDED:
            return self.error(request, 403, N_("Conference ended"), N_("This conference has ended."))
        if state is WindowState.NOT_YET_OPEN:
            not_yet = N_("This conference is not open yet: come back a few minutes before it starts.")
            return self.error(request, 403, N_("Not open yet"), not_yet)
        if self.cluster is not None:  # one room, one mix: a browser goes to the node that mixes its room
            home = await asyncio.to_thread(self.cluster.claim, conference.id)
            if not home.here:
                raise web.HTTPTemporaryRedirect(home.public_url.rstrip("/") + request.path_qs)
        webrtc = self.settings.webrtc
        ice = [{"urls": url, **({"username": webrtc.turn_username, "credential": webrtc.turn_password.reveal()}
                                if url.startswith("turn") else {})} for url in webrtc.ice_servers]  # fmt: skip
        config = {"socket": f"/ws/room/{request.match_info['ticket']}", "iceServers": ice, "media": ticket.media,
                  "host": ticket.host, "screenFps": self.settings.video.screen_fps,
                  "csrf": request.get(CSRF_TOKEN, ""), "maxFileMb": self.settings.files.max_mb}  # fmt: skip
        return await self.render_off_loop(request, "room.html", conference=conference, ticket=ticket, leave="/left",
                                          config=config, chat_download=f"/room/{request.match_info['ticket']}/chat.txt",
                                          dial_in=self.dial_in(), can_call=self.can_call_out)  # fmt: skip

    @property
    def can_call_out(self) -> bool:
        """Does the bridge dial out (a trunk, or a PBX that calls for it)?"""
        return bool(self.settings.trunk.domain) or self.settings.asterisk.ami is not None

    async def left(self, request: web.Request) -> web.Response:
        """Where "Leave" leads: said plainly, for a patient as for a professional (whose dashboard is a click away)."""
        return self.render(request, "left.html")

    # -- network test --------------------------------------------------------------------------------------------

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({"t": time.time()}, headers={"Cache-Control": "no-store"})

    async def download(self, request: web.Request) -> web.Response:
        try:
            size = int(request.query.get("bytes", "262144"))
        except ValueError:
            raise web.HTTPBadRequest(text="bytes: expected a whole number") from None
        if not 1 <= size <= MAX_DOWNLOAD:
            raise web.HTTPBadRequest(text=f"bytes: from 1 to {MAX_DOWNLOAD}")
        return web.Response(body=self._blob[:size], content_type="application/octet-stream",
                            headers={"Cache-Control": "no-store"})  # fmt: skip


def _clean_name(raw: str) -> str:
    """A display name: printable characters only, spaces collapsed, at most 60 characters."""
    kept = "".join(ch for ch in unicodedata.normalize("NFC", raw) if unicodedata.category(ch)[0] != "C")
    return " ".join(kept.split())[:MAX_NAME]


def _as_not_found(response: web.Response) -> web.HTTPException:
    """A rendered page as the 404 to raise, with its headers (its language, its security policy)."""
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    return web.HTTPNotFound(text=response.text, content_type="text/html", headers=headers)
