"""The TLS client certificate of a request, as a trusted proxy forwards it (RFC 8705 §3).

TLS terminates at a proxy (nginx, ``deploy/nginx/``) that verifies a client certificate
against the configured CA when one is presented, and passes it on over loopback in one
header (``COMMONS_CLIENT_CERT_HEADER``; nginx: ``$ssl_client_escaped_cert``, the PEM
URL-encoded).  The platform believes that header only when the connection comes from one of
``COMMONS_TRUSTED_PROXIES``: from any other peer the request is refused, since whoever can
write the header could claim any certificate.  With no header configured there is no mutual
TLS: the header is not read at all (behaviour as before this module), and a lender whose
tokens must be certificate-bound cannot get one.

What the platform keeps of a certificate is its ``x5t#S256`` thumbprint
(:func:`credit_commons.lenders.certificate_thumbprint`).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import unquote

from fastapi import Request

from credit_commons import lenders
from credit_commons.core.attached import Attached
from credit_commons.core.errors import CommonsError
from credit_commons.gateway.client_address import ClientAddressResolver
from credit_commons.runtime import Runtime

__all__ = ["CertificateRefused", "presented_thumbprint"]

_FIELD = "client_certificate"


class CertificateRefused(Exception):
    """A forwarded client certificate that cannot be believed: ``reason`` says why
    (``auth.certificate_untrusted_proxy``: a peer that is no trusted proxy sent the header;
    ``auth.certificate_invalid``: a trusted proxy sent something that is no certificate)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_RESOLVERS = Attached[Runtime, ClientAddressResolver](
    lambda rt: ClientAddressResolver(rt.settings.trusted_proxies)
)


def presented_thumbprint(request: Request) -> str | None:
    """The ``x5t#S256`` of the client certificate the request came with, or ``None`` when
    it came with none (or mutual TLS is not configured).

    Raises :class:`CertificateRefused` for a forwarded certificate from an untrusted peer,
    or one that does not parse.
    """
    rt: Runtime = request.app.state.runtime
    header = rt.settings.client_cert_header
    if header is None:
        return None
    values = [value for value in request.headers.getlist(header) if value.strip()]
    if not values:
        return None
    peer = request.client.host if request.client else None
    if not _RESOLVERS(rt).is_trusted_peer(peer):
        raise CertificateRefused("auth.certificate_untrusted_proxy")
    if len(values) != 1:
        raise CertificateRefused("auth.certificate_invalid")
    try:
        return _thumbprint(values[0])
    except CommonsError as e:
        raise CertificateRefused("auth.certificate_invalid") from e


@lru_cache(maxsize=256)
def _thumbprint(forwarded: str) -> str:
    # A lender presents the same certificate on every call: parsed once per process.
    # Failures raise, so they are not kept.
    return lenders.certificate_thumbprint(unquote(forwarded), field=_FIELD)
