"""The console's QR images (web/qr.py): each the drawing of its own text, drawn once."""

from __future__ import annotations

import io

import segno

from credit_commons.web import qr


def _drawn_now(text: str, scale: int) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(
        buffer, kind="svg", scale=scale, border=4, dark="#000", light="#fff", xmldecl=False
    )
    return buffer.getvalue()


def test_each_image_is_its_own_texts_drawing_and_is_drawn_once() -> None:
    first = "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fa.example%2Fo1"
    second = "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fa.example%2Fo2"
    before = qr._drawn.cache_info()
    one = qr.qr_svg(first, scale=5)
    again = qr.qr_svg(first, scale=5)
    other = qr.qr_svg(second, scale=5)
    larger = qr.qr_svg(first, scale=6)
    assert one.body == again.body == _drawn_now(first, 5)
    assert other.body == _drawn_now(second, 5)
    assert larger.body == _drawn_now(first, 6)
    assert len({one.body, other.body, larger.body}) == 3
    after = qr._drawn.cache_info()
    assert after.misses - before.misses == 3  # the second request of ``first`` was not drawn
    assert after.hits - before.hits == 1
    assert after.maxsize == qr._DRAWN
    for response in (one, again, other):
        assert response.media_type == "image/svg+xml"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-security-policy"] == "default-src 'none'"
