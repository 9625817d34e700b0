"""Every page, as it is met, in real headless Chromium against a real `passerelle serve`, filled with the longest
names, links and addresses the forms accept: no page scrolls sideways on a phone (320 and 390 px), and axe-core
finds no serious or critical accessibility violation, in French and in English, on a phone and a desktop."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.tools import require
from tests.web.site import Site, chromium_args, serving, tone_wav
from tests.web.test_join_browser import launch, path_of

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct horse battery"
# The longest the forms take: a 200-character name without a space, a 2,000-character message, a 254-character
# address, a 60-character display name.
LONG_NAME = "Réunion-de-concertation-pluridisciplinaire-" + "x" * 157
LONG_MESSAGE = ("Merci de vous connecter cinq minutes avant. " * 45)[:1900] + "https://example.org/" + "p" * 80
LONG_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".org"
LONG_DISPLAY = "Dr Marie-Anne-Clotilde de La Tour d'Auvergne-Lauraguais"
SIZES = ((320, 640), (390, 844), (1366, 768))


@dataclass
class Pages:
    site: Site
    signed_in: list[str]  # paths a professional sees
    public: list[str]  # paths anyone sees


def cli(site: Site, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([require("passerelle"), *args], env=site.env, cwd=site.folder, input=stdin,
                          capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    return done.stdout


@contextmanager
def filled_site(folder: Path) -> Iterator[Pages]:
    assert len(LONG_NAME) == 200
    assert len(LONG_EMAIL) == 254
    with serving(folder) as site:
        cli(site, "user", "create", "--username", "dr.martin", "--name", LONG_DISPLAY, "--email",
            "claire.martin@example.org", "--timezone", "Europe/Paris")  # fmt: skip
        cli(site, "user", "password", "dr.martin", stdin=PASSWORD + "\n")
        starts = datetime.now(UTC) + timedelta(days=1)
        planned: dict[str, Any] = json.loads(cli(
            site, "conference", "create", "--json", "--owner", "dr.martin", "--name", LONG_NAME, "--message",
            LONG_MESSAGE, "--entry-code", "48291537", "--start", starts.isoformat(timespec="seconds"), "--end",
            (starts + timedelta(hours=1)).isoformat(timespec="seconds")))  # fmt: skip
        page = f"/conferences/{planned['id']}"
        join = path_of(planned["join_url"])
        yield Pages(site, signed_in=["/", "/plan", page, f"{page}/edit", join, "/left"],
                    public=["/login", join, "/left", "/nowhere"])  # fmt: skip


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", "dr.martin")
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{base}/")


def invite_the_longest(page: Page, base: str, conference_page: str) -> None:
    """Invitees on the conference page with the longest address, without sending (no mail server here)."""
    page.goto(base + conference_page)
    page.fill("#email", LONG_EMAIL)
    page.fill("#phone", "06 12 34 56 78")
    page.uncheck("input[name=send]")
    page.click("#add button[type=submit]")
    page.wait_for_load_state()


def enter_the_personal_room(page: Page, base: str) -> None:
    """The room itself, as its host enters it from the dashboard (listening: no call is needed to look at it)."""
    page.goto(f"{base}/")
    page.click("#room-join")
    page.check('input[value="listen"]')
    page.click("#join-button")
    page.wait_for_url("**/room/**")


def each_page(browser: Browser, pages: Pages, visit: Any) -> None:
    """``visit(page, path, language, size)`` on every page, signed in and not, in both languages and all sizes."""
    setup = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = setup.new_page()
        sign_in(page, pages.site.base)
        invite_the_longest(page, pages.site.base, pages.signed_in[2])
    finally:
        setup.close()
    for language in ("fr-FR", "en-GB"):
        for width, height in SIZES:
            context = browser.new_context(viewport={"width": width, "height": height}, locale=language,
                                          is_mobile=width < 500, has_touch=width < 500, bypass_csp=True)  # fmt: skip
            try:
                page = context.new_page()
                for path in pages.public:
                    page.goto(pages.site.base + path)
                    visit(page, path, language, (width, height))
                sign_in(page, pages.site.base)
                for path in pages.signed_in:
                    page.goto(pages.site.base + path)
                    visit(page, path, language, (width, height))
                enter_the_personal_room(page, pages.site.base)
                visit(page, "/room", language, (width, height))
            finally:
                context.close()


@pytest.mark.e2e
def test_no_page_scrolls_sideways_on_a_phone_with_the_longest_texts(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav")
    wide: list[str] = []

    def visit(page: Page, path: str, language: str, size: tuple[int, int]) -> None:
        page.wait_for_timeout(200)  # the join page's check fills its lines in
        scroll = page.evaluate("document.documentElement.scrollWidth")
        name = path.strip("/").replace("/", "-") or "home"
        page.screenshot(path=str(tmp_path / f"{name}-{language}-{size[0]}.png"), full_page=True)  # to look at
        if size[0] < 500 and scroll > size[0]:
            wide.append(f"{path} ({language}, {size[0]} px): {scroll} px wide")
        header = page.locator("header.bar").bounding_box()
        assert header is not None
        if header["height"] > 110:
            wide.append(f"{path} ({language}, {size[0]} px): the header is {header['height']:.0f} px high")

    with filled_site(tmp_path) as pages, sync_playwright() as p:
        browser = launch(p, chromium_args(mic))
        try:
            each_page(browser, pages, visit)
        finally:
            browser.close()
    assert not wide, "\n".join(wide)


@pytest.mark.e2e
def test_axe_finds_nothing_serious_on_any_page(tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav")
    found: list[str] = []
    checked: list[int] = []  # rules passed on each page: axe did run
    script = AXE.read_text(encoding="utf-8")

    def visit(page: Page, path: str, language: str, size: tuple[int, int]) -> None:
        page.add_script_tag(content=script)
        result = page.evaluate("""async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return {passes: r.passes.length, violations: r.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`)};
        }""")
        checked.append(result["passes"])
        violations = result["violations"]
        found.extend(f"{path} ({language}, {size[0]} px): {v}" for v in violations)

    with filled_site(tmp_path) as pages, sync_playwright() as p:
        browser = launch(p, chromium_args(mic))
        try:
            each_page(browser, pages, visit)
        finally:
            browser.close()
    assert len(checked) == 2 * len(SIZES) * 11
    assert min(checked) > 10, "axe ran its rules on every page"
    assert not found, "\n".join(found)


def contrast(rgb: str, background: tuple[int, int, int] = (255, 255, 255)) -> float:
    """WCAG contrast ratio of a CSS ``rgb(r, g, b)`` colour against ``background``."""

    def luminance(channels: tuple[int, ...]) -> float:
        linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    values = tuple(int(v) for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
    lighter, darker = sorted((luminance(values), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.e2e
def test_the_keyboard_finds_a_skip_link_a_visible_ring_named_chips_and_the_next_step(tmp_path: Path) -> None:
    with filled_site(tmp_path) as pages, sync_playwright() as p:
        browser = launch(p, ["--no-first-run"])
        try:
            page = browser.new_page(locale="fr-FR")
            sign_in(page, pages.site.base)
            page.goto(pages.site.base + "/plan")
            page.keyboard.press("Tab")
            focused = page.evaluate("[document.activeElement.className, document.activeElement.textContent]")
            assert focused == ["skip", "Aller au contenu"], "the first Tab stop skips the header"
            ring = page.evaluate("getComputedStyle(document.activeElement).outlineColor")
            assert contrast(ring) >= 3, f"the focus ring {ring} has {contrast(ring):.1f}:1 on white"
            assert contrast(ring, (0xF4, 0xF6, 0xF8)) >= 3, "and on the page's grey"
            page.keyboard.press("Enter")
            assert page.evaluate("document.activeElement.id") == "main"
            page.fill("#email", "sophie.durand@example.org")
            page.press("#email", "Enter")
            expect(page.get_by_role("button", name="Retirer sophie.durand@example.org")).to_have_count(1)
            page.fill("#name", "Réunion d'équipe")
            page.press("#name", "Enter")
            expect(page.locator("#step-2")).to_be_visible()
            where = page.evaluate("""[document.activeElement.closest("fieldset.step")?.id,
                                      document.activeElement.getClientRects().length > 0]""")
            assert where == ["step-2", True], "the focus moved to the next step's first field"
        finally:
            browser.close()
