"""A URL as a QR code image the console serves (SVG, drawn by ``segno``): the issuer desk's
OID4VCI offers and the lender's OpenID4VP proof requests."""

from __future__ import annotations

import io
from functools import lru_cache

import segno
from fastapi.responses import Response

__all__ = ["qr_svg"]


_DRAWN = 256
"""How many drawn images the process keeps (about 5 KB each)."""


@lru_cache(maxsize=_DRAWN)
def _drawn(text: str, scale: int) -> bytes:
    # The image is a function of the text and the scale alone: drawn once per process for
    # as long as it stays among the last _DRAWN drawn (drawing takes tens of milliseconds,
    # most of the page's time; the caller still looks the offer or request up each time).
    buffer = io.BytesIO()
    segno.make(text, error="m").save(
        buffer, kind="svg", scale=scale, border=4, dark="#000", light="#fff", xmldecl=False
    )
    return buffer.getvalue()


def qr_svg(text: str, *, scale: int) -> Response:
    """``text`` as an SVG QR code (error correction M, a 4-module quiet zone), not cached
    by the browser, with a CSP that lets the image load nothing.  Raises ``segno``'s
    ``DataOverflowError`` for a text too long for any QR code version."""
    return Response(
        _drawn(text, scale),
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )
