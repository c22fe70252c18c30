"""Languages of the console: English, Hindi and Urdu, their message catalogues, the choice
of a request's language, and dates and numbers written the way each language writes them.

A request's language is, in order: the ``lang`` cookie the language switch sets, the
browser's ``Accept-Language`` (Babel's ``negotiate_locale``), English.  Urdu is written
right to left (``<html lang="ur" dir="rtl">``).

Catalogues are gettext ``.po`` files under ``web/locale/<lang>/LC_MESSAGES/``.  *Every*
``.po`` file of a language is read and merged when the catalogues are loaded, so each part
of the console owns its own file (``borrower.po``, ``lender.po``…) and nobody edits a shared
one; no compiled ``.mo`` is kept.  A msgid defined twice keeps the first file's (in file-name
order), so a duplicate is harmless but should be avoided: the completeness test reports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from io import BytesIO

from babel import Locale, negotiate_locale
from babel.dates import format_date, format_datetime, get_timezone
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

__all__ = [
    "COOKIE",
    "DEFAULT",
    "LANGUAGES",
    "N_",
    "Language",
    "catalogue_files",
    "format_day",
    "format_moment",
    "format_number",
    "language_of",
    "load_translations",
    "negotiate",
    "read_catalogues",
]

COOKIE = "lang"
"""The cookie the language switch sets (a language code, not personal)."""


@dataclass(frozen=True)
class Language:
    """A language of the console: its code, its name written in itself, its direction."""

    code: str
    name: str
    direction: str = "ltr"


LANGUAGES: tuple[Language, ...] = (
    Language("en", "English"),
    Language("hi", "हिन्दी"),
    Language("ur", "اردو", "rtl"),
)
"""The console's languages, in the order the switch lists them."""
DEFAULT = LANGUAGES[0]
_BY_CODE: dict[str, Language] = {language.code: language for language in LANGUAGES}


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional marker name
    """Mark ``message`` for extraction without translating it here (a label kept in Python
    and translated where it is rendered, ``{{ _(label) }}``)."""
    return message


def language_of(code: str | None) -> Language | None:
    """The console language whose code is ``code``, or None."""
    return _BY_CODE.get(code or "")


def negotiate(cookie: str | None, accept_language: str | None) -> Language:
    """The language of a request: its ``lang`` cookie if it names one of ours, else the
    best of ``Accept-Language`` (q-values honoured, ``hi-IN`` matches ``hi``), else
    English.  Raises nothing: a malformed header counts as absent."""
    chosen = language_of(cookie)
    if chosen is not None:
        return chosen
    preferred = _preferences(accept_language or "")
    best = negotiate_locale(preferred, [language.code for language in LANGUAGES], sep="-")
    if best is None:
        # "hi-IN" alone is not matched by negotiate_locale against "hi": try the bases.
        best = next((p.split("-")[0] for p in preferred if p.split("-")[0] in _BY_CODE), None)
    return _BY_CODE.get(best or "", DEFAULT)


def _preferences(header: str) -> list[str]:
    # RFC 9110 §12.5.4: "en-GB;q=0.8, hi" — ranges ordered by q, q=0 meaning "not this".
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:32]):
        parts = [part.strip() for part in item.split(";")]
        tag = parts[0].lower()
        if not tag or tag == "*" or len(tag) > 35:
            continue
        quality = 1.0
        for parameter in parts[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag))
    return [tag for _q, _p, tag in sorted(ranked)]


def catalogue_files(code: str) -> list[str]:
    """The names of the ``.po`` files of language ``code``, in the order they are merged."""
    folder = resources.files("credit_commons.web") / "locale" / code / "LC_MESSAGES"
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".po"))


def load_translations() -> Mapping[str, Translations]:
    """Every language's translations, each merged from all its ``.po`` files (English has
    none to speak of: its msgids are the English text).  Raises what Babel raises for a
    malformed ``.po`` file, so a broken catalogue stops the start."""
    loaded: dict[str, Translations] = {}
    for language in LANGUAGES:
        merged = Catalog(locale=language.code)
        for catalogue in read_catalogues(language.code).values():
            for message in catalogue:
                if message.id and message.string and not message.fuzzy and message.id not in merged:
                    merged[message.id] = message
        compiled = BytesIO()
        write_mo(compiled, merged)  # in memory: gettext reads the compiled form
        compiled.seek(0)
        loaded[language.code] = Translations(compiled)
    return loaded


def read_catalogues(code: str) -> dict[str, Catalog]:
    """Each ``.po`` file of language ``code``, read, by file name (merge order).  Raises
    what Babel raises for a malformed file."""
    folder = resources.files("credit_commons.web") / "locale" / code / "LC_MESSAGES"
    return {
        name: read_po(BytesIO((folder / name).read_bytes()), locale=code)
        for name in catalogue_files(code)
    }


_INDIA = get_timezone("Asia/Kolkata")


_LOCALES = {"en": "en_IN", "hi": "hi_IN", "ur": "ur_IN"}


@cache
def _locale(code: str) -> Locale:
    # Hindi and Urdu as written in India: Indian digit grouping (12,34,567) for Hindi.
    # Parsed once per language: Babel's format functions take the Locale as it is, while
    # a locale name is parsed into a new Locale at every call (a page formats dozens of
    # dates and numbers).
    return Locale.parse(_LOCALES[code])


def format_day(value: date, language: Language, style: str = "medium") -> str:
    """``value`` (a date) as ``language`` writes dates."""
    return format_date(value, format=style, locale=_locale(language.code))


def format_moment(value: datetime, language: Language, style: str = "medium") -> str:
    """``value`` (an aware datetime, shown in India Standard Time) as ``language`` writes
    dates and times."""
    return format_datetime(value, format=style, tzinfo=_INDIA, locale=_locale(language.code))


def format_number(value: float | int, language: Language) -> str:
    """``value`` as ``language`` writes numbers (Hindi groups digits the Indian way)."""
    return format_decimal(value, locale=_locale(language.code))
