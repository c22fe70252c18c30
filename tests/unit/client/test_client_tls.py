"""The lender's TLS context for mutual TLS (``client_tls``): a client certificate and its
key (0600), a CA file, and what it refuses."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from tests.mtls import issue, make_ca

from credit_commons.client.errors import KeyFileInvalid, KeyFileUnprotected
from credit_commons.client.http import client_tls
from credit_commons.core.errors import CommonsError


def test_a_client_certificate_and_a_ca(tmp_path: Path) -> None:
    ca = make_ca()
    ca_file, _ = ca.write(tmp_path, "ca")
    cert, key = issue(ca, "Bank").write(tmp_path, "lender")
    context = client_tls(cert, key, ca_file)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "Test mTLS CA"),),)]
    assert client_tls(ca=ca_file).get_ca_certs()


def test_what_it_refuses(tmp_path: Path) -> None:
    ca = make_ca()
    cert, key = issue(ca, "Bank").write(tmp_path, "lender")
    other_cert, _ = issue(ca, "Other").write(tmp_path, "other")
    with pytest.raises(KeyFileInvalid):
        client_tls(cert, None)
    with pytest.raises(KeyFileInvalid):
        client_tls(None, key)
    with pytest.raises(KeyFileInvalid):
        client_tls(other_cert, key)  # a certificate of another key
    with pytest.raises(CommonsError) as missing:
        client_tls(tmp_path / "absent.crt", key)
    assert missing.value.code.startswith("file.")
    key.chmod(0o640)
    with pytest.raises(KeyFileUnprotected):
        client_tls(cert, key)
