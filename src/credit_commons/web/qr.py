"""A URL as a QR code image the console serves (SVG, drawn by ``segno``): the issuer desk's
OID4VCI offers and the lender's OpenID4VP proof requests."""

from __future__ import annotations

import io

import segno
from fastapi.responses import Response

__all__ = ["qr_svg"]


def qr_svg(text: str, *, scale: int) -> Response:
    """``text`` as an SVG QR code (error correction M, a 4-module quiet zone), not cached,
    with a CSP that lets the image load nothing.  Raises ``segno``'s ``DataOverflowError``
    for a text too long for any QR code version."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(
        buffer, kind="svg", scale=scale, border=4, dark="#000", light="#fff", xmldecl=False
    )
    return Response(
        buffer.getvalue(),
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )
