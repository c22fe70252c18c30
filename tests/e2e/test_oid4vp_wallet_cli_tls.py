"""End to end over real sockets and TLS, on SQLite and PostgreSQL: ``commons serve`` as a
process serving HTTPS (``--ssl-certfile/--ssl-keyfile``) on 127.0.0.1 with a certificate for
``localhost`` from a CA made here, so the platform's public URL is ``https://localhost:PORT``
and its ``did:web`` is ``did:web:localhost%3APORT`` (a domain name: did:web §3.1 forbids IP
addresses); the wallet CLI as a process trusting that CA (``COMMONS_WALLET_CA_FILE``,
certificates verified as always).

The wallet receives a credential by the OID4VCI offer (``commons wallet accept-offer``), a
lender makes presentation requests through the HTTP API, ``commons wallet present <wallet_url>
--yes`` answers each — for both client-identifier prefixes and both response modes — and
the lender reads the decision with the response code the wallet was redirected with.  One
server per backend serves every case; nothing waits on wall time except the server's start.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.commons_inprocess import commons
from tests.conftest import GENEROUS_RATE_LIMITS, POSTGRES_URL, SKIP_POSTGRES
from tests.e2e.test_serve import commons_env
from tests.factories import readiness_claims
from tests.integration.verifier_world import CRC, crc_query
from tests.ports import free_port

from credit_commons.cli import main
from credit_commons.demo import lender_token
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk

COMMONS = [sys.executable, "-m", "credit_commons.cli"]
PREFIXES = ["decentralized_identifier", "redirect_uri"]
MODES = ["direct_post", "direct_post.jwt"]
LOCALHOST = ipaddress.ip_address("127.0.0.1")
STARTUP_POLLS = 600  # x 0.1 s: how long the server may take to answer /readyz


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(LOCALHOST)]),
            False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    certfile: Path
    keyfile: Path

    def context(self) -> ssl.SSLContext:
        """A client context trusting only the test CA (and verifying, as always)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def _make_tls(directory: Path) -> Tls:
    # A CA, and a server certificate it signs for localhost (the name the platform's public
    # URL and did:web carry) and the IP address 127.0.0.1 (an IP SAN: a client checks the
    # name or address it connected to against them, RFC 6125 / RFC 9525).
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Credit Commons test CA")])
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    server = _certificate(server_name, server_key, ca_name, ca_key, ca=False)
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.certfile.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    tls.keyfile.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls.keyfile.chmod(0o600)
    return tls


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database per backend for the module's one server (a PostgreSQL schema of its
    own, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'commons.db'}"
        return
    if SKIP_POSTGRES:
        pytest.skip("COMMONS_TEST_SKIP_POSTGRES=1")
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass(frozen=True)
class Platform:
    base: str
    port: int
    tls: Tls
    env: dict[str, str]  # the server's environment (for `commons admin token`)
    wallet_env: dict[str, str]  # the wallet CLI's: its file, passphrase, the CA

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=10, verify=self.tls.context())


def _cli(env: dict[str, str], *args: str) -> Any:
    result = subprocess.run(
        [*COMMONS, *args, "--json"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def platform(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """``commons serve`` over HTTPS on a free loopback port, and a wallet (``commons wallet
    init``) that trusts the test CA."""
    directory = tmp_path_factory.mktemp("tls-platform")
    tls = _make_tls(directory)
    port = free_port()
    base = f"https://localhost:{port}"
    env = commons_env(directory / "var", database)
    env["COMMONS_PUBLIC_URL"] = base
    env["COMMONS_RATE_LIMITS"] = json.dumps(GENEROUS_RATE_LIMITS)
    migrated = commons(["db", "upgrade"], env)  # in this process: tests/commons_inprocess.py
    assert migrated.returncode == 0, migrated.stderr
    log_path = directory / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *COMMONS,
                "serve",
                "--port",
                str(port),
                "--no-worker",
                "--ssl-certfile",
                str(tls.certfile),
                "--ssl-keyfile",
                str(tls.keyfile),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            with httpx.Client(base_url=base, timeout=1, verify=tls.context()) as http:
                for _ in range(STARTUP_POLLS):
                    try:
                        if http.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if process.poll() is not None:
                        break
                    time.sleep(0.1)
                else:
                    pytest.fail(f"the server did not start:\n{log_path.read_text()}")
                if process.poll() is not None:
                    pytest.fail(f"the server stopped:\n{log_path.read_text()}")
            wallet_env = {
                **commons_env(directory / "wallet-data", database),
                "COMMONS_WALLET_FILE": str(directory / "wallet.json"),
                "COMMONS_WALLET_PASSPHRASE": "correct horse battery staple",
                "COMMONS_WALLET_CA_FILE": str(tls.ca_file),
            }
            _cli(wallet_env, "wallet", "init")
            yield Platform(base, port, tls, env, wallet_env)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


@dataclass(frozen=True)
class Lender:
    client_id: str
    key: PrivateKey

    def headers(self, platform: Platform, http: httpx.Client) -> dict[str, str]:
        token = lender_token(http, platform.base, self.client_id, self.key)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def world(platform: Platform) -> Lender:
    """A lender client, and the wallet holding a Credit Readiness Credential it received
    over HTTPS by the OID4VCI pre-authorized code flow."""
    admin = _cli(platform.env, "admin", "token", "issuer-desk")["token"]
    as_admin = {"Authorization": f"Bearer {admin}"}
    key = PrivateKey.generate(KeyType.ED25519)
    with platform.http() as http:
        made = http.post(
            "/v1/admin/lenders",
            json={
                "name": "Verifier Bank",
                "jwks": {"keys": [public_key_to_jwk(key.public_key)]},
                "allowed_purposes": ["loan.underwriting"],
            },
            headers=as_admin,
        )
        assert made.status_code == 201, made.text
        msme = http.post(
            "/v1/identities", json={"roles": ["business"], "profile": {"name": "Meghna Crafts"}}
        ).json()
        offer = http.post(
            "/v1/credential-offers",
            json={
                "type": CRC,
                "subject": msme["identity_token"],
                "claims": readiness_claims(msme["identity_token"]),
            },
            headers=as_admin,
        )
        assert offer.status_code == 201, offer.text
    uri, tx_code = offer.json()["offer_uri_by_reference"], offer.json()["tx_code"]
    received = _cli(platform.wallet_env, "wallet", "accept-offer", uri, "--tx-code", tx_code)
    assert received["configuration"] == CRC
    return Lender(str(made.json()["client_id"]), key)


def _request(platform: Platform, lender: Lender, prefix: str, mode: str) -> dict[str, Any]:
    with platform.http() as http:
        made = http.post(
            "/v1/verifier/requests",
            json={
                "dcql_query": crc_query("income_bracket"),
                "redirect_uri": "https://lender.example/done",
                "client_id_prefix": prefix,
                "response_mode": mode,
            },
            headers=lender.headers(platform, http),
        )
    assert made.status_code == 201, made.text
    return dict(made.json())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_wallet_cli_presents_over_tls(
    platform: Platform, world: Lender, prefix: str, mode: str
) -> None:
    created = _request(platform, world, prefix, mode)
    did = f"did:web:localhost{quote(f':{platform.port}', safe='')}"
    assert did == f"did:web:localhost%3A{platform.port}"
    if prefix == "decentralized_identifier":
        assert created["client_id"] == f"decentralized_identifier:{did}"
    answered = subprocess.run(
        [*COMMONS, "wallet", "present", created["wallet_url"], "--yes", "--json"],
        env=platform.wallet_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert answered.returncode == 0, answered.stderr
    outcome = json.loads(answered.stdout)
    # What the holder was shown, and what went: the verifier, who signed, the one claim.
    if prefix == "decentralized_identifier":
        assert f"signed by {did}#" in answered.stderr
    else:
        assert "unsigned (redirect_uri client)" in answered.stderr
    assert outcome["verifier"] == created["client_id"]
    assert outcome["sent"] is True
    assert outcome["presented"] == [
        {"query": "crc", "credential": "c1", "claims": ["income_bracket"]}
    ]
    redirect = outcome["redirect_uri"]
    assert redirect.startswith("https://lender.example/done?response_code=")
    code = parse_qs(urlsplit(redirect).query)["response_code"][0]
    # The lender reads the decision with the response code the wallet was sent on with.
    with platform.http() as http:
        headers = world.headers(platform, http)
        status = http.get(f"/v1/verifier/requests/{created['id']}", headers=headers).json()
        assert (status["state"], status["decision"]) == ("decided", "allow")
        decided = http.post(
            f"/v1/verifier/requests/{created['id']}/decision",
            json={"response_code": code},
            headers=headers,
        )
    assert decided.status_code == 200, decided.text
    (credential,) = decided.json()["credentials"]
    assert credential["query_id"] == "crc"
    assert credential["claims"]["income_bracket"] == "5L-25L"
    assert "debt_ratio_bracket" not in credential["claims"]


def test_a_wallet_without_the_ca_refuses_the_server(platform: Platform, world: Lender) -> None:
    # Verification is on: without COMMONS_WALLET_CA_FILE the self-made CA is nobody's, the
    # request cannot be read, and the verifier hears nothing.
    created = _request(platform, world, "decentralized_identifier", "direct_post")
    env = {k: v for k, v in platform.wallet_env.items() if k != "COMMONS_WALLET_CA_FILE"}
    answered = subprocess.run(
        [*COMMONS, "wallet", "present", created["wallet_url"], "--yes", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert answered.returncode == 9, answered.stderr
    assert "could not be fetched" in answered.stderr
    with platform.http() as http:
        headers = world.headers(platform, http)
        status = http.get(f"/v1/verifier/requests/{created['id']}", headers=headers).json()
    assert status["state"] == "pending"


def test_serve_takes_the_certificate_and_its_key_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tls = _make_tls(tmp_path)
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    for flag, path in (("--ssl-certfile", tls.certfile), ("--ssl-keyfile", tls.keyfile)):
        assert main(["serve", "--port", str(free_port()), flag, str(path)]) == 3
        assert "--ssl-certfile and --ssl-keyfile go together" in capsys.readouterr().err


def test_commons_verify_takes_the_lenders_tls_settings(platform: Platform, tmp_path: Path) -> None:
    # `commons verify request|status|decision` build the lender's client as `commons lender`
    # does (cli/lender.py, lender_client): with COMMONS_LENDER_CA_FILE the platform's private
    # CA is trusted; they once ignored it, and every call failed certificate verification.
    key_file = tmp_path / "lender-key.json"
    created_key = _cli(platform.env, "lender", "key", "create", "--key-file", str(key_file))
    admin = _cli(platform.env, "admin", "token", "verify-desk")["token"]
    with platform.http() as http:
        made = http.post(
            "/v1/admin/lenders",
            json={
                "name": "CLI Verifier",
                "jwks": {"keys": [created_key["public_jwk"]]},
                "allowed_purposes": ["loan.underwriting"],
            },
            headers={"Authorization": f"Bearer {admin}"},
        )
    assert made.status_code == 201, made.text
    query_file = tmp_path / "query.json"
    query_file.write_text(json.dumps(crc_query("income_bracket")))
    env = {
        **commons_env(tmp_path / "lender-data", "sqlite://"),
        "COMMONS_LENDER_URL": platform.base,
        "COMMONS_LENDER_CLIENT_ID": str(made.json()["client_id"]),
        "COMMONS_LENDER_KEY_FILE": str(key_file),
        "COMMONS_LENDER_CA_FILE": str(platform.tls.ca_file),
    }
    requested = _cli(
        env, "verify", "request", "--dcql", str(query_file), "--prefix", "redirect_uri",
        "--redirect-uri", "https://lender.example/done",
    )  # fmt: skip
    assert requested["wallet_url"]
    status = _cli(env, "verify", "status", requested["id"])
    assert status["state"] == "pending"
    # Without the CA the same command refuses the server's certificate: verification is on.
    untrusting = {k: v for k, v in env.items() if k != "COMMONS_LENDER_CA_FILE"}
    refused = subprocess.run(
        [*COMMONS, "verify", "status", requested["id"]],
        env=untrusting,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 9, refused.stderr
