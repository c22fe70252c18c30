"""A lender's TLS client certificate, as the platform knows it: its RFC 8705 §3.1
thumbprint ``x5t#S256``, the base64url SHA-256 of the certificate's DER encoding.

The platform keeps the thumbprint only.  An administrator registers either the certificate
(PEM; its thumbprint is taken here) or the thumbprint itself; the gateway takes the
thumbprint of the certificate a trusted TLS proxy forwards (``gateway/client_cert.py``) with
the same function, so the two always compare like with like.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from credit_commons.core.clock import utc
from credit_commons.core.encoding import b64url_encode
from credit_commons.core.errors import ValidationError

__all__ = [
    "MAX_CERTIFICATE_PEM",
    "THUMBPRINT_PATTERN",
    "certificate_thumbprint",
    "validate_thumbprint",
]

THUMBPRINT_PATTERN = r"^[A-Za-z0-9_-]{43}$"
"""An unpadded base64url SHA-256 digest: 43 characters."""
MAX_CERTIFICATE_PEM = 16 * 1024
_THUMBPRINT = re.compile(THUMBPRINT_PATTERN)
_BEGIN = "-----BEGIN CERTIFICATE-----"


def certificate_thumbprint(pem: str, *, field: str, now: datetime | None = None) -> str:
    """The ``x5t#S256`` of the one X.509 certificate in ``pem``.

    With ``now``, a certificate not valid at that time is refused too (registration: a
    certificate that cannot be presented any more is a mistake).  Raises
    :class:`ValidationError` (``field``) for anything but exactly one parseable certificate.
    """
    if not isinstance(pem, str) or len(pem) > MAX_CERTIFICATE_PEM or pem.count(_BEGIN) != 1:
        raise ValidationError("a certificate is one PEM X.509 certificate", extra={"field": field})
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as e:
        raise ValidationError("the certificate cannot be parsed", extra={"field": field}) from e
    if now is not None and not (
        utc(certificate.not_valid_before_utc) <= utc(now) <= utc(certificate.not_valid_after_utc)
    ):
        raise ValidationError("the certificate is not valid now", extra={"field": field})
    return b64url_encode(hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest())


def validate_thumbprint(value: str, *, field: str) -> str:
    """``value`` if it has the shape of an ``x5t#S256`` (43 base64url characters).  Raises
    :class:`ValidationError` (``field``)."""
    if not isinstance(value, str) or not _THUMBPRINT.fullmatch(value):
        raise ValidationError(
            "a certificate thumbprint is the base64url SHA-256 of the DER certificate "
            "(43 characters)",
            extra={"field": field},
        )
    return value
