"""Certificate-bound lender tokens through a real nginx (issue 21 item 1, RFC 8705 §3), on
SQLite and PostgreSQL: Debian's nginx, started on a free port with the shipped
deploy/nginx/commons-mtls.conf.template, terminates TLS and verifies client certificates
against a CA made for this run; `commons serve` listens on loopback behind it and believes
the forwarded certificate from nginx's address only.

A lender registered with its certificate gets a token bound to it (``cnf.x5t#S256``) with
that certificate only, and the token works with that certificate only: another one, or
none, is refused.  A certificate of another CA stops at nginx; a forwarded-certificate
header a client writes itself is dropped by nginx, and refused when sent to the platform
directly from an address that is not the proxy.  A lender without a certificate works
through the same nginx exactly as before.

One deployment (nginx, `commons serve`, their certificates) per backend serves the whole
module: each test registers lenders of its own and changes none of the deployment's files."""

from __future__ import annotations

import json
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.e2e.test_serve import COMMONS, commons_env
from tests.mtls import Issued, issue, make_ca, nginx_config
from tests.ports import free_port

from credit_commons.client import ApiError, Lender, LenderKey
from credit_commons.client.lender import registration_request
from credit_commons.formats.jws import parse_compact
from credit_commons.keys.algorithms import ACCEPTED_ALGS

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HEADER = "X-Client-Cert"


@dataclass
class Deployment:
    """nginx at ``base`` (https) in front of `commons serve` at ``upstream`` (http)."""

    base: str
    upstream: str
    env: dict[str, str]
    certs: Path
    ca: Issued
    lender: Issued
    other: Issued

    def context(self, cert: Issued | None) -> ssl.SSLContext:
        """A client TLS context trusting the run's CA, presenting ``cert`` if given."""
        context = ssl.create_default_context(cafile=str(self.certs / "ca.crt"))
        if cert is not None:
            name = "lender" if cert is self.lender else "other"
            context.load_cert_chain(self.certs / f"{name}.crt", self.certs / f"{name}.key")
        return context


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, **client: Any) -> None:
    # A generous bound on a busy machine: starting `commons serve` imports a lot.
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url, timeout=1, **client).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not come up:\n{log.read_text()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def deployment(
    module_backend_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One nginx and one `commons serve` per backend, shared by the module's tests: each
    test registers lenders of its own, and none changes the deployment's files."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: scripts/ensure-system-deps.sh installs nginx-light")
    tmp_path = tmp_path_factory.mktemp("deployment")
    certs = tmp_path / "certs"
    certs.mkdir()
    ca = make_ca()
    lender, other = issue(ca, "Sahyadri Cooperative Bank"), issue(ca, "Someone else")
    ca.write(certs, "ca")
    issue(ca, "localhost", server=True).write(certs, "server")
    lender.write(certs, "lender")
    other.write(certs, "other")
    make_ca("Another CA").write(certs, "rogue-ca")
    issue(make_ca("Another CA"), "Sahyadri Cooperative Bank").write(certs, "rogue")

    api_port, tls_port = free_port(), free_port()
    base = f"https://127.0.0.1:{tls_port}"
    env = commons_env(tmp_path / "var", module_backend_url)
    env.update(
        COMMONS_PUBLIC_URL=base,
        COMMONS_TRUSTED_PROXIES="127.0.0.1",
        COMMONS_CLIENT_CERT_HEADER="x-client-cert",
    )
    migrated = commons(["db", "upgrade"], env)
    assert migrated.returncode == 0, migrated.stderr
    work = tmp_path / "nginx"
    work.mkdir()
    config = nginx_config(work, listen=tls_port, upstream=f"127.0.0.1:{api_port}", certs=certs)
    checked = subprocess.run(
        [NGINX, "-t", "-c", str(config), "-e", str(work / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr

    server_log, nginx_log = tmp_path / "server.log", work / "error.log"
    with server_log.open("wb") as log:
        server = subprocess.Popen(
            [*COMMONS, "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(api_port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proxy = subprocess.Popen(
            [NGINX, "-c", str(config), "-e", str(nginx_log), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(f"http://127.0.0.1:{api_port}/healthz", server, server_log)
            _wait(
                f"{base}/healthz",
                proxy,
                nginx_log,
                verify=ssl.create_default_context(cafile=str(certs / "ca.crt")),
            )
            yield Deployment(base, f"http://127.0.0.1:{api_port}", env, certs, ca, lender, other)
        finally:
            for process in (proxy, server):
                process.send_signal(signal.SIGTERM)
            for process in (proxy, server):
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:  # pragma: no cover - a hung process
                    process.kill()
                    process.wait()


def approve(deployment: Deployment, body: dict[str, Any], work: Path) -> str:
    """`commons admin lender approve` of a registration request; the new client id."""
    request = work / f"registration-{len(list(work.glob('registration-*')))}.json"
    request.write_text(json.dumps(body))
    result = commons(["admin", "lender", "approve", str(request), "--json"], deployment.env)
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["client_id"])


def call(deployment: Deployment, token: str, cert: Issued | None) -> httpx.Response:
    with httpx.Client(verify=deployment.context(cert), timeout=10) as http:
        return http.get(
            f"{deployment.base}/v1/lender/client", headers={"Authorization": f"Bearer {token}"}
        )


def cnf_of(token: str) -> Any:
    return parse_compact(token, algs=ACCEPTED_ALGS).payload.get("cnf")


def test_a_bound_token_through_nginx_works_only_with_its_certificate(
    deployment: Deployment, tmp_path: Path
) -> None:
    key = LenderKey.generate()
    body = registration_request(key, "Sahyadri Cooperative Bank", ["loan.underwriting"])
    body["tls_client_certificate"] = deployment.lender.pem
    client_id = approve(deployment, body, tmp_path)

    def lender(cert: Issued | None) -> Lender:
        return Lender(deployment.base, client_id=client_id, key=key, tls=deployment.context(cert))

    # The token: over mutual TLS with the registered certificate, bound to it.
    with lender(deployment.lender) as bound_lender:
        token = bound_lender.token().access_token
        assert cnf_of(token) == {"x5t#S256": deployment.lender.thumbprint}
        me = bound_lender.http.request_object("GET", "/v1/lender/client", token=token)
        assert me["client_id"] == client_id
    # No token without the certificate, or with another one.
    for cert in (None, deployment.other):
        with lender(cert) as refused, pytest.raises(ApiError) as caught:
            refused.token()
        assert caught.value.status == 401

    # Every use presents the same certificate: another one, or none, is refused.
    assert call(deployment, token, deployment.lender).status_code == 200
    for cert in (deployment.other, None):
        refused = call(deployment, token, cert)
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        assert refused.json()["code"] == "auth.invalid_token"
        assert "cert" not in refused.text.lower()

    # A certificate of another CA stops at nginx (it never reaches the platform).
    rogue = ssl.create_default_context(cafile=str(deployment.certs / "ca.crt"))
    rogue.load_cert_chain(deployment.certs / "rogue.crt", deployment.certs / "rogue.key")
    with httpx.Client(verify=rogue, timeout=10) as http:
        stopped = http.get(
            f"{deployment.base}/v1/lender/client", headers={"Authorization": f"Bearer {token}"}
        )
    assert stopped.status_code == 400
    assert "SSL certificate error" in stopped.text


def test_a_forwarded_certificate_header_is_believed_from_nginx_only(
    deployment: Deployment, tmp_path: Path
) -> None:
    key = LenderKey.generate()
    body = registration_request(key, "Sahyadri Cooperative Bank", ["loan.underwriting"])
    body["tls_client_certificate"] = deployment.lender.pem
    client_id = approve(deployment, body, tmp_path)
    with Lender(
        deployment.base, client_id=client_id, key=key, tls=deployment.context(deployment.lender)
    ) as bound_lender:
        token = bound_lender.token().access_token
    spoofed = {"Authorization": f"Bearer {token}", HEADER: deployment.lender.forwarded}

    # Through nginx without a certificate: nginx drops the client's own header.
    with httpx.Client(verify=deployment.context(None), timeout=10) as http:
        dropped = http.get(f"{deployment.base}/v1/lender/client", headers=spoofed)
    assert dropped.status_code == 401

    # Straight to the platform from a loopback address that is not the proxy's: refused.
    outside = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=outside, timeout=10) as http:
        direct = http.get(f"{deployment.upstream}/v1/lender/client", headers=spoofed)
        assert direct.status_code == 401
        assert direct.json()["code"] == "auth.invalid_token"
        # Without the header the same peer is an ordinary client: the bound token still
        # needs its certificate.
        plain = http.get(
            f"{deployment.upstream}/v1/lender/client",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert plain.status_code == 401


def test_a_lender_without_a_certificate_works_through_nginx_as_before(
    deployment: Deployment, tmp_path: Path
) -> None:
    key = LenderKey.generate()
    client_id = approve(
        deployment, registration_request(key, "Grameen Bank", ["loan.underwriting"]), tmp_path
    )
    with Lender(
        deployment.base, client_id=client_id, key=key, tls=deployment.context(None)
    ) as plain_lender:
        token = plain_lender.token().access_token
        assert cnf_of(token) is None
        me = plain_lender.http.request_object("GET", "/v1/lender/client", token=token)
        assert me["client_id"] == client_id
    assert call(deployment, token, deployment.other).status_code == 200


def test_the_metadata_through_nginx_advertises_bound_tokens(deployment: Deployment) -> None:
    # RFC 8705 §3.3, at the one address that serves both TLS and mutual TLS (§5's aliases
    # are not needed, so not sent).
    with httpx.Client(verify=deployment.context(None), timeout=10) as http:
        body = http.get(f"{deployment.base}/.well-known/oauth-authorization-server").json()
    assert body["tls_client_certificate_bound_access_tokens"] is True
    assert "mtls_endpoint_aliases" not in body


def test_the_metrics_are_not_served_through_nginx(deployment: Deployment) -> None:
    # Prometheus scrapes the upstream; through the public edge /metrics is refused.
    with httpx.Client(verify=deployment.context(None), timeout=10) as http:
        for path in ("/metrics", "/metrics?x=1"):
            refused = http.get(f"{deployment.base}{path}")
            assert refused.status_code == 404, path
            assert "commons_" not in refused.text
        assert http.get(f"{deployment.base}/healthz").status_code == 200
    direct = httpx.get(f"{deployment.upstream}/metrics", timeout=10)
    assert direct.status_code == 200
    assert "commons_" in direct.text


def test_commons_lender_token_over_mutual_tls(deployment: Deployment, tmp_path: Path) -> None:
    key_file = tmp_path / "lender-key.json"
    key = LenderKey.create(key_file)
    body = registration_request(key, "Sahyadri Cooperative Bank", ["loan.underwriting"])
    body["tls_client_certificate"] = deployment.lender.pem
    client_id = approve(deployment, body, tmp_path)
    # The lender's own copy of its certificate and key (made unprotected below; the shared
    # deployment's files stay as they are).
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("ca.crt", "lender.crt", "lender.key"):
        (certs / name).write_bytes((deployment.certs / name).read_bytes())
    (certs / "lender.key").chmod(0o600)
    env = {
        **{k: v for k, v in deployment.env.items() if not k.startswith("COMMONS_")},
        "COMMONS_LENDER_URL": deployment.base,
        "COMMONS_LENDER_CLIENT_ID": client_id,
        "COMMONS_LENDER_KEY_FILE": str(key_file),
        "COMMONS_LENDER_CA_FILE": str(certs / "ca.crt"),
    }
    # Without the client certificate: refused (401 is exit 6).
    refused = commons(["lender", "token", "--json"], env)
    assert refused.returncode == 6, refused.stderr
    assert json.loads(refused.stderr)["status"] == 401
    # With it: a token bound to it.
    env["COMMONS_LENDER_TLS_CERT"] = str(certs / "lender.crt")
    env["COMMONS_LENDER_TLS_KEY"] = str(certs / "lender.key")
    issued = commons(["lender", "token", "--json"], env)
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)["access_token"]
    assert cnf_of(token) == {"x5t#S256": deployment.lender.thumbprint}
    assert call(deployment, token, deployment.lender).status_code == 200
    # A key file others may read is refused before any request.
    (certs / "lender.key").chmod(0o644)
    unprotected = commons(["lender", "token", "--json"], env)
    assert unprotected.returncode == 8, unprotected.stderr
    assert json.loads(unprotected.stderr)["code"] == "lender.key_unprotected"
