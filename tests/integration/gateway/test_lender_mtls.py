"""Certificate-bound lender tokens (RFC 8705 §3, issue 21 item 1) over HTTP, on both
databases: the forwarded client certificate of a trusted proxy binds a token
(``cnf.x5t#S256``) and every use must present the same one; a lender registered with a
certificate gets no token without it; a forwarded certificate from any other peer is
refused; without mutual TLS configured the header is not read.  tests/e2e/test_lender_mtls_nginx.py
runs the same through a real nginx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.lenders import (
    admin_headers,
    assertion,
    counted,
    events,
    jwks_of,
    register,
)
from tests.mtls import Issued, issue, make_ca

from credit_commons.cli import main
from credit_commons.consent.access import anonymous_actor, lender_actor
from credit_commons.core.clock import FixedClock
from credit_commons.core.settings import Settings
from credit_commons.formats.jws import parse_compact
from credit_commons.gateway import oauth
from credit_commons.gateway.app import create_app
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey
from credit_commons.runtime import Runtime

HEADER = "X-Client-Cert"
PROXY = ("127.0.0.1", 4000)
OUTSIDER = ("203.0.113.9", 4000)
CA = make_ca()
LENDER_CERT = issue(CA, "Sahyadri Cooperative Bank")
OTHER_CERT = issue(CA, "Someone else")

Connect = Callable[..., TestClient]


@pytest.fixture
def connect(runtime: Runtime, settings: Settings) -> Iterator[Connect]:
    """TestClients of an app with mutual TLS behind a proxy at 127.0.0.1 (``mtls=False``:
    the platform as before, no header configured), from the address ``peer``."""
    opened: list[TestClient] = []

    def make(peer: tuple[str, int] = PROXY, *, mtls: bool = True) -> TestClient:
        extra: dict[str, Any] = (
            {"trusted_proxies": ["127.0.0.1"], "client_cert_header": HEADER.lower()}
            if mtls
            else {"trusted_proxies": ["127.0.0.1"]}
        )
        runtime.settings = settings.model_copy(update=extra)
        client = TestClient(create_app(runtime.settings, runtime=runtime), client=peer)
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def with_cert(cert: Issued | None) -> dict[str, str]:
    return {HEADER: cert.forwarded} if cert is not None else {}


def get_token(client: TestClient, key: Any, client_id: str, now: int, cert: Issued | None) -> Any:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(key, client_id, now),
    }
    headers = {"Content-Type": "application/x-www-form-urlencoded", **with_cert(cert)}
    return client.post("/oauth/token", data=data, headers=headers)


def whoami(client: TestClient, token: str, cert: Issued | None) -> Any:
    headers = {"Authorization": f"Bearer {token}", **with_cert(cert)}
    return client.get("/v1/lender/client", headers=headers)


def cnf_of(token: str) -> Any:
    return parse_compact(token, algs=ACCEPTED_ALGS).payload.get("cnf")


def now_of(clock: FixedClock) -> int:
    return int(clock.now().timestamp())


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    body = response.json()
    assert body["code"] == "auth.invalid_token"
    # No detail leak: nothing about certificates or thumbprints.
    assert "cert" not in response.text.lower()
    assert LENDER_CERT.thumbprint not in response.text


def test_a_registered_lender_gets_a_bound_token_that_works_only_with_its_certificate(
    connect: Connect, runtime: Runtime, clock: FixedClock
) -> None:
    proxy = connect()
    client_id, key = register(proxy, admin_headers(runtime), tls_client_certificate=LENDER_CERT.pem)
    view = proxy.get(f"/v1/admin/lenders/{client_id}", headers=admin_headers(runtime)).json()
    assert view["tls_client_thumbprint"] == LENDER_CERT.thumbprint
    now = now_of(clock)

    # A token only over mutual TLS, and only with the registered certificate.
    for cert in (None, OTHER_CERT):
        refused = get_token(proxy, key, client_id, now, cert)
        assert refused.status_code == 401, refused.text
        assert refused.json() == {
            "error": "invalid_client",
            "error_description": "client authentication failed",
        }
    issued = get_token(proxy, key, client_id, now, LENDER_CERT)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    assert cnf_of(token) == {"x5t#S256": LENDER_CERT.thumbprint}

    # Every use presents the same certificate; another one, or none, is refused.
    ok = whoami(proxy, token, LENDER_CERT)
    assert ok.status_code == 200, ok.text
    assert ok.json()["client_id"] == client_id
    assert_invalid_token(whoami(proxy, token, OTHER_CERT))
    assert_invalid_token(whoami(proxy, token, None))

    actor = lender_actor(runtime, client_id)
    reasons = [(d["operation"], d["reason"], d["actor"]) for d in counted(runtime)]
    assert sorted(reasons) == sorted(
        [
            ("oauth.token", "auth.certificate_missing", actor),
            ("oauth.token", "auth.certificate_mismatch", actor),
            ("lender.whoami", "auth.certificate_mismatch", actor),
            ("lender.whoami", "auth.certificate_missing", actor),
        ]
    )
    changed = events(runtime, "lender.certificate_changed")
    assert [e.details for e in changed] == ['{"bound":true}']


def test_a_lender_without_a_certificate_gets_tokens_bound_to_what_it_presents(
    connect: Connect, runtime: Runtime, clock: FixedClock
) -> None:
    proxy = connect()
    client_id, key = register(proxy, admin_headers(runtime))
    now = now_of(clock)
    plain = get_token(proxy, key, client_id, now, None).json()["access_token"]
    assert cnf_of(plain) is None
    assert whoami(proxy, plain, None).status_code == 200
    assert whoami(proxy, plain, OTHER_CERT).status_code == 200  # an unbound token
    bound = get_token(proxy, key, client_id, now, OTHER_CERT).json()["access_token"]
    assert cnf_of(bound) == {"x5t#S256": OTHER_CERT.thumbprint}
    assert whoami(proxy, bound, OTHER_CERT).status_code == 200
    assert_invalid_token(whoami(proxy, bound, LENDER_CERT))
    assert_invalid_token(whoami(proxy, bound, None))


def test_binding_a_certificate_later_ends_the_unbound_and_the_old_tokens(
    connect: Connect, runtime: Runtime, clock: FixedClock
) -> None:
    proxy = connect()
    admin = admin_headers(runtime)
    client_id, key = register(proxy, admin)
    now = now_of(clock)
    plain = get_token(proxy, key, client_id, now, None).json()["access_token"]
    path = f"/v1/admin/lenders/{client_id}"

    bound = proxy.patch(path, json={"tls_client_thumbprint": LENDER_CERT.thumbprint}, headers=admin)
    assert bound.status_code == 200, bound.text
    assert bound.json()["tls_client_thumbprint"] == LENDER_CERT.thumbprint
    assert_invalid_token(whoami(proxy, plain, None))  # issued before the binding
    first = get_token(proxy, key, client_id, now, LENDER_CERT).json()["access_token"]
    assert whoami(proxy, first, LENDER_CERT).status_code == 200

    # A new certificate: tokens bound to the old one stop working at once.
    moved = proxy.patch(path, json={"tls_client_certificate": OTHER_CERT.pem}, headers=admin)
    assert moved.json()["tls_client_thumbprint"] == OTHER_CERT.thumbprint
    assert_invalid_token(whoami(proxy, first, LENDER_CERT))
    second = get_token(proxy, key, client_id, now, OTHER_CERT).json()["access_token"]
    assert whoami(proxy, second, OTHER_CERT).status_code == 200

    # Removing the binding: unbound tokens again (bound ones keep needing their certificate).
    cleared = proxy.patch(path, json={"tls_client_thumbprint": None}, headers=admin)
    assert cleared.json()["tls_client_thumbprint"] is None
    again = get_token(proxy, key, client_id, now, None).json()["access_token"]
    assert whoami(proxy, again, None).status_code == 200
    assert_invalid_token(whoami(proxy, second, None))
    # Other changes leave the binding alone and record no certificate change.
    proxy.patch(path, json={"tls_client_thumbprint": OTHER_CERT.thumbprint}, headers=admin)
    proxy.patch(path, json={"active": True}, headers=admin)
    changes = [e.details for e in events(runtime, "lender.certificate_changed")]
    assert changes == ['{"bound":true}', '{"bound":true}', '{"bound":false}', '{"bound":true}']


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tls_client_certificate": "not a certificate"}, "tls_client_certificate"),
        ({"tls_client_certificate": LENDER_CERT.pem + OTHER_CERT.pem}, "tls_client_certificate"),
        ({"tls_client_thumbprint": "too-short"}, "tls_client_thumbprint"),
        ({"tls_client_thumbprint": "=" * 43}, "tls_client_thumbprint"),
        (
            {
                "tls_client_certificate": LENDER_CERT.pem,
                "tls_client_thumbprint": LENDER_CERT.thumbprint,
            },
            "tls_client_certificate",
        ),
    ],
)
def test_bad_certificates_are_refused_at_registration(
    connect: Connect, runtime: Runtime, body: dict[str, str], field: str
) -> None:
    proxy = connect()
    key = PrivateKey.generate(KeyType.ED25519)
    response = proxy.post(
        "/v1/admin/lenders",
        json={"name": "Bank", "jwks": jwks_of((key, "k1")), "allowed_purposes": ["101"], **body},
        headers=admin_headers(runtime),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    client_id, _ = register(proxy, admin_headers(runtime))
    patched = proxy.patch(
        f"/v1/admin/lenders/{client_id}", json=body, headers=admin_headers(runtime)
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["field"] == field
    view = proxy.get(f"/v1/admin/lenders/{client_id}", headers=admin_headers(runtime)).json()
    assert view["tls_client_thumbprint"] is None


def test_a_forwarded_certificate_from_an_untrusted_peer_is_refused(
    connect: Connect, runtime: Runtime, clock: FixedClock
) -> None:
    proxy = connect()
    client_id, key = register(proxy, admin_headers(runtime))
    now = now_of(clock)
    token = get_token(proxy, key, client_id, now, None).json()["access_token"]
    outsider = connect(OUTSIDER)
    # The same header straight from a client: whoever can write it could claim any
    # certificate, so the request is refused (not just the header ignored).
    refused = get_token(outsider, key, client_id, now, LENDER_CERT)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert_invalid_token(whoami(outsider, token, LENDER_CERT))
    assert whoami(outsider, token, None).status_code == 200
    # Garbage from the trusted proxy is refused too.
    garbage = {"Authorization": f"Bearer {token}", HEADER: "-----BEGIN%20CERTIFICATE-----x"}
    assert_invalid_token(proxy.get("/v1/lender/client", headers=garbage))
    anonymous = anonymous_actor(runtime)
    reasons = sorted((d["operation"], d["reason"], d["actor"]) for d in counted(runtime))
    assert reasons == sorted(
        [
            ("oauth.token", "auth.certificate_untrusted_proxy", anonymous),
            ("lender.whoami", "auth.certificate_untrusted_proxy", anonymous),
            ("lender.whoami", "auth.certificate_invalid", anonymous),
        ]
    )


def test_without_mutual_tls_the_header_is_not_read(
    connect: Connect, runtime: Runtime, clock: FixedClock
) -> None:
    plain = connect(mtls=False)
    client_id, key = register(plain, admin_headers(runtime))
    now = now_of(clock)
    issued = get_token(plain, key, client_id, now, LENDER_CERT)
    assert issued.status_code == 200
    token = issued.json()["access_token"]
    assert cnf_of(token) is None
    assert whoami(plain, token, OTHER_CERT).status_code == 200
    assert whoami(plain, token, None).status_code == 200
    # A lender bound to a certificate cannot get a token: there is no mutual TLS.
    bound_id, bound_key = register(
        plain, admin_headers(runtime), tls_client_thumbprint=LENDER_CERT.thumbprint
    )
    assert get_token(plain, bound_key, bound_id, now, LENDER_CERT).status_code == 401


def test_commons_admin_lender_certificate(
    connect: Connect,
    runtime: Runtime,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = connect()
    client_id, _ = register(proxy, admin_headers(runtime))
    for name, value in runtime.settings.model_dump(mode="json").items():
        if name in {"database_url", "data_dir"} and value is not None:
            monkeypatch.setenv(f"COMMONS_{name.upper()}", str(value))
    pem = tmp_path / "lender.crt"
    pem.write_text(LENDER_CERT.pem)
    assert main(["admin", "lender", "certificate", client_id, "--cert", str(pem), "--json"]) == 0
    assert f'"tls_client_thumbprint": "{LENDER_CERT.thumbprint}"' in capsys.readouterr().out
    assert main(["admin", "lender", "certificate", client_id, "--remove"]) == 0
    assert "not bound" in capsys.readouterr().out
    assert main(["admin", "lender", "certificate", client_id]) == 3
    assert main(["admin", "lender", "certificate", client_id, "--thumbprint", "x"]) == 3
    view = proxy.get(f"/v1/admin/lenders/{client_id}", headers=admin_headers(runtime)).json()
    assert view["tls_client_thumbprint"] is None


@pytest.mark.parametrize("mtls", [True, False])
def test_the_metadata_says_whether_tokens_are_certificate_bound(
    connect: Connect, runtime: Runtime, mtls: bool
) -> None:
    """RFC 8705 §3.3: ``tls_client_certificate_bound_access_tokens`` is true exactly when
    mutual TLS is configured; §5's ``mtls_endpoint_aliases`` is absent either way (the
    token endpoint is one address, mutual TLS optional at it)."""
    metadata = connect(mtls=mtls).get("/.well-known/oauth-authorization-server")
    assert metadata.status_code == 200
    body = metadata.json()
    assert body["tls_client_certificate_bound_access_tokens"] is mtls
    assert "mtls_endpoint_aliases" not in body
    members = oauth.authorization_server_metadata(runtime)
    assert members.tls_client_certificate_bound_access_tokens is mtls
