"""French and English for the pages: Babel catalogs (``web/locale/<lang>/LC_MESSAGES/messages.po``), read once at
start-up (no compile step to forget), and the language of a request: ``?lang=`` (then kept in a cookie), the
cookie, the browser's ``Accept-Language``, the service's default."""

from __future__ import annotations

import io
from pathlib import Path

from aiohttp import web
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from config import Language

LOCALES = Path(__file__).with_name("locale")
COOKIE = "lang"


def N_(text: str) -> str:
    """Marks a message for the catalogs where it is written; it is translated where it is shown."""
    return text


def load_catalogs() -> dict[Language, Translations]:
    catalogs = {}
    for language in Language:
        with (LOCALES / language.value / "LC_MESSAGES" / "messages.po").open("rb") as po:
            catalog = read_po(po, locale=language.value)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        catalogs[language] = Translations(compiled)
    return catalogs


def negotiate(request: web.Request, default: Language) -> tuple[Language, bool]:
    """The request's language, and whether it was chosen explicitly now (``?lang=``: remember it)."""
    asked = request.query.get("lang", "")
    if asked in {lang.value for lang in Language}:
        return Language(asked), True
    kept = request.cookies.get(COOKIE, "")
    if kept in {lang.value for lang in Language}:
        return Language(kept), False
    weighted = []
    for order, part in enumerate(request.headers.get("Accept-Language", "").split(",")):
        tag, _, params = part.strip().partition(";")
        try:
            q = float(params.strip().removeprefix("q=")) if params.strip().startswith("q=") else 1.0
        except ValueError:
            q = 0.0
        weighted.append((-q, order, tag.strip().lower()[:2]))
    for _, _, tag in sorted(weighted):
        if tag in {lang.value for lang in Language}:
            return Language(tag), False
    return default, False
