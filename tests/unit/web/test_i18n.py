"""The console's languages: negotiation (cookie, Accept-Language, English), Urdu right to
left, dates and numbers in the visitor's locale, and complete catalogues — every msgid a
template or a page module uses has a non-empty translation in Hindi and Urdu (so each
area's own catalogue is checked here too)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from jinja2 import Environment

from credit_commons.web import i18n
from credit_commons.web.render import environment

WEB = Path(str(resources.files("credit_commons.web")))
TRANSLATED = ("hi", "ur")


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "en"),
        (None, "", "en"),
        (None, "hi", "hi"),
        (None, "hi-IN,hi;q=0.9,en;q=0.8", "hi"),
        (None, "ur-PK", "ur"),
        (None, "fr, ur;q=0.5, hi;q=0.4", "ur"),
        (None, "en;q=0.1, hi;q=0.9", "hi"),
        (None, "hi;q=0, en", "en"),
        (None, "de, fr", "en"),
        (None, "*", "en"),
        (None, ";;;,,q=x,hi;q=abc", "en"),
        ("ur", "hi", "ur"),
        ("hi", None, "hi"),
        ("xx", "ur", "ur"),
        ("", "hi", "hi"),
    ],
)
def test_negotiation(cookie: str | None, header: str | None, expected: str) -> None:
    assert i18n.negotiate(cookie, header).code == expected


def test_urdu_is_right_to_left() -> None:
    directions = {language.code: language.direction for language in i18n.LANGUAGES}
    assert directions == {"en": "ltr", "hi": "ltr", "ur": "rtl"}


def test_numbers_and_dates_follow_the_locale() -> None:
    hindi, english, urdu = (i18n.language_of(c) for c in ("hi", "en", "ur"))
    assert hindi is not None
    assert english is not None
    assert urdu is not None
    assert i18n.format_number(1234567, hindi) == "12,34,567"  # Indian digit grouping
    assert i18n.format_number(1234567.5, english) == "12,34,567.5"
    day = date(2026, 12, 6)
    assert "2026" in i18n.format_day(day, english)
    assert i18n.format_day(day, hindi) != i18n.format_day(day, english)
    assert i18n.format_day(day, urdu) != i18n.format_day(day, english)
    # 18:30 UTC is midnight in India Standard Time: the date shown is the next day's.
    moment = datetime(2026, 12, 6, 18, 30, tzinfo=UTC)
    assert "7" in i18n.format_moment(moment, english, "short").split(",")[0]


def test_filters_render_in_the_language() -> None:
    template = environment("hi").from_string("{{ 1234567 | number }} {{ d | day }}")
    rendered = template.render(d=date(2026, 1, 2))
    assert rendered.startswith("12,34,567 ")
    assert "2026" in rendered


def _used_msgids() -> dict[str, set[str]]:
    """Every msgid the console uses: in its templates (Jinja2's Babel extractor, new-style
    gettext) and in its Python modules (``_``, ``gettext`` and the ``N_`` marker)."""
    method_map = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found: dict[str, set[str]] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(
        str(WEB), method_map, options, keywords=keywords
    ):
        ids = message if isinstance(message, tuple) else (message,)
        for msgid in ids:
            if msgid:
                found.setdefault(msgid, set()).add(filename)
    return found


def test_the_extractor_finds_the_templates_messages() -> None:
    used = _used_msgids()
    assert "Skip to main content" in used  # base.html
    assert "You are signed in." in used  # N_ in signin.py
    assert len(used) > 40


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_used_msgid_is_translated(code: str) -> None:
    translated: dict[str, str] = {}
    for catalogue in i18n.read_catalogues(code).values():
        for message in catalogue:
            if message.id and not message.fuzzy:
                msgid = message.id if isinstance(message.id, str) else message.id[0]
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                if all(strings):
                    translated[msgid] = strings[0]
    missing = {m: sorted(f) for m, f in _used_msgids().items() if m not in translated}
    assert not missing, f"untranslated in {code}: {missing}"


@pytest.mark.parametrize("code", ["en", *TRANSLATED])
def test_no_msgid_is_defined_in_two_files(code: str) -> None:
    seen: dict[str, str] = {}
    for name, catalogue in i18n.read_catalogues(code).items():
        for message in catalogue:
            if message.id:
                msgid = message.id if isinstance(message.id, str) else message.id[0]
                assert msgid not in seen, f"{msgid!r} in {seen.get(msgid)} and {name}"
                seen[msgid] = name


def test_translations_are_merged_from_every_file(tmp_path: Path) -> None:
    assert "core.po" in i18n.catalogue_files("hi")
    translations = i18n.load_translations()
    assert translations["hi"].gettext("Sign in") == "साइन इन करें"
    assert translations["ur"].gettext("Sign in") == "سائن ان کریں"
    assert translations["en"].gettext("Sign in") == "Sign in"


def test_placeholders_survive_translation() -> None:
    for code in TRANSLATED:
        rendered = (
            environment(code)
            .from_string('{{ _("Signed in as %(name)s", name=who) }}')
            .render(who="<b>Asha</b>")
        )
        assert "&lt;b&gt;Asha&lt;/b&gt;" in rendered  # escaped, and present


def _reference(code: str) -> Environment:
    # The environment as jinja2.ext.i18n alone makes it: its own ``_`` (which resolves
    # ``gettext`` and calls it through the context), the same translations.
    env = Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(i18n.load_translations()[code], newstyle=True)  # type: ignore[attr-defined]
    return env


@pytest.mark.parametrize("code", ["en", *TRANSLATED])
def test_underscore_renders_what_the_i18n_extension_renders(code: str) -> None:
    # render.py's direct ``_`` against the extension's, for every msgid the console uses
    # and its catalogue holds, with and without autoescaping, twice (the second time from
    # the kept translations), and with variables to escape and a literal %%.
    messages = [*sorted(_used_msgids()), "100%% sure", "<i>%(who)s</i> at %(n)s", "no such"]
    source = (
        "{% for m in ms %}{% set v = vs if '%(' in m else {} %}[{{ _(m, **v) }}"
        "|{% autoescape false %}{{ _(m, **v) }}{% endautoescape %}]{% endfor %}"
    )
    names = {name for m in messages for name in re.findall(r"%\((\w+)\)", m)}
    values = {"ms": messages, "vs": dict.fromkeys(names, "<b>Asha & co</b>") | {"n": 7}}
    expected = _reference(code).from_string(source).render(values)
    fast = environment(code).from_string(source)
    assert fast.render(values) == expected
    assert fast.render(values) == expected
