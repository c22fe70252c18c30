"""What both halves of the export PDF share — the export format it accepts, its title and
its fonts — so that :mod:`credit_commons.privacy.pdf` (the checks, imported with the HTTP
app) and :mod:`credit_commons.privacy.pdf_document` (the drawing, fpdf2 and fontTools,
imported by the first render) do not import each other."""

from __future__ import annotations

import functools
from pathlib import Path

import fontpkg

__all__ = ["EXPORT_FORMAT", "FONTS", "TITLE", "font_files"]

EXPORT_FORMAT = "credit-commons-export/v1"
"""The only export format the renderer accepts."""

TITLE = "Your data held by Credit Commons"

FONTS = (("cc-sans", "Noto Sans"), ("cc-arabic", "Noto Sans Arabic"))
"""(PDF family, fontpkg family) pairs: the main font first, then the fallback."""


@functools.cache
def font_files() -> tuple[tuple[str, Path], ...]:
    """The packaged font files (see :mod:`credit_commons.privacy.pdf`'s docstring),
    located once per process."""
    return tuple((family, Path(fontpkg.path(name))) for family, name in FONTS)
