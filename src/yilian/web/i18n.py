"""The pages' languages: Simplified Chinese first, English beside it.

Templates and views write English message ids (`_("Bed board")`); the zh_CN catalogue
(locale/zh_CN/LC_MESSAGES/messages.po, Babel's format) gives the Chinese. Catalogues are read
from their .po files when first used, so there is no build step; a missing translation shows
the English id rather than nothing.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LANGUAGE_COOKIE = "yl_lang"
_DIRECTORY = Path(__file__).parent / "locale"
current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)


@cache
def translations(locale: str) -> NullTranslations:
    source = _DIRECTORY / locale / "LC_MESSAGES" / "messages.po"
    if not source.exists():
        return NullTranslations()  # English: the message ids themselves
    with source.open("rb") as po:
        catalog = read_po(po, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled)


def gettext(message: str) -> str:
    return translations(current_locale.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ngettext(singular, plural, n)


def locale_of(cookie: str | None, accept_language: str | None) -> str:
    """The reader's language: their choice (cookie), else Chinese unless the browser asks
    for English first."""
    if cookie in LOCALES:
        return cookie
    first = (accept_language or "").split(",")[0].strip().lower()
    return "en" if first.startswith("en") else DEFAULT_LOCALE


def html_lang(locale: str) -> str:
    return "zh-CN" if locale == "zh_CN" else "en"
