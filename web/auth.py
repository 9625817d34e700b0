"""Who is signed in, and proof that a form was sent by this site's own page.

- **Sessions**: a random token in an HttpOnly, SameSite=Lax cookie (Secure when the site is https), its SHA-256 in
  the database (:mod:`rooms.web_sessions`); logout deletes it.
- **CSRF**: every unsafe request (POST, PUT, PATCH, DELETE) carries a token, as the form field ``csrf`` or the
  ``X-CSRF-Token`` header, that must be the HMAC of a random per-browser cookie under the service key (OWASP's
  signed double-submit cookie). A page of another site can neither read the cookie nor compute the HMAC. The
  cookie is renewed at sign-in and sign-out, so a token seen before sign-in is worthless after.
- **Local sign-in**: username and password (argon2id), wrong passwords counted per account and per client address
  (``http.login_failures`` within ``limits.failures_window_s``), the same answer for an unknown name and a wrong
  password.
- **The portal's sign-in** (OpenID Connect, authorization code flow with PKCE and a nonce): the provider's endpoints
  from its discovery document, the ID token's signature checked against its JWKS (joserfc) and its claims as OpenID
  Connect Core §3.1.3.7 says (Authlib's ``CodeIDToken``: issuer, audience, expiry, nonce, azp, at_hash); the
  profile from the userinfo endpoint when the ID token lacks it.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import functools
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import aiohttp
from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from config import Settings
from rooms import ConflictError, NotFoundError, Rooms, UserView, ValidationError
from rooms.passwords import Verifier
from rooms.throttle import Key, Policy, Scope, Throttle
from rooms.web_sessions import WebSessions

log = logging.getLogger(__name__)
DEVICE_COOKIE = "passerelle_device"
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")

SESSION_COOKIE = "psl_session"
CSRF_COOKIE = "psl_csrf"
OIDC_COOKIE = "psl_oidc"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OIDC_FLOW_S = 600  # the portal's sign-in must come back within 10 minutes
ID_TOKEN_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]
CSRF_TOKEN = web.RequestKey("csrf", str)
USER: web.RequestKey[UserView | None] = web.RequestKey("user")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SignInError(Exception):
    """The portal's sign-in failed; the text is for the log (never a token or a personal claim)."""


def safe_next(raw: str | None) -> str:
    """Where to go after sign-in: a path of this site only (no scheme, no ``//host``, no backslash trick)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw or any(ord(c) < 32 for c in raw):
        return "/"
    return raw[:500]


@dataclass
class Provider:
    """The portal's endpoints and keys, read once from its discovery document (keys again when one is unknown)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None = None  # OpenID Connect RP-Initiated Logout 1.0
    keys: KeySet | None = None


class Auth:
    def __init__(self, settings: Settings, rooms: Rooms, sessions: WebSessions, key: bytes) -> None:
        self.settings, self.rooms, self.sessions = settings, rooms, sessions
        self._csrf_key = hmac.new(key, b"passerelle csrf", hashlib.sha256).digest()
        self._flow_key = hmac.new(key, b"passerelle oidc flow", hashlib.sha256).digest()
        self.secure = settings.http.public_base_url.startswith("https://")
        self._device_key = hmac.new(key, b"passerelle device", hashlib.sha256).digest()
        limits = settings.limits
        self.policy = Policy(settings.http.login_failures, limits.delay_initial_s, limits.delay_max_s,
                             limits.failures_window_s)  # fmt: skip
        self._trusted = frozenset(settings.http.trusted_proxies)
        self._provider: Provider | None = None
        self._provider_lock = asyncio.Lock()
        self.verifier = Verifier()  # argon2 in processes niced below the media clock; closed with the app
        self.sign_ins: collections.Counter[str] = collections.Counter()  # password sign-ins by result (/metrics)

    # -- middleware ----------------------------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        seed = request.cookies.get(CSRF_COOKIE, "")
        fresh = len(seed) != 43
        if fresh:
            seed = secrets.token_urlsafe(32)
        request[CSRF_TOKEN] = self.csrf_token(seed)
        request[USER] = None
        token = request.cookies.get(SESSION_COOKIE)
        if token and not request.path.startswith(("/static/", "/api/net/")):
            request[USER] = await asyncio.to_thread(self.sessions.user, token)
        if request.method in UNSAFE and request.content_type in FORMS:
            try:  # read once here (aiohttp keeps it): a body that is not what it claims is the sender's error
                await request.post()
            except ValueError:  # not UTF-8, no boundary, a broken multipart body
                raise web.HTTPBadRequest(text="The form could not be read: send it again from the page.") from None
        if request.method in UNSAFE and not await self._csrf_ok(request, seed, fresh):
            log.info("refused a %s to %s without a valid CSRF token", request.method, request.path.split("/")[1])
            raise web.HTTPForbidden(text="This form has expired or did not come from this site: reload the page "
                                         "and try again.")  # fmt: skip
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects and errors are answers too: same cookies, same caching
            self._finish(request, exc, seed, fresh)
            raise
        self._finish(request, response, seed, fresh)
        return response

    def _finish(self, request: web.Request, response: web.StreamResponse, seed: str, fresh: bool) -> None:
        if response.prepared:
            return
        if fresh and CSRF_COOKIE not in response.cookies:
            self.set_cookie(response, CSRF_COOKIE, seed)
        if request.get(USER) is not None and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"  # a professional's pages and data stay off disk caches

    def csrf_token(self, seed: str) -> str:
        return hmac.new(self._csrf_key, seed.encode(), hashlib.sha256).hexdigest()

    async def _csrf_ok(self, request: web.Request, seed: str, fresh: bool) -> bool:
        if fresh:
            return False  # no cookie came: no page of this site was loaded by this browser
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent and request.content_type in FORMS:
            try:
                sent = str((await request.post()).get(CSRF_FIELD, ""))
            except ValueError:
                return False
        return hmac.compare_digest(sent.encode(), self.csrf_token(seed).encode())

    def set_cookie(self, response: web.StreamResponse, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Lax",
                            secure=self.secure)  # fmt: skip

    # -- sessions ------------------------------------------------------------------------------------------------

    async def sign_in(self, request: web.Request, user: UserView, method: str, to: str,
                      id_token: str | None = None) -> web.HTTPSeeOther:  # fmt: skip
        """Open a session and go to ``to``; the CSRF cookie is renewed with it."""
        token = await asyncio.to_thread(self.sessions.open, user.id, method, id_token)
        response = web.HTTPSeeOther(safe_next(to))
        self.set_cookie(response, SESSION_COOKIE, token, max_age=self.settings.http.session_hours * 3600)
        self.set_cookie(response, CSRF_COOKIE, secrets.token_urlsafe(32))
        log.info("user %s signed in (%s)", user.id, method)
        return response

    async def sign_out(self, request: web.Request) -> web.HTTPSeeOther:
        """End the session here and, for one opened through the portal, the portal's too (a shared computer in a
        clinic must not stay signed in at the portal): the browser goes to the portal's end-session endpoint with
        the ID token as a hint, and comes back to the sign-in page."""
        token = request.cookies.get(SESSION_COOKIE)
        id_token = await asyncio.to_thread(self.sessions.close, token) if token else None
        target = "/login"
        if id_token and self.portal_enabled:
            try:
                end = (await self.provider()).end_session_endpoint
            except SignInError as exc:
                log.warning("portal logout skipped: %s", exc)
                end = None
            if end:
                params = {"id_token_hint": id_token, "client_id": self.settings.oidc.client_id,
                          "post_logout_redirect_uri": f"{self.settings.http.public_base_url}/login"}  # fmt: skip
                target = f"{end}?{urlencode(params)}"
        response = web.HTTPSeeOther(target)
        response.del_cookie(SESSION_COOKIE, path="/")
        self.set_cookie(response, CSRF_COOKIE, secrets.token_urlsafe(32))
        return response

    # -- local accounts ------------------------------------------------------------------------------------------

    async def check_password(self, request: web.Request, username: str, password: str) -> UserView | float:
        """The user, or why not: the seconds to wait before a try (> 0), or 0.0 for a wrong password.

        OWASP's device cookies: a browser that signed in to this account before shows its signed cookie and is
        counted on its own key, so an attacker's guesses (counted per account and per client address) never slow
        the owner there; elsewhere the owner is slowed like anyone (one try per ``limits.delay_max_s`` at most),
        never locked out. A try counts as failed until it succeeds, so parallel guesses get no extra turns."""
        name = username.strip().lower()[:64]
        device = self._device(request, name)
        keys = [Key(f"device:{device}", self.policy)] if device else [
            Key(f"account:{name}", self.policy), Key(f"client:{self.client(request)}", self.policy)]  # fmt: skip
        wait = await asyncio.to_thread(self.throttle.wait_s, keys)
        claim = await asyncio.to_thread(self.throttle.claim, keys) if wait <= 0 else None
        if claim is None:
            self.sign_ins["slowed"] += 1
            return max(wait, 1.0)
        user = await asyncio.to_thread(self.rooms.check_password, username[:64], password, self.verifier.verify)
        if user is None:
            log.info("sign-in: a wrong password (%s)", "a known device" if device else "an unknown device")
            self.sign_ins["wrong-password"] += 1
            return 0.0
        await asyncio.to_thread(self.throttle.succeeded, claim)
        self.sign_ins["ok"] += 1
        return user

    @functools.cached_property
    def throttle(self) -> Throttle:
        """Sign-in failures in the database (made on first use)."""
        secret = self.settings.security.secret_key.reveal()
        return Throttle(self.rooms.sessions, Scope.SIGN_IN, secret, self.rooms.now)

    def client(self, request: web.Request) -> str:
        """The client's address: the peer's, or — when the peer is a trusted proxy — the nearest address in
        X-Forwarded-For that is not one of ours (what a client writes further left is not believed)."""
        peer = request.remote or "unknown"
        if peer not in self._trusted:
            return peer
        hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
        for hop in reversed(hops):
            if hop not in self._trusted:
                return hop[:64]
        return peer

    def device_cookie(self, response: web.StreamResponse, username: str) -> None:
        """After a successful sign-in: this browser is its owner's (a year), see :meth:`check_password`."""
        nonce = secrets.token_urlsafe(12)
        body = f"{username}|{nonce}"
        mac = hmac.new(self._device_key, body.encode(), hashlib.sha256).hexdigest()[:32]
        self.set_cookie(response, DEVICE_COOKIE, f"{body}|{mac}", max_age=365 * 86400)

    def _device(self, request: web.Request, username: str) -> str | None:
        """The device id of a valid cookie for ``username``, or None."""
        parts = request.cookies.get(DEVICE_COOKIE, "").split("|")
        if len(parts) != 3 or parts[0] != username:
            return None
        expected = hmac.new(self._device_key, f"{parts[0]}|{parts[1]}".encode(), hashlib.sha256).hexdigest()[:32]
        return parts[1] if hmac.compare_digest(parts[2].encode(), expected.encode()) else None

    # -- the portal (OpenID Connect) -----------------------------------------------------------------------------

    @property
    def portal_enabled(self) -> bool:
        return bool(self.settings.oidc.issuer and self.settings.oidc.client_id)

    @property
    def redirect_uri(self) -> str:
        return f"{self.settings.http.public_base_url}/auth/callback"

    async def provider(self, *, refresh_keys: bool = False) -> Provider:
        async with self._provider_lock:
            if self._provider is None:
                issuer = self.settings.oidc.issuer
                doc = await _get_json(f"{issuer}/.well-known/openid-configuration")
                if doc.get("issuer") != issuer:  # OpenID Connect Discovery §4.3
                    raise SignInError("the discovery document names another issuer")
                try:
                    self._provider = Provider(issuer, str(doc["authorization_endpoint"]), str(doc["token_endpoint"]),
                                              str(doc["jwks_uri"]), doc.get("userinfo_endpoint"),
                                              doc.get("end_session_endpoint"))  # fmt: skip
                except KeyError as exc:
                    raise SignInError(f"the discovery document lacks {exc}") from None
            provider = self._provider
            if provider.keys is None or refresh_keys:
                provider.keys = KeySet.import_key_set(await _get_json(provider.jwks_uri))  # type: ignore[arg-type]
            return provider

    async def start(self, to: str) -> web.HTTPSeeOther:
        """Send the browser to the portal; what must come back is kept in a signed, short-lived cookie."""
        provider = await self.provider()
        flow = {
            "state": secrets.token_urlsafe(24),
            "nonce": secrets.token_urlsafe(24),
            "verifier": secrets.token_urlsafe(48),
            "next": safe_next(to),
            "exp": int(time.time()) + OIDC_FLOW_S,
        }
        params = {
            "response_type": "code",
            "client_id": self.settings.oidc.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.settings.oidc.scope,
            "state": flow["state"],
            "nonce": flow["nonce"],
            "code_challenge": create_s256_code_challenge(str(flow["verifier"])),
            "code_challenge_method": "S256",
        }  # fmt: skip
        response = web.HTTPSeeOther(f"{provider.authorization_endpoint}?{urlencode(params)}")
        self.set_cookie(response, OIDC_COOKIE, self._sign(flow), max_age=OIDC_FLOW_S)
        return response

    async def finish(self, request: web.Request) -> tuple[dict[str, Any], str, str]:
        """The portal's answer checked through to the ID token: the claims, where the person was going, and the ID
        token itself (kept with the session, to end the portal's session at logout)."""
        flow = self._unsign(request.cookies.get(OIDC_COOKIE, ""))
        if flow is None:
            raise SignInError("no sign-in in progress in this browser (or it took more than 10 minutes)")
        if not hmac.compare_digest(request.query.get("state", ""), str(flow["state"])):
            raise SignInError("the state does not match this browser's sign-in")
        if "error" in request.query:
            raise SignInError(f"the portal answered {request.query['error'][:60]!r}")
        code = request.query.get("code", "")
        if not code:
            raise SignInError("the portal gave no code")
        provider = await self.provider()
        oidc = self.settings.oidc
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "code_verifier": str(flow["verifier"])}  # fmt: skip
        # client_secret_basic: each part form-urlencoded before base64 (RFC 6749 §2.3.1)
        pair = f"{quote_plus(oidc.client_id)}:{quote_plus(oidc.client_secret.reveal())}"
        tokens = await _post_json(provider.token_endpoint, form, f"Basic {base64.b64encode(pair.encode()).decode()}")
        id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
        if not isinstance(id_token, str):
            raise SignInError("the token response has no ID token")
        claims = await self._verify(provider, id_token, str(flow["nonce"]), access_token)
        if provider.userinfo_endpoint and isinstance(access_token, str):
            info = await _get_json(provider.userinfo_endpoint, bearer=access_token)
            if info.get("sub") != claims["sub"]:  # OpenID Connect Core §5.3.2
                raise SignInError("the userinfo answer is about someone else")
            claims = {**info, **claims}
        return claims, str(flow["next"]), id_token

    async def _verify(self, provider: Provider, id_token: str, nonce: str, access_token: Any) -> dict[str, Any]:
        oidc = self.settings.oidc
        for refresh in (False, True):  # an unknown key id: the portal may have rotated its keys
            keys = (await self.provider(refresh_keys=True)).keys if refresh else provider.keys
            try:
                token = jwt.decode(id_token, keys or KeySet([]), algorithms=ID_TOKEN_ALGORITHMS)
                break
            except JoseError as exc:
                if refresh:
                    raise SignInError(f"the ID token's signature does not verify ({type(exc).__name__})") from None
        claims = CodeIDToken(
            token.claims, token.header,
            options={"iss": {"essential": True, "value": provider.issuer},
                     "aud": {"essential": True, "value": oidc.client_id}},
            params={"nonce": nonce, "client_id": oidc.client_id,
                    "access_token": access_token if isinstance(access_token, str) else None},
        )  # fmt: skip
        try:
            claims.validate(now=int(time.time()), leeway=60)
        except JoseError as exc:
            raise SignInError(f"the ID token was refused: {exc.error} {exc.description or ''}".strip()) from None
        return dict(claims)

    async def portal_user(self, claims: dict[str, Any]) -> UserView:
        """The account the portal's claims name; made on first sign-in when ``oidc.create_users`` allows."""
        oidc = self.settings.oidc
        raw = claims.get(oidc.username_claim)
        if not isinstance(raw, str) or not raw.strip():
            raise SignInError(f"the portal gave no {oidc.username_claim!r} claim")
        username = raw.strip().lower()
        try:
            return await asyncio.to_thread(self.rooms.get_user, username)
        except NotFoundError:
            if not oidc.create_users:
                raise SignInError("no account here for this portal user, and oidc.create_users is false") from None
        name = claims.get("name") or " ".join(str(claims.get(k, "")) for k in ("given_name", "family_name")).strip()
        email = claims.get("email") if claims.get("email_verified", True) else None
        language = str(claims.get("locale", ""))[:2].lower()
        try:
            return await asyncio.to_thread(
                self.rooms.create_user, username, str(name or username),
                email=email if isinstance(email, str) else None,
                language=language if language in ("fr", "en") else None,
            )  # fmt: skip
        except ConflictError:  # made by a concurrent first sign-in
            return await asyncio.to_thread(self.rooms.get_user, username)
        except ValidationError as exc:
            raise SignInError(f"the portal's account cannot be used here ({exc.field})") from None

    def _sign(self, value: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")
        mac = hmac.new(self._flow_key, body.encode(), hashlib.sha256).hexdigest()
        return f"{body}.{mac}"

    def _unsign(self, raw: str) -> dict[str, Any] | None:
        body, _, mac = raw.partition(".")
        if not hmac.compare_digest(mac.encode(), hmac.new(self._flow_key, body.encode(), hashlib.sha256)
                                   .hexdigest().encode()):  # fmt: skip
            return None
        try:
            value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        return value if int(value.get("exp", 0)) > time.time() else None


_TIMEOUT = aiohttp.ClientTimeout(total=15)


async def _get_json(url: str, *, bearer: str | None = None) -> dict[str, Any]:
    return await _portal_json(url, headers={"Authorization": f"Bearer {bearer}"} if bearer else {})


async def _post_json(url: str, form: dict[str, str], authorization: str) -> dict[str, Any]:
    return await _portal_json(url, form=form, headers={"Authorization": authorization})


async def _portal_json(url: str, *, form: dict[str, str] | None = None, headers: dict[str, str]) -> dict[str, Any]:
    """One exchange with the portal (a GET, or a POST of ``form``): its JSON object, or a :class:`SignInError`
    saying where and why (an OAuth ``error`` code included when the portal gave one)."""
    where = url.split("?")[0]
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as http, \
                http.request("GET" if form is None else "POST", url, data=form,
                             headers={"Accept": "application/json", **headers}) as response:  # fmt: skip
            status, text = response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError) as exc:
        raise SignInError(f"the portal could not be read at {where} ({type(exc).__name__})") from None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if status != 200:
        error = value.get("error", "?") if isinstance(value, dict) else "?"
        raise SignInError(f"the portal answered HTTP {status} at {where} ({str(error)[:60]})")
    if not isinstance(value, dict):
        raise SignInError(f"the portal's answer at {where} is not a JSON object")
    return value
