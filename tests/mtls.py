"""Certificates for the mutual-TLS tests, made afresh per test run with the ``cryptography``
library: a self-signed CA, lender (client) certificates and a server certificate for
127.0.0.1 and ``localhost``, P-256 keys throughout — and the shipped nginx configuration
rendered for one run (:func:`nginx_config`; the e2e test and ``bench/load.py`` share it),
inside a main configuration of the run's own (:func:`nginx_main`, also the chart's e2e test's)."""

from __future__ import annotations

import hashlib
import ipaddress
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from credit_commons.core.encoding import b64url_encode


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def thumbprint(self) -> str:
        """RFC 8705 ``x5t#S256``: base64url SHA-256 of the DER certificate."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return b64url_encode(hashlib.sha256(der).digest())

    @property
    def forwarded(self) -> str:
        """The certificate as nginx forwards it (``$ssl_client_escaped_cert``)."""
        return quote(self.pem, safe="")

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write ``name.crt`` and ``name.key`` (0600) under ``directory``."""
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        cert.write_text(self.pem)
        key.touch(mode=0o600)
        key.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert, key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str = "Test mTLS CA") -> Issued:
    """A self-signed CA certificate, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(certificate, key)


def issue(ca: Issued, common_name: str, *, server: bool = False) -> Issued:
    """A leaf certificate signed by ``ca``: a TLS client certificate, or with ``server`` one
    for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


TEMPLATE = Path(__file__).parents[1] / "deploy" / "nginx" / "commons-mtls.conf.template"
"""The nginx configuration the project ships (issue 21), rendered by :func:`nginx_config`."""


def nginx_config(
    work: Path,
    *,
    listen: int,
    upstream: str,
    certs: Path,
    worker_connections: int = 64,
    access_log: bool = True,
) -> Path:
    """The shipped template, rendered as envsubst would, inside a minimal main config of
    this run's own (pid, logs and temporary files under ``work``); ``certs`` holds
    ``server.crt``/``server.key`` and the lenders' ``ca.crt``.  Raises :class:`ValueError`
    when the template names a variable this does not set."""
    server = string.Template(TEMPLATE.read_text()).safe_substitute(
        COMMONS_UPSTREAM=upstream,
        COMMONS_TLS_LISTEN=f"127.0.0.1:{listen}",
        COMMONS_SERVER_NAME="localhost",
        COMMONS_TLS_CERT=str(certs / "server.crt"),
        COMMONS_TLS_KEY=str(certs / "server.key"),
        COMMONS_CLIENT_CA=str(certs / "ca.crt"),
    )
    if "${" in server:
        raise ValueError("the nginx template names a variable nginx_config does not set")
    (work / "commons.conf").write_text(server)
    return nginx_main(
        work, "commons.conf", worker_connections=worker_connections, access_log=access_log
    )


def nginx_main(
    work: Path, include: str, *, worker_connections: int = 64, access_log: bool = True
) -> Path:
    """A minimal main nginx configuration of this run's own, ``work/nginx.conf``: one worker,
    pid, logs and temporary files under ``work``, and the server configuration(s) ``include``
    names (a file or a glob, relative to ``work``)."""
    main = work / "nginx.conf"
    main.write_text(
        f"""worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log {"info" if access_log else "warn"};
events {{ worker_connections {worker_connections}; }}
http {{
    access_log {f"{work}/access.log" if access_log else "off"};
    client_body_temp_path {work}/body;
    client_body_buffer_size 1m;
    proxy_temp_path {work}/proxy;
    proxy_max_temp_file_size 0;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    include {work}/{include};
}}
"""
    )
    return main
