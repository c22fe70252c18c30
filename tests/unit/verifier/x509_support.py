"""Certificates for trust-bundle tests, made with cryptography's builder: a root CA, an
intermediate and an issuer's end-entity certificate, as the Web PKI profile expects them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from credit_commons.core.encoding import b64_encode

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(Encoding.DER)

    @property
    def x5c(self) -> str:
        return b64_encode(self.der)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(
    cn: str,
    *,
    issuer: Issued | None = None,
    ca: bool,
    san: list[x509.GeneralName] | None = None,
    days: int = 3650,
    start: datetime = START,
    eku: list[x509.ObjectIdentifier] | None = None,
    ed25519_key: bool = False,
) -> Issued:
    """A P-256 (or Ed25519) certificate for ``cn``, self-signed when ``issuer`` is
    ``None``, with extended key usages ``eku`` when given."""
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = (
        ed25519.Ed25519PrivateKey.generate()
        if ed25519_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.certificate.subject if issuer else _name(cn))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                (issuer.key if issuer else key).public_key()
            ),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    signer = issuer.key if issuer else key
    digest = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    signed = builder.sign(signer, digest)
    return Issued(signed, key)


def chain(host: str = "bank.example") -> tuple[Issued, Issued, Issued]:
    """A root CA, an intermediate CA under it, and an end entity naming ``host``."""
    root = certificate("Test Root", ca=True)
    intermediate = certificate("Test Intermediate", issuer=root, ca=True)
    leaf = certificate(host, issuer=intermediate, ca=False, san=[x509.DNSName(host)])
    return root, intermediate, leaf
