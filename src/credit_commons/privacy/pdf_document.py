"""The drawing half of :mod:`credit_commons.privacy.pdf` (its docstring says what the PDF
holds, its scripts and its fonts): fpdf2 and fontTools, imported by the first render."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fontTools.ttLib import TTFont
from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from credit_commons.privacy.pdf_fonts import EXPORT_FORMAT, FONTS, TITLE, font_files

__all__ = ["draw"]

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
# A table row must fit on one page: a longer value is continued on further rows, and a
# record table is used only when every cell is short.
_CHUNK_CHARS, _CHUNK_LINES = 1500, 30
_CELL_CHARS, _CELL_LINES = 300, 6
_MARGIN = 18  # mm
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SIMPLE_UNTIL = 0x02FF  # Latin and spacing modifiers: no shaping needed
_HEAD = FontFace(emphasis="", fill_color=(232, 232, 232))
_KEY = FontFace(emphasis="", fill_color=(243, 243, 243))


def draw(export: Mapping[str, Any], *, generated_at: datetime) -> bytes:
    """The PDF of ``export`` as bytes: ``export`` and ``generated_at`` as
    :func:`credit_commons.privacy.pdf.render_export_pdf` checked them (the export's format,
    a timezone-aware time); raises nothing of its own."""
    subject = export.get("subject")
    token = subject.get("identity_token") if isinstance(subject, Mapping) else None
    token_text = _printable(_text(token)) if token is not None else "(not present)"
    when = generated_at.astimezone(UTC).isoformat(timespec="seconds")

    pdf = _Document(token_text)
    pdf.set_creation_date(generated_at.astimezone(UTC))
    pdf.add_page()
    pdf.set_font(FONTS[0][0], size=18)
    pdf.multi_cell(0, 10, TITLE, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _key_value_table(
        pdf, [("Identity token", token_text), ("Generated at", when), ("Format", EXPORT_FORMAT)]
    )
    pdf.ln(3)
    pdf.set_font(size=9)
    pdf.multi_cell(
        0,
        5,
        "This document lists everything Credit Commons holds about you: the same data as the "
        "JSON export of this request, including who accessed it and why.",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    keys = [k for k in _SECTIONS if k in export]
    keys += [k for k in export if k not in _SECTIONS and k != "format"]
    for key in keys:
        _heading(pdf, _SECTIONS.get(key, _printable(str(key))))
        _block(pdf, str(key), export[key])
    return bytes(pdf.output())


class _Document(FPDF):
    """An A4 document with the export's fonts and a footer on every page."""

    def __init__(self, token_text: str) -> None:
        super().__init__(format="A4", unit="mm")
        self._token_text = token_text
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(auto=True, margin=_MARGIN)
        self.set_title(TITLE)
        self.set_author("Credit Commons")
        self.set_creator("Credit Commons")
        for family, path in font_files():
            self.add_font(family, "", str(path))
        self.set_fallback_fonts([family for family, _ in FONTS[1:]], exact_match=False)
        self.set_font(FONTS[0][0], size=9)

    def footer(self) -> None:
        """Title, identity token and page number at the foot of each page."""
        self.set_y(-12)
        self.set_font(FONTS[0][0], size=8)
        self.set_text_shaping(use_shaping_engine=False)
        self.cell(0, 5, f"{TITLE} · {self._token_text}", align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Page {self.page_no()}", align="R")


def _heading(pdf: FPDF, text: str) -> None:
    # A heading that would end a page starts the next one instead (it keeps with its table).
    if pdf.will_page_break(24):
        pdf.add_page()
    pdf.ln(4)
    pdf.set_font(size=13)
    _shaping_for(pdf, [text])
    pdf.multi_cell(0, 7, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)


def _block(pdf: FPDF, key: str, value: Any) -> None:
    """One top-level value: always a table, or a note that it is empty."""
    if isinstance(value, Mapping | list | tuple) and not value:
        pdf.set_font(size=9)
        _shaping_for(pdf, [])
        pdf.multi_cell(0, 5, "Nothing held.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return
    if (
        isinstance(value, list | tuple)
        and all(isinstance(v, Mapping) for v in value)
        and any(value)
    ):
        _records(pdf, value)
    elif isinstance(value, Mapping | list | tuple):
        _key_value_table(pdf, list(_flatten(value, "")))
    else:
        _key_value_table(pdf, [(key, value)])


def _records(pdf: FPDF, records: Sequence[Mapping[str, Any]]) -> None:
    """A list of objects: one row per object, or one small table each if too wide for A4."""
    columns = list(dict.fromkeys(str(k) for record in records for k in record))
    rows = [
        [_printable(_text(record[c])) if c in record else "" for c in columns]
        for record in ({str(k): v for k, v in r.items()} for r in records)
    ]
    too_long = any(
        len(cell) > _CELL_CHARS or cell.count("\n") >= _CELL_LINES for r in rows for cell in r
    )
    if len(columns) > _MAX_COLUMNS or too_long:
        for index, record in enumerate(records, start=1):
            pdf.set_font(size=8)
            pdf.multi_cell(0, 5, f"#{index}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            _key_value_table(pdf, list(_flatten(record, "")))
        return
    header = [_printable(c) for c in columns]
    pdf.set_font(size=8)
    _shaping_for(pdf, [*header, *(cell for r in rows for cell in r)])
    with pdf.table(
        headings_style=_HEAD, line_height=4.2, padding=1, text_align="LEFT", repeat_headings=1
    ) as table:
        table.row(header)
        for r in rows:
            table.row(r)
    pdf.ln(2)


def _key_value_table(pdf: FPDF, pairs: Sequence[tuple[str, Any]]) -> None:
    rows: list[tuple[str, str]] = []
    for key, value in pairs:
        for position, chunk in enumerate(_chunks(_printable(_text(value)))):
            rows.append((_printable(key) if position == 0 else "", chunk))
    pdf.set_font(size=8)
    _shaping_for(pdf, [text for row in rows for text in row])
    with pdf.table(
        col_widths=(30, 70),
        first_row_as_headings=False,
        line_height=4.2,
        padding=1,
        text_align="LEFT",
    ) as table:
        for key, value in rows:
            row = table.row()
            row.cell(key, style=_KEY)
            row.cell(value)
    pdf.ln(2)


def _chunks(text: str) -> Iterator[str]:
    """``text`` in pieces that each fit a table row on one page."""
    piece: list[str] = []
    size = 0
    for line in text.split("\n") or [""]:
        for start in range(0, max(len(line), 1), _CHUNK_CHARS):
            part = line[start : start + _CHUNK_CHARS]
            if piece and (size + len(part) > _CHUNK_CHARS or len(piece) >= _CHUNK_LINES):
                yield "\n".join(piece)
                piece, size = [], 0
            piece.append(part)
            size += len(part)
    yield "\n".join(piece)


def _shaping_for(pdf: FPDF, texts: Sequence[str]) -> None:
    # fpdf2 shapes (and applies UAX #9) only while text shaping is on, and a table is drawn
    # when its block ends, so the setting is chosen for the whole table from its texts.
    needed = any(ord(c) > _SIMPLE_UNTIL for text in texts for c in text)
    pdf.set_text_shaping(use_shaping_engine=needed)


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


def _printable(text: str) -> str:
    """``text`` with what cannot be drawn shown as escapes, so that nothing disappears.

    Lone surrogates cannot be encoded into a PDF, control characters are invisible, and a
    character neither font has would print as an empty box (``.notdef``).
    """
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\r\n", "\n")
    text = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    covered = _covered()
    if all(ord(c) in covered or c == "\n" for c in text):
        return text
    return "".join(
        c
        if c == "\n" or ord(c) in covered
        else f"\\u{ord(c):04x}"
        if ord(c) <= 0xFFFF
        else f"\\U{ord(c):08x}"
        for c in text
    )


@functools.cache
def _covered() -> frozenset[int]:
    """Every code point one of the fonts maps to a glyph."""
    points: set[int] = set()
    for _, path in font_files():
        font = TTFont(str(path), lazy=True)
        try:
            points.update(font.getBestCmap())
        finally:
            font.close()
    return frozenset(points)
