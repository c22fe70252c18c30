"""A lender certificate's RFC 8705 ``x5t#S256`` thumbprint, and what registration refuses."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from tests.mtls import issue, make_ca

from credit_commons.core.errors import ValidationError
from credit_commons.gateway.client_address import ClientAddressResolver
from credit_commons.lenders import certificate_thumbprint, validate_thumbprint

CA = make_ca()
CERT = issue(CA, "Test Bank")


def test_the_thumbprint_is_the_base64url_sha256_of_the_der_certificate() -> None:
    der = CERT.certificate.public_bytes(Encoding.DER)
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert certificate_thumbprint(CERT.pem, field="f") == expected
    assert len(expected) == 43
    assert validate_thumbprint(expected, field="f") == expected
    # Another certificate of the same key and name is another certificate.
    assert certificate_thumbprint(issue(CA, "Test Bank").pem, field="f") != expected


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a certificate",
        CERT.pem + CERT.pem,
        CERT.pem.replace("A", "B", 5),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        CERT.pem + "x" * (16 * 1024),
    ],
)
def test_anything_but_one_certificate_is_refused(pem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        certificate_thumbprint(pem, field="tls_client_certificate")
    assert caught.value.extra["field"] == "tls_client_certificate"


def test_a_certificate_not_valid_now_is_refused_at_registration() -> None:
    valid_until = CERT.certificate.not_valid_after_utc
    assert certificate_thumbprint(CERT.pem, field="f", now=valid_until - timedelta(hours=1))
    with pytest.raises(ValidationError):
        certificate_thumbprint(CERT.pem, field="f", now=valid_until + timedelta(seconds=1))
    with pytest.raises(ValidationError):
        certificate_thumbprint(
            CERT.pem, field="f", now=CERT.certificate.not_valid_before_utc - timedelta(seconds=1)
        )


@pytest.mark.parametrize("value", ["", "a" * 42, "a" * 44, "a" * 42 + "=", "a" * 42 + "+"])
def test_malformed_thumbprints_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        validate_thumbprint(value, field="tls_client_thumbprint")


def test_only_configured_proxies_are_trusted_peers() -> None:
    resolver = ClientAddressResolver(["127.0.0.1", "10.0.0.0/8"])
    assert resolver.is_trusted_peer("127.0.0.1")
    assert resolver.is_trusted_peer("10.1.2.3")
    assert resolver.is_trusted_peer("::ffff:127.0.0.1")
    for peer in ("127.0.0.2", "203.0.113.9", "testclient", "", None):
        assert not resolver.is_trusted_peer(peer)
    assert not ClientAddressResolver().is_trusted_peer("127.0.0.1")
