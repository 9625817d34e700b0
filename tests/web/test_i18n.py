"""Every message of the pages is in both catalogs (French translated), and the language of a request."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from config import Language, Settings
from rooms import Rooms
from web.i18n import LOCALES, negotiate

ROOT = Path(__file__).parents[2]


def used_messages() -> set[str]:
    method_map = [("web/**.py", "python"), ("web/templates/**.html", "jinja2")]
    found = extract_from_dir(str(ROOT), method_map, keywords={"_": None, "N_": None})
    return {message for _, _, message, _, _ in found if isinstance(message, str) and message}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_message_of_the_pages_is_in_the_catalog(language: str) -> None:
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    used = used_messages()
    assert len(used) > 30
    missing = sorted(m for m in used if m not in catalog)
    assert missing == [], f"not in the {language} catalog: {missing}"
    if language == "fr":
        untranslated = sorted(m for m in used if not catalog[m].string)
        assert untranslated == [], f"no French for: {untranslated}"


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected", "chosen"),
    [
        ("", "", "", Language.FR, False),
        ("?lang=en", "", "fr", Language.EN, True),
        ("?lang=de", "en", "", Language.EN, False),
        ("", "", "de-DE,de;q=0.9,en;q=0.8,fr;q=0.7", Language.EN, False),
        ("", "", "fr;q=0.3, en;q=0.9", Language.EN, False),
        ("", "", "fr-CA", Language.FR, False),
        ("", "", "q=;;,,x", Language.FR, False),
    ],
)
def test_language_of_a_request(query: str, cookie: str, accept: str, expected: Language, chosen: bool) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    if cookie:
        headers["Cookie"] = f"lang={cookie}"
    request = make_mocked_request("GET", "/c/x" + query, headers=headers)
    assert negotiate(request, Language.FR) == (expected, chosen)


def test_every_template_compiles_before_the_first_request(settings: Settings, rooms: Rooms) -> None:
    """``passerelle serve`` compiles them at its start (not at a page, beside the media clock), and the locale
    data of both languages is read then too."""
    from babel import localedata

    from rooms.dates import load_locale_data
    from web.pages import TEMPLATES, Pages

    pages = Pages(settings, rooms, b"k" * 32)
    assert pages.compile_templates() == len(list(Path(TEMPLATES).glob("*.html"))) > 10
    assert not pages.env.auto_reload  # no stat of the file at every page
    load_locale_data(["fr", "en"], "Europe/Paris")
    assert {"fr", "en"} <= set(localedata._cache)
