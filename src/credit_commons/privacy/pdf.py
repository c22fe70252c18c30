"""A data-subject export (``credit-commons-export/v1``) rendered as a PDF for the borrower.

The PDF holds everything the JSON export holds: the known sections get a heading and a table
each, and any other top-level key is rendered the same generic way rather than dropped.  Every
string goes through :func:`_markup`, because platypus paragraphs parse a small XML dialect and a
name such as ``A & B <x>`` must print literally instead of breaking the document.

Output is byte-for-byte deterministic for the same export, ``generated_at`` and installed fonts:
the document is built with ``invariant=True``, which fixes the creation date and document id.

Fonts: the first font under the system font directories that covers both Latin and Devanagari
(GNU FreeFont, Noto Sans Devanagari) is embedded; failing that, one that covers Latin (Noto Sans,
DejaVu Sans, Liberation Sans); failing that, the built-in Helvetica.  Text never crashes the
renderer, but glyphs the chosen font lacks (Devanagari in DejaVu or Helvetica) print as blanks
or boxes, and reportlab does not shape Indic scripts, so conjuncts may look unjoined.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.platypus import (
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from credit_commons.core.errors import ValidationError

__all__ = ["EXPORT_FORMAT", "render_export_pdf"]

EXPORT_FORMAT = "credit-commons-export/v1"
"""The only export format this renderer accepts."""

TITLE = "Your data held by Credit Commons"

# Known sections, in the order a borrower reads them; other keys follow in the export's order.
_SECTIONS = {
    "subject": "Who you are",
    "profile": "Profile",
    "attributes": "Attributes",
    "identifiers": "Identifiers (held only as pseudonyms)",
    "delegations": "Delegations",
    "credentials": "Credentials",
    "consents": "Consents",
    "access_history": "Who accessed your data",
    "events": "Events",
}
# More columns than this do not fit across A4, so such records are printed one by one.
_MAX_COLUMNS = 6
_MARGIN = 18 * mm
_WIDTH = A4[0] - 2 * _MARGIN
_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
# (regular, bold) file names, best first; coverage is checked on the font itself, not assumed.
_CANDIDATES = (
    ("FreeSans.ttf", "FreeSansBold.ttf"),
    ("NotoSansDevanagari-Regular.ttf", "NotoSansDevanagari-Bold.ttf"),
    ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),
    ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
)
_LATIN = "AZaz09&<>@.:-_/"
_DEVANAGARI = "रामकुमार"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class _Fonts(NamedTuple):
    regular: str
    bold: str
    devanagari: bool


_HELVETICA = _Fonts("Helvetica", "Helvetica-Bold", devanagari=False)


def render_export_pdf(export: Mapping[str, Any], *, generated_at: datetime) -> bytes:
    """Render a data-subject export as an A4 PDF and return its bytes.

    ``generated_at`` (timezone-aware) is printed in the header; the same export and time give
    the same bytes.  Raises :class:`ValidationError` if ``export`` is not a mapping, its
    ``format`` is not ``credit-commons-export/v1``, or ``generated_at`` is naive.
    """
    return _render(export, generated_at, _system_fonts())


def _render(export: Mapping[str, Any], generated_at: datetime, fonts: _Fonts) -> bytes:
    if not isinstance(export, Mapping):
        raise ValidationError("the export must be a JSON object", extra={"field": "export"})
    if export.get("format") != EXPORT_FORMAT:
        raise ValidationError(
            "unsupported export format",
            hint=f"expected format {EXPORT_FORMAT!r}",
            extra={"field": "format"},
        )
    if generated_at.tzinfo is None or generated_at.utcoffset() is None:
        raise ValidationError(
            "generated_at must be timezone-aware", extra={"field": "generated_at"}
        )
    styles = _Styles(fonts)
    subject = export.get("subject")
    token = subject.get("identity_token") if isinstance(subject, Mapping) else None
    token_text = _text(token) if token is not None else "(not present)"
    when = generated_at.astimezone(UTC).isoformat(timespec="seconds")

    story: list[Any] = [
        Paragraph(_markup(TITLE), styles.title),
        _key_value_table(
            [("Identity token", token_text), ("Generated at", when), ("Format", EXPORT_FORMAT)],
            styles,
        ),
        Spacer(1, 4 * mm),
        Paragraph(
            "This document lists everything Credit Commons holds about you: the same data as "
            "the JSON export of this request, including who accessed it and why.",
            styles.body,
        ),
    ]
    keys = [k for k in _SECTIONS if k in export]
    keys += [k for k in export if k not in _SECTIONS and k != "format"]
    for key in keys:
        story.append(Paragraph(_markup(_SECTIONS.get(key, str(key))), styles.heading))
        story.extend(_block(str(key), export[key], styles))

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(fonts.regular, 8)
        canvas.drawString(_MARGIN, 10 * mm, f"{TITLE} · {token_text}")
        canvas.drawRightString(A4[0] - _MARGIN, 10 * mm, f"Page {doc.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title=TITLE,
        author="Credit Commons",
        creator="Credit Commons",
        invariant=True,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


class _Styles:
    def __init__(self, fonts: _Fonts) -> None:
        self.title = ParagraphStyle("cc-title", fontName=fonts.bold, fontSize=18, leading=24)
        self.heading = ParagraphStyle(
            "cc-heading", fontName=fonts.bold, fontSize=13, leading=17, spaceBefore=12,
            spaceAfter=6, keepWithNext=True,
        )  # fmt: skip
        self.body = ParagraphStyle("cc-body", fontName=fonts.regular, fontSize=9, leading=12)
        self.cell = ParagraphStyle("cc-cell", fontName=fonts.regular, fontSize=8, leading=10)
        self.head = ParagraphStyle("cc-head", fontName=fonts.bold, fontSize=8, leading=10)


def _block(key: str, value: Any, styles: _Styles) -> list[Any]:
    """The flowables for one top-level value: always a table, or a note that it is empty."""
    if isinstance(value, Mapping | list | tuple) and not value:
        return [Paragraph("Nothing held.", styles.body)]
    if (
        isinstance(value, list | tuple)
        and all(isinstance(v, Mapping) for v in value)
        and any(value)
    ):
        return _records(value, styles)
    if isinstance(value, Mapping | list | tuple):
        return [_key_value_table(list(_flatten(value, "")), styles)]
    return [_key_value_table([(key, value)], styles)]


def _records(records: Sequence[Mapping[str, Any]], styles: _Styles) -> list[Any]:
    """A list of objects: one row per object, or one small table each if too wide for A4."""
    columns = list(dict.fromkeys(str(k) for record in records for k in record))
    if len(columns) > _MAX_COLUMNS:
        blocks: list[Any] = []
        for index, record in enumerate(records, start=1):
            blocks.append(Paragraph(f"#{index}", styles.head))
            blocks.append(_key_value_table(list(_flatten(record, "")), styles))
        return blocks
    rows = [[Paragraph(_markup(c), styles.head) for c in columns]]
    for record in records:
        cells = {str(k): v for k, v in record.items()}
        rows.append(
            [
                Paragraph(_markup(_text(cells[c])) if c in cells else "", styles.cell)
                for c in columns
            ]
        )
    return [_table(rows, [_WIDTH / len(columns)] * len(columns), header=True)]


def _key_value_table(pairs: Sequence[tuple[str, Any]], styles: _Styles) -> Any:
    rows = [
        [Paragraph(_markup(key), styles.head), Paragraph(_markup(_text(value)), styles.cell)]
        for key, value in pairs
    ]
    return _table(rows, [_WIDTH * 0.3, _WIDTH * 0.7], header=False)


def _table(rows: list[list[Any]], widths: list[float], *, header: bool) -> Any:
    # splitInRow lets a single very long value (a credential, say) continue on the next page
    # instead of failing the whole document with a LayoutError.
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0, splitInRow=1)
    commands: list[tuple[Any, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")))
    else:
        commands.append(("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f3f3f3")))
    table.setStyle(TableStyle(commands))
    return table


def _flatten(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Leaves of a nested value with their paths (``delegations[0].permissions[1]``)."""
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple) and value:
        for index, item in enumerate(value):
            yield from _flatten(item, f"{path}[{index}]")
    else:
        yield path, value


def _text(value: Any) -> str:
    """A value as the borrower would read it in the JSON: strings bare, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def _markup(text: str) -> str:
    """Escape text for platypus' paragraph markup, keeping line breaks and odd characters."""
    # Lone surrogates cannot be encoded into the PDF, and control characters are invisible;
    # both are shown as escapes so that nothing the export holds silently disappears.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\r\n", "\n")
    text = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\n", "<br/>")


@functools.cache
def _system_fonts() -> _Fonts:
    """The best installed font (see the module docstring), registered once per process."""
    found: dict[str, Path] = {}
    for directory in _FONT_DIRS:
        if directory.is_dir():
            for path in sorted(directory.rglob("*.ttf")):
                found.setdefault(path.name, path)
    latin_only: _Fonts | None = None
    for regular, bold in _CANDIDATES:
        if regular not in found:
            continue
        try:
            font = TTFont(f"cc-{Path(regular).stem}", str(found[regular]))
        except (TTFError, OSError):
            continue
        glyphs = font.face.charToGlyph
        if not all(ord(c) in glyphs for c in _LATIN):
            continue
        devanagari = all(ord(c) in glyphs for c in _DEVANAGARI)
        if devanagari or latin_only is None:
            pdfmetrics.registerFont(font)
            bold_name = font.fontName
            if bold in found:
                try:
                    bold_font = TTFont(f"cc-{Path(bold).stem}", str(found[bold]))
                    pdfmetrics.registerFont(bold_font)
                    bold_name = bold_font.fontName
                except (TTFError, OSError):
                    pass
            chosen = _Fonts(font.fontName, bold_name, devanagari=devanagari)
            if devanagari:
                return chosen
            latin_only = chosen
    return latin_only or _HELVETICA
