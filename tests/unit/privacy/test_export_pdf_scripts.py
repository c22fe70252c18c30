"""Names in Indian scripts print in the export PDF (issue 12 item 15).

Three checks on one rendered export holding names in Latin, Devanagari (Hindi, Dogri) and
Perso-Arabic (Urdu, Kashmiri):

1. ``pdftotext`` gives the names back.  Text extraction reconstructs reading order from glyph
   positions, so it is normalised in a principled way before comparing: NFKC (presentation
   forms to letters), the bidi embedding controls poppler adds around right-to-left runs
   removed, whitespace removed (poppler infers word breaks from gaps, and shaped glyph
   advances make it add spaces inside words), and combining marks compared as a multiset
   (poppler orders a mark positioned by GPOS by its x position, which in right-to-left text
   can put it on the far side of its base letter).
2. Every glyph drawn exists in the font program embedded in the PDF (read with fontTools):
   never ``.notdef`` (the empty box), never an empty outline except for a space.
3. The glyphs drawn are the shaper's: each name shaped with HarfBuzz over the packaged font
   gives glyphs — joined Arabic letter forms, Devanagari conjuncts — whose outlines all appear
   among the glyphs the PDF draws with that font.

poppler-utils is a test dependency; without it these tests fail rather than skip.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uharfbuzz as hb
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from pypdf.generic import ContentStream

from credit_commons.privacy import pdf, pdf_fonts
from credit_commons.privacy.pdf import render_export_pdf

NAMES = {
    "latin": "Ravi Kumar Sharma",
    "hindi": "राम कुमार शर्मा",
    "hindi_conjuncts": "क्षत्रिय श्रीनिवास",
    "dogri": "ओम प्रकाश डोगरा",
    "urdu": "محمد علی خان",
    "urdu_letters": "نور جہاں بیگم",
    "kashmiri": "مہجوٗر",
    "kashmiri_letters": "لل دێد",
}
_BIDI_CONTROLS = dict.fromkeys(
    [0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)], None
)


def _export() -> dict[str, Any]:
    return {
        "format": "credit-commons-export/v1",
        "subject": {"identity_token": "idt_Ab3dEf6hIj9kLm"},
        "profile": dict(NAMES),
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scripts") / "export.pdf"
    path.write_bytes(render_export_pdf(_export(), generated_at=datetime(2026, 3, 1, tzinfo=UTC)))
    return path


def _normalise(text: str) -> tuple[str, Counter[str]]:
    """(base letters without whitespace, multiset of combining marks) — see the docstring."""
    text = unicodedata.normalize("NFKC", text).translate(_BIDI_CONTROLS)
    marks = Counter(c for c in text if unicodedata.category(c) == "Mn")
    base = "".join(c for c in text if not c.isspace() and unicodedata.category(c) != "Mn")
    return base, marks


def test_the_names_extract_back(rendered: Path) -> None:
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.fail("pdftotext not found: install poppler-utils")
    out = subprocess.run(
        [tool, "-enc", "UTF-8", str(rendered), "-"], check=True, capture_output=True
    ).stdout.decode("utf-8")
    lines = [_normalise(line) for line in out.splitlines()]
    for key, name in NAMES.items():
        base, marks = _normalise(name)
        # The name is one table cell, so one line of the extracted text holds it whole.
        assert any(base in line and marks <= found for line, found in lines), (key, name)


def _fonts_and_glyphs(path: Path) -> dict[str, tuple[TTFont, set[int]]]:
    """Per embedded font (by base name): its font program and the glyph ids drawn with it."""
    reader = PdfReader(str(path))
    found: dict[str, tuple[TTFont, set[int]]] = {}
    for page in reader.pages:
        resources = page["/Resources"]["/Font"]
        programs: dict[str, tuple[str, TTFont, bytes | None]] = {}
        for name, ref in resources.items():
            font = ref.get_object()
            assert font["/Subtype"] == "/Type0"
            assert font["/Encoding"] == "/Identity-H"
            descendant = font["/DescendantFonts"][0].get_object()
            program = TTFont(io.BytesIO(descendant["/FontDescriptor"]["/FontFile2"].get_data()))
            mapping = descendant.get("/CIDToGIDMap")
            table = None if mapping is None or mapping == "/Identity" else mapping.get_data()
            programs[name] = (str(font["/BaseFont"]).split("+")[-1], program, table)
        # The text font is part of the graphics state (ISO 32000-1 §8.4.1): q saves it, Q
        # restores it.
        current = None
        saved: list[Any] = []
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"q":
                saved.append(current)
            elif operator == b"Q":
                current = saved.pop()
            elif operator == b"Tf":
                current = programs[operands[0]]
            elif operator in (b"Tj", b"TJ"):
                assert current is not None
                base, program, table = current
                strings = operands[0] if operator == b"TJ" else [operands[0]]
                glyphs = found.setdefault(base, (program, set()))[1]
                for item in strings:
                    if isinstance(item, int | float):
                        continue
                    raw = item.original_bytes
                    for i in range(0, len(raw), 2):
                        cid = int.from_bytes(raw[i : i + 2], "big")
                        gid = cid if table is None else int.from_bytes(table[2 * cid : 2 * cid + 2])
                        glyphs.add(gid)
    return found


def test_every_drawn_glyph_exists_in_the_embedded_font(rendered: Path) -> None:
    found = _fonts_and_glyphs(rendered)
    assert set(found) == {"NotoSans", "NotoSansArabic"}
    for base, (program, glyphs) in found.items():
        order = program.getGlyphOrder()
        glyf = program["glyf"]
        for gid in glyphs:
            assert 0 < gid < len(order), (base, gid)  # gid 0 is .notdef, the empty box
            name = order[gid]
            assert name == "space" or glyf[name].numberOfContours != 0, (base, name)


def _outline(font: TTFont, name: str) -> tuple[Any, ...]:
    coordinates, ends, _ = font["glyf"][name].getCoordinates(font["glyf"])
    return (tuple(coordinates), tuple(ends))


def test_the_drawn_glyphs_are_the_shapers(rendered: Path) -> None:
    found = _fonts_and_glyphs(rendered)
    for (family, font_name), names in (
        (pdf.FONTS[0], [NAMES["hindi"], NAMES["hindi_conjuncts"], NAMES["dogri"]]),
        (pdf.FONTS[1], [NAMES["urdu"], NAMES["urdu_letters"], NAMES["kashmiri_letters"]]),
    ):
        path = dict(pdf_fonts.font_files())[family]
        source = TTFont(str(path))
        blob = hb.Blob.from_file_path(str(path))
        face = hb.Face(blob)
        nominal = set(source.getBestCmap().values())
        program, drawn = found[font_name.replace(" ", "")]
        drawn_outlines = {_outline(program, program.getGlyphOrder()[g]) for g in drawn}
        contextual = 0
        for text in names:
            buffer = hb.Buffer()
            buffer.add_str(text)
            buffer.guess_segment_properties()
            hb.shape(hb.Font(face), buffer)
            for info in buffer.glyph_infos:
                glyph = source.getGlyphOrder()[info.codepoint]
                if glyph == "space":
                    continue
                contextual += glyph not in nominal
                assert _outline(source, glyph) in drawn_outlines, (text, glyph)
        # Shaping really mattered: joined forms and conjuncts are not the cmap's own glyphs.
        assert contextual > 0, font_name


def test_a_character_no_font_has_prints_as_an_escape(tmp_path: Path) -> None:
    export = _export()
    export["profile"] = {"name": "Ravi 漢 \U0001f600"}
    path = tmp_path / "export.pdf"
    path.write_bytes(render_export_pdf(export, generated_at=datetime(2026, 3, 1, tzinfo=UTC)))
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True
    ).stdout.decode("utf-8")
    assert "Ravi \\u6f22 \\U0001f600" in out
