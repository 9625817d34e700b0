"""The professionals' pages: sign-in, the dashboard with the personal room, the planning wizard and each
conference's page (details, join, participants, invitations and their delivery, delete).

Every page but the sign-in needs a session; every form carries the CSRF token (:mod:`web.auth`). A conference's
page is its owner's: anyone else gets the same 404 as for a conference that does not exist.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from typing import Any

from aiohttp import web

from config import LobbyMode, Settings
from notify.invitations import Invitations
from rooms import (
    AuditKind,
    ConferenceKind,
    ConferenceView,
    InviteeKind,
    InviteeView,
    NotFoundError,
    Rooms,
    RoomsError,
    UserView,
    ValidationError,
    dates,
)
from rooms.contacts import readable_phone
from rooms.schedule import WindowState
from web import tickets
from web.auth import OIDC_COOKIE, USER, Auth, SignInError, safe_next
from web.i18n import N_, negotiate
from web.pages import Pages
from web.planning import DURATIONS, Plan, local_schedule

log = logging.getLogger(__name__)
COMMON_ZONES = ("Europe/Paris", "Europe/Brussels", "Europe/Zurich", "Europe/London", "America/Guadeloupe",
                "America/Martinique", "America/Cayenne", "Indian/Reunion", "Indian/Mayotte", "Pacific/Noumea",
                "Pacific/Tahiti", "UTC")  # fmt: skip


class Site:
    def __init__(self, settings: Settings, rooms: Rooms, pages: Pages, auth: Auth, invitations: Invitations) -> None:
        self.settings, self.rooms, self.pages, self.auth, self.invitations = settings, rooms, pages, auth, invitations

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/", self.dashboard)
        r.add_get("/login", self.login_page)
        r.add_post("/login", self.login)
        r.add_post("/logout", self.logout)
        r.add_get("/auth/portal", self.portal)
        r.add_get("/auth/callback", self.callback)
        r.add_post("/personal-room/regenerate", self.regenerate)
        r.add_get("/plan", self.plan_page)
        r.add_post("/plan", self.plan)
        r.add_get("/conferences/{id}", self.conference_page)
        r.add_get("/conferences/{id}/edit", self.edit_page)
        r.add_post("/conferences/{id}/edit", self.edit)
        r.add_post("/conferences/{id}/invitees", self.add_invitees)
        r.add_post("/conferences/{id}/invitees/{invitee}/remove", self.remove_invitee)
        r.add_post("/conferences/{id}/send", self.send)
        r.add_post("/conferences/{id}/delete", self.delete)
        r.add_get("/conferences/{id}/deliveries", self.deliveries)
        r.add_get("/api/users", self.user_search)

    # -- helpers -------------------------------------------------------------------------------------------------

    def user(self, request: web.Request) -> UserView:
        user: UserView | None = request.get(USER)
        if user is None:
            target = request.path_qs if request.method == "GET" else "/"
            raise web.HTTPSeeOther(f"/login?next={_quote(target)}")
        return user

    async def render(self, request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
        return await self.pages.render_off_loop(request, template, status=status, **context)

    async def owned(self, request: web.Request, user: UserView) -> ConferenceView:
        try:
            conference = await asyncio.to_thread(self.rooms.get_conference, request.match_info["id"])
        except (NotFoundError, ValidationError):
            raise self.pages._not_found(request) from None
        if conference.owner_username != user.username:
            raise self.pages._not_found(request)
        return conference

    def when(self, request: web.Request, conference: ConferenceView, zone_name: str) -> str | None:
        if conference.starts_at is None or conference.ends_at is None:
            return None
        language = negotiate(request, self.settings.locale.default_language)[0].value
        return dates.span(conference.starts_at, conference.ends_at, zone_name, language)

    def labels(self, invitees: list[InviteeView]) -> dict[uuid.UUID, str]:
        """Invitees as their host reads them: a colleague by name, a number as people write it."""
        names = self.rooms.display_names([i.address for i in invitees if i.kind is InviteeKind.USER])
        region = self.settings.locale.phone_region
        shown: dict[uuid.UUID, str] = {}
        for i in invitees:
            if i.kind is InviteeKind.USER:
                shown[i.id] = f"{names[i.address]} ({i.address})" if i.address in names else i.address
            elif i.kind is InviteeKind.PHONE:
                shown[i.id] = readable_phone(i.address, region)
            else:
                shown[i.id] = i.address
        return shown

    def host_link(self, conference: ConferenceView) -> str:
        return f"/h/{tickets.host_token(self.pages.key, conference.id)}"

    # -- sign-in -------------------------------------------------------------------------------------------------

    async def login_page(self, request: web.Request, *, error: str | None = None, status: int = 200,
                         username: str = "", values: dict[str, str] | None = None) -> web.Response:  # fmt: skip
        if request.get(USER) is not None and error is None:
            raise web.HTTPSeeOther(safe_next(request.query.get("next")))
        t = self.pages._gettext(request)
        shown = (t(error) % values if values else t(error)) if error else None
        return await self.render(request, "login.html", status=status, error=shown,
                           username=username, next=safe_next(request.query.get("next")),
                           portal=self.auth.portal_enabled, local=self.settings.oidc.local_login)  # fmt: skip

    async def login(self, request: web.Request) -> web.Response:
        if not self.settings.oidc.local_login:
            raise web.HTTPNotFound()
        form = await request.post()
        username, password = str(form.get("username", ""))[:200], str(form.get("password", ""))
        target = safe_next(str(form.get("next", "/")))
        if not username.strip() or not password:
            return await self.login_page(request, error=N_("Enter your username and password."), status=400,
                                         username=username)  # fmt: skip
        outcome = await self.auth.check_password(request, username, password)
        if isinstance(outcome, float) and outcome > 0:
            seconds = math.ceil(outcome)
            page = await self.login_page(request, error=N_("Too many failed sign-ins: try again in %(seconds)s "
                                                           "seconds."), status=429, username=username,
                                         values={"seconds": str(seconds)})  # fmt: skip
            page.headers["Retry-After"] = str(seconds)
            return page
        if isinstance(outcome, float):
            return await self.login_page(request, error=N_("Wrong username or password."), status=403,
                                         username=username)  # fmt: skip
        await asyncio.to_thread(self.rooms.record, AuditKind.SIGNED_IN, detail={"method": "password"})
        response = await self.auth.sign_in(request, outcome, "password", target)
        self.auth.device_cookie(response, outcome.username)
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        raise await self.auth.sign_out(request)

    async def portal(self, request: web.Request) -> web.Response:
        if not self.auth.portal_enabled:
            raise web.HTTPNotFound()
        try:
            raise await self.auth.start(request.query.get("next", "/"))
        except SignInError as exc:
            log.warning("portal sign-in could not start: %s", exc)
            return await self.login_page(request, error=N_("The health portal cannot be reached now: try again in "
                                                           "a moment."), status=502)  # fmt: skip

    async def callback(self, request: web.Request) -> web.Response:
        if not self.auth.portal_enabled:
            raise web.HTTPNotFound()
        try:
            claims, target, id_token = await self.auth.finish(request)
            user = await self.auth.portal_user(claims)
        except SignInError as exc:
            log.warning("portal sign-in refused: %s", exc)
            page = await self.login_page(request, error=N_("The sign-in through the health portal did not succeed: "
                                                           "try again."), status=403)  # fmt: skip
            page.del_cookie(OIDC_COOKIE, path="/")  # one answer per sign-in started, right or wrong
            return page
        await asyncio.to_thread(self.rooms.record, AuditKind.SIGNED_IN, detail={"method": "oidc"})
        response = await self.auth.sign_in(request, user, "oidc", target, id_token)
        response.del_cookie(OIDC_COOKIE, path="/")
        raise response

    # -- dashboard -----------------------------------------------------------------------------------------------

    async def dashboard(self, request: web.Request) -> web.Response:
        user = self.user(request)
        room = await asyncio.to_thread(self.rooms.personal_room, user.username)
        listed = await asyncio.to_thread(self.rooms.list_conferences, involving=user.username)
        now = self.rooms.now()
        mine_invited = await asyncio.to_thread(self.rooms.invited_by_username, user.username)
        rows = []
        for c in listed:
            if c.kind is ConferenceKind.PERSONAL:
                continue
            mine = c.owner_username == user.username
            if mine:
                page, join = f"/conferences/{c.id}", self.host_link(c)
            else:  # invited by username: their own link, no entry code to type
                page = join = mine_invited[c.id].join_url if c.id in mine_invited else c.join_url
            ongoing = c.starts_at is not None and c.starts_at <= now and c.window.state(now) is WindowState.OPEN
            rows.append({"conference": c, "when": self.when(request, c, user.timezone), "ongoing": ongoing,
                         "page": page, "join": join})  # fmt: skip
        return await self.render(request, "dashboard.html", user=user, room=room, rows=rows,
                           room_host=self.host_link(room), dial_in=self.pages.dial_in(),
                           regenerated=request.query.get("regenerated") == "1",
                           deleted=request.query.get("deleted") == "1")  # fmt: skip

    async def regenerate(self, request: web.Request) -> web.Response:
        user = self.user(request)
        form = await request.post()
        if form.get("confirm") != "yes":
            raise web.HTTPSeeOther("/#personal-room")
        await asyncio.to_thread(self.rooms.regenerate_personal_code, user.username)
        raise web.HTTPSeeOther("/?regenerated=1#personal-room")

    async def user_search(self, request: web.Request) -> web.Response:
        self.user(request)
        found = await asyncio.to_thread(self.rooms.search_users, request.query.get("q", ""))
        return web.json_response([{"username": u.username, "name": u.display_name} for u in found])

    # -- the wizard ----------------------------------------------------------------------------------------------

    async def _wizard(self, request: web.Request, user: UserView, plan: Plan, *, action: str,
                      editing: ConferenceView | None = None, status: int = 200) -> web.Response:  # fmt: skip
        t = self.pages._gettext(request)
        errors = {name: t(message) % values if values else t(message)
                  for name, (message, values) in plan.errors.items()}  # fmt: skip
        zones = list(dict.fromkeys([plan.timezone or user.timezone, user.timezone, *COMMON_ZONES]))
        step = 1 if errors.keys() & {"users", "emails", "phones", "name", "entry", "entry_code", "lobby"} else \
            2 if errors.keys() & {"schedule", "day", "duration", "timezone"} else 3 if errors else 1  # fmt: skip
        invited: list[tuple[str, str]] = []
        if editing is not None:  # who is invited already: editing adds people, it never loses them
            invitees = await asyncio.to_thread(self.rooms.list_invitees, editing.id)
            labels = await asyncio.to_thread(self.labels, invitees)
            invited = [(labels[i.id], i.delivery_state.value) for i in invitees]
        return await self.render(request, "plan.html", status=status, plan=plan, errors=errors, action=action,
                           editing=editing is not None, invited=invited, durations=DURATIONS, zones=zones, step=step,
                           lobby_modes=[m.value for m in LobbyMode],
                           default_lobby=self.settings.lobby.default_mode.value)  # fmt: skip

    async def plan_page(self, request: web.Request) -> web.Response:
        user = self.user(request)
        return await self._wizard(request, user, Plan(timezone=user.timezone), action="/plan")

    async def plan(self, request: web.Request) -> web.Response:
        user = self.user(request)
        plan = Plan.from_form(await request.post())
        await asyncio.to_thread(plan.check, self.settings, self.rooms, self.rooms.now())
        if plan.errors:
            return await self._wizard(request, user, plan, action="/plan", status=400)
        try:
            conference = await asyncio.to_thread(self._create, user, plan)
        except RoomsError as exc:  # the domain's last word (e.g. a code space exhausted, an account just deleted)
            plan.errors["name"] = (N_("The conference could not be planned: %(reason)s"), {"reason": str(exc)})
            return await self._wizard(request, user, plan, action="/plan", status=400)
        raise web.HTTPSeeOther(f"/conferences/{conference.id}?planned=1")

    def _create(self, user: UserView, plan: Plan) -> ConferenceView:
        """The conference and its participants in one transaction; then their invitations, unless not now."""
        conference = self.rooms.create_conference(plan.draft(user.username), _wanted(plan))
        added = self.rooms.list_invitees(conference.id)
        if plan.send != "later" and added:
            self.invitations.send(conference, added, not_before=plan.send_time)
        return conference

    def _add(self, conference: ConferenceView, plan: Plan, *, send: bool) -> list[InviteeView]:
        wanted = _wanted(plan)
        added = self.rooms.add_invitees(conference.id, wanted, send_now=False) if wanted else []  # already there: left
        if send and added:
            self.invitations.send(conference, added, not_before=plan.send_time)
        return added

    async def edit_page(self, request: web.Request) -> web.Response:
        user = self.user(request)
        c = await self.owned(request, user)
        if c.kind is not ConferenceKind.SCHEDULED:
            raise self.pages._not_found(request)
        schedule = local_schedule(c)
        day, at, minutes = schedule or ("", "", 60)
        plan = Plan(name=c.name, entry="chosen" if c.entry_code else "none", entry_code=c.entry_code or "",
                    lobby=c.lobby_mode.value, schedule="scheduled" if schedule else "open", day=day, at=at,
                    duration=str(minutes), timezone=c.timezone, message=c.message)  # fmt: skip
        return await self._wizard(request, user, plan, action=f"/conferences/{c.id}/edit", editing=c)

    async def edit(self, request: web.Request) -> web.Response:
        user = self.user(request)
        c = await self.owned(request, user)
        if c.kind is not ConferenceKind.SCHEDULED:
            raise self.pages._not_found(request)
        plan = Plan.from_form(await request.post())
        await asyncio.to_thread(plan.check, self.settings, self.rooms, self.rooms.now(), editing=True)
        action = f"/conferences/{c.id}/edit"
        if plan.errors:
            return await self._wizard(request, user, plan, action=action, editing=c, status=400)
        try:
            await asyncio.to_thread(self._update, user, c, plan)
        except RoomsError as exc:
            plan.errors["day"] = (N_("The conference could not be changed: %(reason)s"), {"reason": str(exc)})
            return await self._wizard(request, user, plan, action=action, editing=c, status=400)
        raise web.HTTPSeeOther(f"/conferences/{c.id}?updated=1")

    def _update(self, user: UserView, before: ConferenceView, plan: Plan) -> None:
        after = self.rooms.update_conference(before.id, plan.draft(user.username), actor=user.username)
        invited = self.invitations.to_update(self.rooms.list_invitees(after.id))
        changes = tuple(what for what, differs in (
            ("time", (before.starts_at, before.ends_at) != (after.starts_at, after.ends_at)),
            ("entry_code", before.entry_code != after.entry_code),
            ("name", before.name != after.name),
            ("message", before.message != after.message),
        ) if differs)  # fmt: skip
        if invited and changes:  # the event again, with the next sequence, saying what changed
            self.invitations.send(after, invited, changes=changes)
        self._add(after, plan, send=plan.send != "later")

    # -- a conference's page -------------------------------------------------------------------------------------

    async def conference_page(self, request: web.Request, *, error: str | None = None, status: int = 200,
                              typed: dict[str, str] | None = None) -> web.Response:  # fmt: skip
        user = self.user(request)
        c = await self.owned(request, user)
        invitees = await asyncio.to_thread(self.rooms.list_invitees, c.id)
        state = c.window.state(self.rooms.now())
        notice = next((k for k in ("planned", "updated", "sent", "added", "removed") if k in request.query), None)
        labels = await asyncio.to_thread(self.labels, invitees)
        pending = bool(self.invitations.pending(invitees))
        return await self.render(request, "conference.html", status=status, c=c, invitees=invitees,
                           labels=labels, pending=pending,
                           when=self.when(request, c, user.timezone), dial_in=self.pages.dial_in(),
                           join=self.host_link(c), state=state.value, error=error, typed=typed or {},
                           notice=notice, personal=c.kind is ConferenceKind.PERSONAL)  # fmt: skip

    async def deliveries(self, request: web.Request) -> web.Response:
        """Where each invitation stands, for the conference page to update itself without a reload."""
        user = self.user(request)
        c = await self.owned(request, user)
        invitees = await asyncio.to_thread(self.rooms.list_invitees, c.id)
        t = self.pages._gettext(request)
        texts = {"sent": t("sent"), "queued": t("on its way"), "failed": t("could not be delivered"),
                 "not-sent": t("not sent")}  # fmt: skip
        return web.json_response({
            "invitees": [{"id": str(i.id), "state": i.delivery_state.value, "text": texts[i.delivery_state.value]}
                         for i in invitees],
            "pending": bool(self.invitations.pending(invitees)),
        }, headers={"Cache-Control": "no-store"})  # fmt: skip

    async def add_invitees(self, request: web.Request) -> web.Response:
        user = self.user(request)
        c = await self.owned(request, user)
        form = await request.post()
        plan = Plan.from_form(form)
        plan.name, plan.schedule, plan.timezone = c.name, "open", c.timezone
        await asyncio.to_thread(plan.check, self.settings, self.rooms, self.rooms.now())
        problems = {k: v for k, v in plan.errors.items() if k in ("users", "emails", "phones")}
        if problems:
            t = self.pages._gettext(request)
            message, values = next(iter(problems.values()))
            typed = {k: str(form.get(k, ""))[:1000] for k in ("user", "email", "phone")}
            return await self.conference_page(request, error=t(message) % values, status=400, typed=typed)
        try:
            await asyncio.to_thread(self._add, c, plan, send=form.get("send") == "now")
        except RoomsError as exc:  # e.g. an account deleted since the check: nobody was added
            return await self.conference_page(request, error=str(exc), status=409)
        raise web.HTTPSeeOther(f"/conferences/{c.id}?added=1")

    async def remove_invitee(self, request: web.Request) -> web.Response:
        """Asks first (a page of its own, so it works without JavaScript), then removes on ``confirm=yes``."""
        user = self.user(request)
        c = await self.owned(request, user)
        form = await request.post()
        try:
            invitee_id = uuid.UUID(request.match_info["invitee"])
            invitee = await asyncio.to_thread(self.rooms.get_invitee, invitee_id)
            if invitee.conference_id != c.id:
                raise NotFoundError(f"no invitee {invitee_id} in this conference")
            if form.get("confirm") != "yes":
                label = (await asyncio.to_thread(self.labels, [invitee]))[invitee.id]
                tell = bool(await asyncio.to_thread(self.invitations.to_cancel, [invitee]))
                return await self.render(request, "confirm_remove.html", c=c, invitee=invitee, label=label, tell=tell)
            await asyncio.to_thread(self._remove, c, invitee_id)
        except (ValueError, NotFoundError):
            raise self.pages._not_found(request) from None
        raise web.HTTPSeeOther(f"/conferences/{c.id}?removed=1")

    def _remove(self, c: ConferenceView, invitee_id: uuid.UUID) -> None:
        invitee = self.rooms.get_invitee(invitee_id)
        tell = self.invitations.to_cancel([invitee])  # before the removal takes their outbox rows with it
        removed = self.rooms.remove_invitee(c.id, invitee_id)
        if tell:
            self.invitations.send(c, [removed], cancelled=True)

    async def send(self, request: web.Request) -> web.Response:
        """Send the invitations not sent yet, or again to one invitee (``invitee``) or to everyone (``all``)."""
        user = self.user(request)
        c = await self.owned(request, user)
        form = await request.post()
        invitees = await asyncio.to_thread(self.rooms.list_invitees, c.id)
        which = str(form.get("invitee", ""))
        if which == "all":
            chosen = invitees
        elif which:
            chosen = [i for i in invitees if str(i.id) == which]
            if not chosen:
                raise self.pages._not_found(request)
        else:
            chosen = self.invitations.pending(invitees)
        if chosen:
            await asyncio.to_thread(self.invitations.send, c, chosen)
        raise web.HTTPSeeOther(f"/conferences/{c.id}?sent=1")

    async def delete(self, request: web.Request) -> web.Response:
        user = self.user(request)
        c = await self.owned(request, user)
        form = await request.post()
        if c.kind is not ConferenceKind.SCHEDULED or form.get("confirm") != "yes":
            raise web.HTTPSeeOther(f"/conferences/{c.id}")
        await asyncio.to_thread(self._delete, user, c)
        raise web.HTTPSeeOther("/?deleted=1")

    def _delete(self, user: UserView, c: ConferenceView) -> None:
        invited = self.invitations.to_cancel(self.rooms.list_invitees(c.id))
        ended = c.window.state(self.rooms.now()) is WindowState.ENDED
        if invited and not ended:
            self.invitations.send(c, invited, cancelled=True)
        self.rooms.delete_conference(c.id, actor=user.username)


def _wanted(plan: Plan) -> list[tuple[InviteeKind | str, str]]:
    wanted: list[tuple[InviteeKind | str, str]] = [(InviteeKind.USER, u) for u in plan.users]
    wanted += [(InviteeKind.EMAIL, e) for e in plan.normal_emails]
    wanted += [(InviteeKind.PHONE, p) for p in plan.normal_phones]
    return wanted


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
