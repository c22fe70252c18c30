"""A data-subject export (``credit-commons-export/v1``) rendered as a PDF for the borrower.

The PDF holds everything the JSON export holds: the known sections get a heading and a table
each, and any other top-level key is rendered the same generic way rather than dropped.  Text
is drawn literally (fpdf2 parses no markup unless asked), so a name such as ``A & B <x>``
prints as written.

Scripts.  Borrowers' names are written in Latin, Devanagari (Hindi, Dogri, Marathi, …) and
Perso-Arabic (Urdu, Kashmiri).  Devanagari needs a shaper (conjuncts, reordered vowel signs,
reph) and Perso-Arabic needs one too (joined letter forms) plus the Unicode Bidirectional
Algorithm (UAX #9) to run right to left.  fpdf2 does both: it shapes each run with HarfBuzz
(uharfbuzz) and orders runs with its own UAX #9 implementation; a glyph missing from the main
font is taken from the fallback font.  Shaping is switched on only for a table that holds a
character past U+02FF, because Latin needs none and shaping costs about three times the time.

Fonts come from Python packages, never from the system or the network: Noto Sans (Latin,
Greek, Cyrillic and Devanagari) from ``fontpkg-noto-sans`` and Noto Sans Arabic (Arabic,
Urdu, Kashmiri, Sindhi letters) from ``fontpkg-noto-sans-arabic`` — the google/fonts files,
unmodified, under the SIL Open Font License 1.1 (each package carries the licence).  Only the
glyphs used are embedded.  A character neither font has is printed as a ``\\uXXXX`` escape,
like control characters, so that nothing the export holds silently becomes an empty box.

Output is byte-for-byte deterministic for the same export, ``generated_at`` and installed
packages: the creation date is ``generated_at``, and fpdf2 derives the document id from the
content.

The drawing (fpdf2 with fontTools, and numpy through fpdf2's image support: about half a
second of CPU to import) is in :mod:`credit_commons.privacy.pdf_document`, imported by the
first render rather than by every process that imports this module (``commons serve`` does,
through the privacy routes).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from credit_commons.core.errors import ValidationError
from credit_commons.privacy import pdf_document
from credit_commons.privacy.pdf_fonts import EXPORT_FORMAT, FONTS

__all__ = ["EXPORT_FORMAT", "FONTS", "render_export_pdf"]


def render_export_pdf(export: Mapping[str, Any], *, generated_at: datetime) -> bytes:
    """Render a data-subject export as an A4 PDF and return its bytes.

    ``generated_at`` (timezone-aware) is printed in the header; the same export and time give
    the same bytes.  Raises :class:`ValidationError` if ``export`` is not a mapping, its
    ``format`` is not ``credit-commons-export/v1``, or ``generated_at`` is naive.
    """
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
    return pdf_document.draw(export, generated_at=generated_at)
