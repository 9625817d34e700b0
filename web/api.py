"""The JSON API for conferences and invitations (``/api/v1``), described by the OpenAPI 3.1 document it serves at
``/api/v1/openapi.json``.

Same session as the pages (the cookie of a signed-in professional); every unsafe request also carries the
``X-CSRF-Token`` header (the value of the ``csrf`` field of any page). Same rules as the wizard (:mod:`web.planning`):
the same input is refused the same way, with the same messages (in English here), by field. A conference is its
owner's: another's answers 404 like one that does not exist.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC
from typing import Any

from aiohttp import web
from multidict import MultiDict

from config import LobbyMode, Settings
from rooms import (
    ConferenceKind,
    ConferenceView,
    InviteeKind,
    InviteeView,
    NotFoundError,
    Rooms,
    RoomsError,
    UserView,
)
from rooms.models import DeliveryState
from web.auth import USER, Handler
from web.planning import DURATIONS, MAX_INVITEES, Plan, local_schedule
from web.site import Site

PREFIX = "/api/v1"
UUID = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def _problem(status: int, message: str, errors: dict[str, str] | None = None) -> web.HTTPException:
    body = {"error": message, **({"errors": errors} if errors else {})}
    kind = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 404: web.HTTPNotFound, 409: web.HTTPConflict,
            415: web.HTTPUnsupportedMediaType}[status]  # fmt: skip
    return kind(text=json.dumps(body), content_type="application/json")


def _decoded(raw: bytes) -> tuple[object, str | None]:
    body = json.loads(raw)
    return body, _not_text(body) if isinstance(body, dict) else None


def _not_text(body: object) -> str | None:
    """The field (dotted path) of the first string holding a lone surrogate, or None. Iterative: a body nested
    as deep as the JSON parser allows must not overflow the stack here."""
    stack: list[tuple[object, str]] = [(body, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return path or "body"
        elif isinstance(value, dict):
            stack.extend((key, path) for key in value)
            stack.extend((item, f"{path}.{key}" if path else str(key)) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, path) for item in value)
    return None


class Api:
    def __init__(self, settings: Settings, rooms: Rooms, site: Site) -> None:
        self.settings, self.rooms, self.site = settings, rooms, site

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get(f"{PREFIX}/openapi.json", self.openapi)
        r.add_get(f"{PREFIX}/conferences", self.list)
        r.add_post(f"{PREFIX}/conferences", self.create)
        r.add_get(f"{PREFIX}/conferences/{{id:{UUID}}}", self.get)
        r.add_patch(f"{PREFIX}/conferences/{{id:{UUID}}}", self.update)
        r.add_delete(f"{PREFIX}/conferences/{{id:{UUID}}}", self.delete)
        r.add_get(f"{PREFIX}/conferences/{{id:{UUID}}}/invitations", self.invitations)
        r.add_post(f"{PREFIX}/conferences/{{id:{UUID}}}/invitations", self.invite)
        r.add_post(f"{PREFIX}/conferences/{{id:{UUID}}}/invitations/send", self.send)
        r.add_delete(f"{PREFIX}/conferences/{{id:{UUID}}}/invitations/{{invitation:{UUID}}}", self.uninvite)
        app.middlewares.append(self.json_errors)

    @web.middleware
    async def json_errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The router's own answers under /api/v1 (no such path, method not allowed) in JSON like the rest."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if not request.path.startswith(f"{PREFIX}/") or exc.content_type == "application/json" or exc.status < 400:
                raise
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
            return web.json_response({"error": exc.reason.lower()}, status=exc.status, headers=headers)

    # -- helpers -------------------------------------------------------------------------------------------------

    @staticmethod
    def _user(request: web.Request) -> UserView:
        user: UserView | None = request.get(USER)
        if user is None:
            raise _problem(401, "sign in first (the session cookie of the site)")
        return user

    async def _owned(self, request: web.Request) -> tuple[UserView, ConferenceView]:
        """The signed-in user and their conference named in the path (another's is as missing as none)."""
        user = self._user(request)
        try:
            conference = await asyncio.to_thread(self.rooms.get_conference, uuid.UUID(request.match_info["id"]))
        except (ValueError, NotFoundError):
            raise _problem(404, "no such conference") from None
        if conference.owner_username != user.username:
            raise _problem(404, "no such conference")
        return user, conference

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise _problem(415, "send JSON (Content-Type: application/json)")
        raw = await request.read()
        try:  # decoded and walked in a thread: a large body's work stays off the media clock's loop
            body, broken = await asyncio.to_thread(_decoded, raw)
        except (ValueError, UnicodeDecodeError):
            raise _problem(400, "the body is not valid JSON") from None
        except RecursionError:  # nested past what Python's parser follows
            raise _problem(400, "the body is nested too deeply") from None
        if not isinstance(body, dict):
            raise _problem(400, "the body must be a JSON object")
        if broken is not None:  # a lone surrogate ("\\ud800") is valid JSON but no text: it could not be stored
            raise _problem(400, "the body holds text that is not Unicode", {broken: "not valid Unicode text"})
        return body

    def _plan(self, body: dict[str, Any], base: dict[str, Any] | None = None) -> Plan:
        """The body as the wizard's fields (merged onto ``base`` for a change); type errors by field."""
        merged = {**(base or {}), **body}
        errors: dict[str, str] = {}

        def text(key: str, default: str = "") -> str:
            if key not in merged:
                return default
            value = merged[key]
            if not isinstance(value, str):
                errors[key] = "expected a string"
                return default
            return value

        form: MultiDict[str] = MultiDict()
        participants = merged.get("participants") or {}
        if not isinstance(participants, dict):
            errors["participants"] = "expected an object with users, emails and phones"
            participants = {}
        for key, field in (("users", "user"), ("emails", "email"), ("phones", "phone")):
            values = participants.get(key) or []
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                errors[key] = "expected a list of strings"
                continue
            for value in values[: MAX_INVITEES + 1]:  # one more than allowed is enough to refuse: no more work
                form.add(field, value)
        form["name"] = text("name")
        entry = merged.get("entry_code")
        if entry is None:
            form["entry"] = "none"
        elif entry == "random":
            form["entry"] = "random"
        elif isinstance(entry, str):
            form["entry"], form["entry_code"] = "chosen", entry
        else:
            errors["entry_code"] = 'expected null, "random" or digits as a string'
        form["lobby"] = text("lobby")
        form["timezone"] = text("timezone")
        form["message"] = text("message")
        start = text("start")
        duration = merged.get("duration_min", 60)
        if isinstance(duration, bool) or not isinstance(duration, int):
            errors["duration_min"] = "expected a whole number of minutes"
        if start:
            form["schedule"] = "scheduled"
            form["day"], _, form["at"] = start.partition("T")
            form["duration"] = str(duration)
        else:
            form["schedule"] = "open"
        send = text("send", "now")
        if send in ("now", "later"):
            form["send"] = send
        else:
            form["send"] = "at"
            form["send_day"], _, form["send_at"] = send.partition("T")
        plan = Plan.from_form(form)
        plan.errors.update({k: (v, {}) for k, v in errors.items()})
        return plan

    def _errors(self, plan: Plan) -> dict[str, str]:
        names = {"users": "participants.users", "emails": "participants.emails", "phones": "participants.phones",
                 "day": "start", "duration": "duration_min", "send_day": "send", "entry": "entry_code"}  # fmt: skip
        return {names.get(k, k): (m % v if v else m) for k, (m, v) in plan.errors.items()}

    async def _checked(self, plan: Plan, *, editing: bool = False) -> None:
        before = dict(plan.errors)
        await asyncio.to_thread(plan.check, self.settings, self.rooms, self.rooms.now(), editing=editing)
        plan.errors.update(before)
        if plan.errors:
            raise _problem(400, "some fields are not valid", self._errors(plan))

    def _conference(self, c: ConferenceView) -> dict[str, Any]:
        return {
            "id": str(c.id), "name": c.name, "kind": c.kind.value, "code": c.code,
            "entry_code": c.entry_code, "join_url": c.join_url, "lobby": c.lobby_mode.value,
            "start": c.starts_at.astimezone(UTC).isoformat() if c.starts_at else None,
            "end": c.ends_at.astimezone(UTC).isoformat() if c.ends_at else None,
            "timezone": c.timezone, "message": c.message,
            "dial_in": [n.e164 for n in self.settings.dial_in.numbers],
            "state": c.window.state(self.rooms.now()).value,
        }  # fmt: skip

    @staticmethod
    def _invitation(i: InviteeView) -> dict[str, Any]:
        return {"id": str(i.id), "kind": i.kind.value, "address": i.address, "language": i.language.value,
                "join_url": i.join_url, "delivery": i.delivery_state.value}  # fmt: skip

    # -- conferences ---------------------------------------------------------------------------------------------

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(self.settings))

    async def list(self, request: web.Request) -> web.Response:
        found = await asyncio.to_thread(self.rooms.list_conferences, owner=self._user(request).username)
        return web.json_response([self._conference(c) for c in found if c.kind is ConferenceKind.SCHEDULED])

    async def create(self, request: web.Request) -> web.Response:
        user = self._user(request)
        plan = await asyncio.to_thread(self._plan, await self._body(request))
        await self._checked(plan)
        try:
            conference = await asyncio.to_thread(self.site._create, user, plan)
        except RoomsError as exc:
            raise _problem(409, str(exc)) from None
        return web.json_response(self._conference(conference), status=201)

    async def get(self, request: web.Request) -> web.Response:
        _, conference = await self._owned(request)
        return web.json_response(self._conference(conference))

    async def update(self, request: web.Request) -> web.Response:
        user, c = await self._owned(request)
        body = await self._body(request)
        if c.kind is not ConferenceKind.SCHEDULED:
            raise _problem(409, "a personal room has no schedule to change")
        base: dict[str, Any] = {"name": c.name, "entry_code": c.entry_code, "lobby": c.lobby_mode.value,
                                "timezone": c.timezone, "message": c.message, "send": "later"}  # fmt: skip
        schedule = local_schedule(c)
        if schedule is not None:
            day, at, base["duration_min"] = schedule
            base["start"] = f"{day}T{at}"
        if "participants" in body:
            raise _problem(
                400,
                "some fields are not valid",
                {"participants": "change who is invited with the invitations of the conference"},
            )
        plan = self._plan(body, base)
        await self._checked(plan, editing=True)
        try:
            await asyncio.to_thread(self.site._update, user, c, plan)
        except RoomsError as exc:
            raise _problem(409, str(exc)) from None
        return web.json_response(self._conference(await asyncio.to_thread(self.rooms.get_conference, c.id)))

    async def delete(self, request: web.Request) -> web.Response:
        user, c = await self._owned(request)
        if c.kind is not ConferenceKind.SCHEDULED:
            raise _problem(409, "a personal room cannot be deleted")
        await asyncio.to_thread(self.site._delete, user, c)
        return web.Response(status=204)

    # -- invitations ---------------------------------------------------------------------------------------------

    async def invitations(self, request: web.Request) -> web.Response:
        _, c = await self._owned(request)
        return web.json_response([self._invitation(i) for i in await asyncio.to_thread(self.rooms.list_invitees,
                                                                                        c.id)])  # fmt: skip

    async def invite(self, request: web.Request) -> web.Response:
        _, c = await self._owned(request)
        body = await self._body(request)
        kind, address, send = body.get("kind"), body.get("address"), body.get("send", True)
        errors = {}
        if not isinstance(kind, str) or kind not in {k.value for k in InviteeKind}:
            errors["kind"] = "expected user, email or phone"
        if not isinstance(address, str):
            errors["address"] = "expected a string"
        if not isinstance(send, bool):
            errors["send"] = "expected true or false"
        if errors:
            raise _problem(400, "some fields are not valid", errors)
        key = {"user": "users", "email": "emails", "phone": "phones"}[str(kind)]
        plan = self._plan({"name": c.name, "participants": {key: [address]}})
        await self._checked(plan)
        if not plan.users + plan.normal_emails + plan.normal_phones:
            raise _problem(400, "some fields are not valid", {"address": "must not be empty"})
        try:
            added = await asyncio.to_thread(self.site._add, c, plan, send=bool(send))
        except RoomsError as exc:
            raise _problem(409, str(exc)) from None
        if not added:
            raise _problem(409, "already invited to this conference")
        return web.json_response(self._invitation(added[0]), status=201)

    async def uninvite(self, request: web.Request) -> web.Response:
        _, c = await self._owned(request)
        try:
            await asyncio.to_thread(self.site._remove, c, uuid.UUID(request.match_info["invitation"]))
        except (ValueError, NotFoundError):
            raise _problem(404, "no such invitation") from None
        return web.Response(status=204)

    async def send(self, request: web.Request) -> web.Response:
        _, c = await self._owned(request)
        body = await self._body(request)
        which = body.get("invitations", "pending")
        invitees = await asyncio.to_thread(self.rooms.list_invitees, c.id)
        if which == "pending":
            chosen = self.site.invitations.pending(invitees)
        elif which == "all":
            chosen = invitees
        elif isinstance(which, list) and all(isinstance(v, str) for v in which):
            chosen = [i for i in invitees if str(i.id) in which]
            if len(chosen) != len(set(which)):
                raise _problem(400, "some fields are not valid",
                               {"invitations": "not all of these are invitations of this conference"})  # fmt: skip
        else:
            raise _problem(400, "some fields are not valid",
                           {"invitations": 'expected "pending", "all" or a list of invitation ids'})  # fmt: skip
        queued = 0
        if chosen:
            queued, _ = await asyncio.to_thread(self.site.invitations.send, c, chosen)
        return web.json_response({"queued": queued}, status=202)


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 description of this API: what schemathesis checks every answer against."""
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    problem = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

    def answers(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
        names = {400: "Invalid input", 401: "Not signed in", 403: "No valid X-CSRF-Token",
                 404: "No such conference or invitation", 409: "Conflicts with the current state",
                 413: "Body too large", 415: "Not JSON"}  # fmt: skip
        out = dict(ok)
        for code in (401, *codes):
            out[str(code)] = {"description": names[code],
                              **({} if code in (403, 413) else problem)}  # fmt: skip
        return out

    conference_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    invitation_id = {"name": "invitation", "in": "path", "required": True,
                     "schema": {"type": "string", "format": "uuid"}}  # fmt: skip
    example = {"name": "Consultation de suivi", "entry_code": "random", "lobby": "off",
               "participants": {"emails": ["anne.petit@example.org"], "phones": ["06 11 22 33 44"]},
               "message": "À lundi.", "send": "later"}  # fmt: skip
    new_body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewConference"}, "example": example}},
    }
    change_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Change"},
                "example": {"name": "Consultation déplacée"},
            }
        },
    }
    links = {
        "getConference": {"operationId": "getConference", "parameters": {"id": "$response.body#/id"}},
        "changeConference": {"operationId": "changeConference", "parameters": {"id": "$response.body#/id"}},
        "deleteConference": {"operationId": "deleteConference", "parameters": {"id": "$response.body#/id"}},
        "listInvitations": {"operationId": "listInvitations", "parameters": {"id": "$response.body#/id"}},
        "invite": {"operationId": "invite", "parameters": {"id": "$response.body#/id"}},
        "sendInvitations": {"operationId": "sendInvitations", "parameters": {"id": "$response.body#/id"}},
    }
    conference = {"description": "The conference",
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Conference"}}}}  # fmt: skip
    created = {**conference, "links": links}
    strings = {"type": "array", "items": {"type": "string"}, "maxItems": 200}
    nullable_text = {"type": ["string", "null"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Passerelle", "version": "1",
                 "description": "Conferences and their invitations. Sign in on the site first (session cookie); "
                                "unsafe requests carry X-CSRF-Token."},
        "servers": [{"url": settings.http.public_base_url}],
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "psl_session",
                            "description": "The site's session, from signing in"},
                "csrf": {"type": "apiKey", "in": "cookie", "name": "psl_csrf",
                         "description": "The site's CSRF cookie; unsafe requests also send X-CSRF-Token, the value "
                                        "of the csrf field of any page"}},
            "schemas": {
                "Error": error,
                "Change": {"type": "object", "properties": {
                    "name": {"type": "string", "maxLength": 200},
                    "entry_code": {"description": 'null (none), "random", or 4 to 8 digits',
                                   "type": ["string", "null"]},
                    "lobby": {"enum": [m.value for m in LobbyMode]},
                    "start": {"description": "local date and time in timezone, YYYY-MM-DDTHH:MM; absent = open",
                              "type": "string"},
                    "duration_min": {"enum": list(DURATIONS)},
                    "timezone": {"type": "string", "description": "IANA name, e.g. Europe/Paris"},
                    "message": {"type": "string", "maxLength": 2000},
                    "send": {"description": '"now", "later" (not now) or a local YYYY-MM-DDTHH:MM',
                             "type": "string"},
                }},
                "NewConference": {"allOf": [{"$ref": "#/components/schemas/Change"}, {"required": ["name"],
                    "properties": {"participants": {"type": "object", "properties": {
                        "users": strings, "emails": strings, "phones": strings}}}}]},
                "Conference": {"type": "object", "required": ["id", "name", "code", "join_url", "state"],
                               "properties": {
                    "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
                    "kind": {"enum": [k.value for k in ConferenceKind]},
                    "code": {"type": "string", "pattern": "^[0-9]{9}$"}, "entry_code": nullable_text,
                    "join_url": {"type": "string"}, "lobby": {"enum": [m.value for m in LobbyMode]},
                    "start": {"type": ["string", "null"], "description": "UTC, ISO 8601; null when open"},
                    "end": {"type": ["string", "null"], "description": "UTC, ISO 8601"}, "timezone": {"type": "string"},
                    "message": {"type": "string"}, "dial_in": {"type": "array", "items": {"type": "string"}},
                    "state": {"enum": ["not-yet-open", "open", "ended"]}}},
                "Invitation": {"type": "object", "required": ["id", "kind", "address", "delivery"], "properties": {
                    "id": {"type": "string", "format": "uuid"}, "kind": {"enum": [k.value for k in InviteeKind]},
                    "address": {"type": "string"}, "language": {"enum": ["fr", "en"]}, "join_url": {"type": "string"},
                    "delivery": {"enum": [d.value for d in DeliveryState]}}},
            },
        },
        "security": [{"session": [], "csrf": []}],
        "paths": {
            "/api/v1/conferences": {
                "get": {"operationId": "listConferences", "responses": answers({"200": {
                    "description": "The conferences you own", "content": {"application/json": {"schema": {
                        "type": "array", "items": {"$ref": "#/components/schemas/Conference"}}}}}})},
                "post": {"operationId": "createConference", "requestBody": new_body,
                         "responses": answers({"201": created}, 400, 403, 409, 413, 415)},
            },
            "/api/v1/conferences/{id}": {
                "parameters": [conference_id],
                "get": {"operationId": "getConference", "responses": answers({"200": conference}, 404)},
                "patch": {"operationId": "changeConference", "requestBody": change_body,
                          "responses": answers({"200": conference}, 400, 403, 404, 409, 413, 415)},
                "delete": {"operationId": "deleteConference",
                           "responses": answers({"204": {"description": "Deleted; those invited told"}}, 403, 404,
                                                409)},
            },
            "/api/v1/conferences/{id}/invitations": {
                "parameters": [conference_id],
                "get": {"operationId": "listInvitations", "responses": answers({"200": {
                    "description": "Who is invited, and where each invitation stands", "content": {
                        "application/json": {"schema": {"type": "array",
                                                        "items": {"$ref": "#/components/schemas/Invitation"}}}}}},
                    404)},
                "post": {"operationId": "invite", "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["kind", "address"], "properties": {
                        "kind": {"enum": [k.value for k in InviteeKind]}, "address": {"type": "string"},
                        "send": {"type": "boolean"}}},
                    "example": {"kind": "email", "address": "b.roux@example.org", "send": False}}}},
                    "responses": answers({"201": {"description": "Invited", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Invitation"}}}, "links": {"uninvite": {
                            "operationId": "uninvite", "parameters": {"id": "$request.path.id",
                                                                      "invitation": "$response.body#/id"}}}}},
                        400, 403, 404, 409, 413, 415)},
            },
            "/api/v1/conferences/{id}/invitations/send": {
                "parameters": [conference_id],
                "post": {"operationId": "sendInvitations", "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"type": "object", "properties": {"invitations": {
                        "description": '"pending" (not sent or failed), "all", or a list of invitation ids',
                        "oneOf": [{"enum": ["pending", "all"]},
                                  {"type": "array", "items": {"type": "string", "format": "uuid"}}]}}}}}},
                    "responses": answers({"202": {"description": "Queued", "content": {"application/json": {
                        "schema": {"type": "object", "required": ["queued"], "properties": {
                            "queued": {"type": "integer"}}}}}}}, 400, 403, 404, 413, 415)},
            },
            "/api/v1/conferences/{id}/invitations/{invitation}": {
                "parameters": [conference_id, invitation_id],
                "delete": {"operationId": "uninvite",
                           "responses": answers({"204": {"description": "Removed; told if they were invited"}},
                                                403, 404)},
            },
        },
    }  # fmt: skip
