"""Sign-in through the health portal (OpenID Connect) against a real provider process: the whole flow over HTTP
as a browser would make it (the provider's own login and consent forms), and every forged or stale answer
refused. The same flow in Chromium is in test_site_browser.py."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from config import Settings, load_settings
from rooms import Rooms
from rooms.db import session_factory
from tests.conftest import FakeClock
from tests.tools import free_tcp_port
from tests.web.portal import portal
from web import create_app
from web.auth import Auth, Provider, SignInError

FAILED = "La connexion par le portail de santé n&#39;a pas abouti"


def portal_settings(database_url: str, base: str, issuer_env: dict[str, str], **extra: str) -> Settings:
    return load_settings(environ={"PASSERELLE_DATABASE__URL": database_url, "PASSERELLE_HTTP__PUBLIC_BASE_URL": base,
                                  **issuer_env, **extra})  # fmt: skip


async def provider_login(http: aiohttp.ClientSession, location: str, login: str) -> str:
    """Through the provider's development login and consent pages; the redirect back to the site."""
    while True:
        async with http.get(location, allow_redirects=False) as response:
            if response.status in (302, 303):
                location = urljoin(location, response.headers["Location"])
                if "/auth/callback" in location:
                    return location
                continue
            page = await response.text()
        action = urljoin(location, re.search(r'<form[^>]*action="([^"]+)"', page).group(1))  # type: ignore[union-attr]
        fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
        if 'name="login"' in page:
            fields.update(login=login, password="any password")
        async with http.post(action, data=fields, allow_redirects=False) as response:
            location = urljoin(action, response.headers["Location"])
            if "/auth/callback" in location:
                return location


def run_site(settings: Settings, rooms: Rooms, port: int, scenario: Any) -> Any:
    async def main() -> Any:
        server = TestServer(create_app(settings, rooms), host="127.0.0.1", port=port)
        await server.start_server()
        try:
            jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1 (an address, not a name)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                return await scenario(http, f"http://127.0.0.1:{port}")
        finally:
            await server.close()

    return asyncio.run(asyncio.wait_for(main(), 60))


def test_first_sign_in_makes_the_account_then_finds_it(tmp_path: Path, database_url: str, engine: Any,
                                                       clock: FakeClock) -> None:  # fmt: skip
    port = free_tcp_port()
    base = f"http://127.0.0.1:{port}"
    with portal(tmp_path, base) as provider:
        settings = portal_settings(database_url, base, provider.settings())
        rooms = Rooms(settings, session_factory(engine))

        async def scenario(http: aiohttp.ClientSession, site: str) -> list[str]:
            pages = []
            for _ in range(2):
                async with http.get(f"{site}/login?next=/plan") as response:
                    login_page = await response.text()
                    assert "Connexion Portail Régional" in login_page
                async with http.get(f"{site}/auth/portal?next=/plan", allow_redirects=False) as response:
                    assert response.status == 303
                    to_portal = response.headers["Location"]
                query = parse_qs(urlsplit(to_portal).query)
                assert query["code_challenge_method"] == ["S256"]
                assert query["redirect_uri"] == [f"{site}/auth/callback"]
                assert len(query["nonce"][0]) >= 32
                assert len(query["state"][0]) >= 32
                back = await provider_login(http, to_portal, "dr.bernard")
                async with http.get(back, allow_redirects=False) as response:
                    assert response.status == 303, await response.text()
                    assert response.headers["Location"] == "/plan"
                async with http.get(f"{site}/") as response:
                    pages.append(await response.text())
                token = re.search(r'name="csrf" value="([0-9a-f]+)"', pages[-1]).group(1)  # type: ignore[union-attr]
                await http.post(f"{site}/logout", data={"csrf": token})
            return pages

        first, second = run_site(settings, rooms, port, scenario)
    assert "Dr Luc Bernard" in first
    assert "Dr Luc Bernard" in second
    (user,) = [u for u in rooms.list_users() if u.username == "dr.bernard"]
    assert user.email == "luc.bernard@example.org"
    assert len(rooms.list_users()) == 1, "the second sign-in found the same account"


def test_signing_out_ends_the_portals_session_too(tmp_path: Path, database_url: str, engine: Any) -> None:
    """A shared computer: after "Sign out" the next person who clicks the portal button meets the portal's login
    page, not the previous professional's session."""
    port = free_tcp_port()
    base = f"http://127.0.0.1:{port}"
    with portal(tmp_path, base) as provider:
        settings = portal_settings(database_url, base, provider.settings())
        rooms = Rooms(settings, session_factory(engine))

        async def scenario(http: aiohttp.ClientSession, site: str) -> tuple[str, str, str]:
            async with http.get(f"{site}/auth/portal", allow_redirects=False) as response:
                to_portal = response.headers["Location"]
            async with http.get(await provider_login(http, to_portal, "dr.bernard"), allow_redirects=False):
                pass
            async with http.get(f"{site}/") as response:
                token = re.search(r'name="csrf" value="([0-9a-f]+)"', await response.text()).group(1)  # type: ignore[union-attr]
            async with http.post(f"{site}/logout", data={"csrf": token}, allow_redirects=False) as response:
                to_end = response.headers["Location"]
            # the portal asks to confirm (its own page), then sends the browser back to the site's sign-in page
            async with http.get(to_end) as response:
                page = await response.text()
            action = urljoin(str(response.url), re.search(r'<form[^>]*action="([^"]+)"', page).group(1))  # type: ignore[union-attr]
            fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
            async with http.post(action, data={**fields, "logout": "yes"}, allow_redirects=False) as response:
                back = response.headers["Location"]
            async with http.get(f"{site}/auth/portal", allow_redirects=False) as response:
                again = response.headers["Location"]
            async with http.get(again) as response:
                return to_end, back, await response.text()

        to_end, back, portal_page = run_site(settings, rooms, port, scenario)
    end = urlsplit(to_end)
    assert f"{end.scheme}://{end.netloc}" == provider.issuer
    query = parse_qs(end.query)
    assert query["post_logout_redirect_uri"] == [f"{base}/login"]
    assert query["id_token_hint"][0].count(".") == 2, "the ID token goes as the hint"
    assert back.startswith(f"{base}/login")
    assert 'name="login"' in portal_page, "the portal asks who is there: its session ended with ours"


def test_forged_stale_or_refused_answers_open_no_session(tmp_path: Path, database_url: str, engine: Any,
                                                         caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """Each bad answer is refused for its own reason (each starts a sign-in of its own: a refused answer ends the
    one it came back to), with no session."""
    port = free_tcp_port()
    base = f"http://127.0.0.1:{port}"
    with portal(tmp_path, base) as provider:
        settings = portal_settings(database_url, base, provider.settings(), PASSERELLE_OIDC__CREATE_USERS="false")
        rooms = Rooms(settings, session_factory(engine))
        rooms.create_user("nurse.lee", "Ana Lee")

        async def scenario(http: aiohttp.ClientSession, site: str) -> dict[str, tuple[int, str, str]]:
            out = {}

            async def callback(name: str, url: str) -> None:
                caplog.clear()
                async with http.get(url, allow_redirects=False) as response:
                    why = [r.getMessage() for r in caplog.records if "portal sign-in refused" in r.getMessage()]
                    out[name] = (response.status, await response.text(), " ".join(why))

            async def start() -> tuple[str, str]:
                async with http.get(f"{site}/auth/portal", allow_redirects=False) as response:
                    to_portal = response.headers["Location"]
                return to_portal, parse_qs(urlsplit(to_portal).query)["state"][0]

            await callback("no flow", f"{site}/auth/callback?code=abc&state=xyz")
            _, state = await start()
            await callback("wrong state", f"{site}/auth/callback?code=abc&state={state[:-1]}x")
            _, state = await start()
            await callback("made-up code", f"{site}/auth/callback?code=abc&state={state}")
            _, state = await start()
            await callback("portal error", f"{site}/auth/callback?error=access_denied&state={state}")
            # a real answer, for an account this site may not create (create_users = false)
            to_portal, _ = await start()
            back = await provider_login(http, to_portal, "dr.unknown")
            await callback("no account", back)
            # the same answer again: this browser's sign-in is over (and the provider would refuse the code twice)
            await callback("answer replayed", back)
            # a known account signs in (out of the portal first: its session still names dr.unknown)
            http.cookie_jar.clear(lambda cookie: not cookie.key.startswith("psl_"))
            to_portal, _ = await start()
            await callback("known", await provider_login(http, to_portal, "nurse.lee"))
            return out

        with caplog.at_level(logging.WARNING, logger="web.site"):
            out = run_site(settings, rooms, port, scenario)
    reasons = {
        "no flow": "no sign-in in progress",
        "wrong state": "the state does not match",
        "made-up code": "HTTP 400 at http://127.0.0.1",  # the provider's token endpoint refused it
        "portal error": "the portal answered 'access_denied'",
        "no account": "oidc.create_users is false",
        "answer replayed": "no sign-in in progress",
    }
    for name, reason in reasons.items():
        status, page, why = out[name]
        assert status == 403, name
        assert FAILED in page, name
        assert reason in why, (name, why)
    assert "invalid_grant" in out["made-up code"][2]
    assert out["known"][0] == 303
    assert [u.username for u in rooms.list_users()] == ["nurse.lee"]


def test_an_unreachable_portal_is_said_so(tmp_path: Path, database_url: str, engine: Any) -> None:
    port = free_tcp_port()
    base = f"http://127.0.0.1:{port}"
    settings = portal_settings(database_url, base, {"PASSERELLE_OIDC__ISSUER": f"http://127.0.0.1:{free_tcp_port()}",
                                                    "PASSERELLE_OIDC__CLIENT_ID": "passerelle"})  # fmt: skip
    rooms = Rooms(settings, session_factory(engine))

    async def scenario(http: aiohttp.ClientSession, site: str) -> tuple[int, str]:
        async with http.get(f"{site}/auth/portal", allow_redirects=False) as response:
            return response.status, await response.text()

    status, page = run_site(settings, rooms, port, scenario)
    assert status == 502
    assert "Le portail de santé ne répond pas" in page


def test_id_tokens_are_checked_claim_by_claim() -> None:
    """The checks a conforming provider never makes fail: each broken ID token refused, the good one taken."""
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    settings = load_settings(environ={"PASSERELLE_OIDC__ISSUER": "https://portail.example.org",
                                      "PASSERELLE_OIDC__CLIENT_ID": "passerelle"})  # fmt: skip
    auth = Auth(settings, None, None, b"k" * 32)  # type: ignore[arg-type]
    provider = Provider("https://portail.example.org", "", "", "", None, keys=KeySet([key]))
    now = int(time.time())
    good = {"iss": "https://portail.example.org", "sub": "42", "aud": "passerelle", "exp": now + 300, "iat": now,
            "nonce": "n-123"}  # fmt: skip

    def token(claims: dict[str, Any], signer: Any = key, alg: str = "RS256") -> str:
        return jwt.encode({"alg": alg, "kid": "k1"}, claims, signer)

    async def verify(id_token: str, nonce: str = "n-123") -> dict[str, Any]:
        auth._provider = provider  # keys refreshed from "the portal" are these same keys
        return await auth._verify(provider, id_token, nonce, None)

    assert asyncio.run(verify(token(good)))["sub"] == "42"
    broken = {
        "signed by another key": token(good, other),
        "another issuer": token({**good, "iss": "https://evil.example"}),
        "another audience": token({**good, "aud": "someone-else"}),
        "expired": token({**good, "exp": now - 3600}),
        "no subject": token({k: v for k, v in good.items() if k != "sub"}),
        "another nonce": token({**good, "nonce": "n-999"}),
        "no nonce": token({k: v for k, v in good.items() if k != "nonce"}),
        "azp of another client": token({**good, "aud": ["passerelle", "x"], "azp": "x"}),
        "HMAC with the public key": token(good, OctKey.import_key(b"s" * 32), "HS256"),
    }
    accepted = []
    for name, id_token in broken.items():
        try:
            asyncio.run(verify(id_token))
        except SignInError:
            continue
        accepted.append(name)
    assert accepted == []
