"""The Helm chart's nginx (deploy/helm/commons: nginx beside the platform in each API pod, the
platform on the pod's loopback), run with Debian's nginx as the chart configures it: the two
templates from the rendered ConfigMap, rendered with the nginx container's own environment
(only its addresses and certificate paths made local), in front of an upstream that records
every request that reaches it.

What it shows: the TLS port forwards the API with the verified client certificate and never
one a client wrote, and answers /metrics itself with 404; the metrics port — plain HTTP, which
the chart's NetworkPolicy opens to the monitoring namespace only — forwards /metrics alone,
without any client certificate header (the platform believes that header from loopback), and
answers everything else with 404 without reaching the platform."""

from __future__ import annotations

import shutil
import signal
import ssl
import string
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helm_chart import render_chart
from tests.mtls import Issued, issue, make_ca, nginx_main
from tests.ports import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class _Recorder(BaseHTTPRequestHandler):
    """The platform's stand-in: answers 200 and records the path and headers it got."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, dict[str, str]]]

    def do_GET(self) -> None:
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = b"# HELP commons_up recorded\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class ChartNginx:
    tls: str
    metrics: str
    certs: Path
    lender: Issued
    seen: list[tuple[str, dict[str, str]]]
    # The header the chart's platform believes a client certificate from (its ConfigMap).
    header: str

    @property
    def forged(self) -> dict[str, str]:
        """What a client writes to pass for a lender: a certificate in that header."""
        return {
            self.header: "-----BEGIN%20CERTIFICATE-----forged",
            "X-Forwarded-For": "203.0.113.9",
        }

    def client(self, cert: bool = False) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.certs / "ca.crt"))
        if cert:
            context.load_cert_chain(self.certs / "lender.crt", self.certs / "lender.key")
        return httpx.Client(base_url=self.tls, verify=context, timeout=10)


def _nginx_container() -> tuple[dict[str, str], dict[str, str], str]:
    """The chart's nginx templates, its nginx container's environment and the header the
    platform's ConfigMap names for the client certificate."""
    documents = render_chart()
    configs = {d["metadata"]["name"]: d["data"] for d in documents if d["kind"] == "ConfigMap"}
    templates = configs["commons-nginx"]
    header = configs["commons-config"]["COMMONS_CLIENT_CERT_HEADER"]
    (api,) = [
        d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "commons-api"
    ]
    (container,) = [
        c for c in api["spec"]["template"]["spec"]["containers"] if c["name"] == "nginx"
    ]
    return templates, {v["name"]: v["value"] for v in container["env"]}, header.lower()


@pytest.fixture
def chart_nginx(tmp_path: Path) -> Iterator[ChartNginx]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: scripts/ensure-system-deps.sh installs nginx-light")
    certs = tmp_path / "certs"
    certs.mkdir()
    ca = make_ca()
    ca.write(certs, "ca")
    issue(ca, "localhost", server=True).write(certs, "server")
    lender = issue(ca, "Sahyadri Cooperative Bank")
    lender.write(certs, "lender")

    seen: list[tuple[str, dict[str, str]]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()

    templates, env, header = _nginx_container()
    tls_port, metrics_port = free_port(), free_port()
    local = {
        "COMMONS_UPSTREAM": f"127.0.0.1:{upstream.server_address[1]}",
        "COMMONS_TLS_LISTEN": f"127.0.0.1:{tls_port}",
        "COMMONS_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
        "COMMONS_TLS_CERT": str(certs / "server.crt"),
        "COMMONS_TLS_KEY": str(certs / "server.key"),
        "COMMONS_CLIENT_CA": str(certs / "ca.crt"),
    }
    assert set(local) <= set(env), "the chart's nginx container sets each of these"
    assert env["COMMONS_UPSTREAM"].startswith("127.0.0.1:"), "the platform on the pod's loopback"
    env = {**env, **local}
    work = tmp_path / "nginx"
    (work / "conf.d").mkdir(parents=True)
    for name, template in templates.items():  # as the image's envsubst step does
        rendered = string.Template(template).safe_substitute(env)
        assert "${COMMONS_" not in rendered, name
        (work / "conf.d" / name.removesuffix(".template")).write_text(rendered)
    config = nginx_main(work, "conf.d/*.conf")
    checked = subprocess.run(
        [NGINX, "-t", "-c", str(config), "-e", str(work / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    proxy = subprocess.Popen(
        [NGINX, "-c", str(config), "-e", str(work / "error.log"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        metrics = f"http://127.0.0.1:{metrics_port}"
        deadline = time.monotonic() + 120  # generous: the machine is busy
        while True:
            try:
                if httpx.get(f"{metrics}/metrics", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proxy.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nginx did not come up:\n{(work / 'error.log').read_text()}")
            time.sleep(0.1)
        seen.clear()
        yield ChartNginx(f"https://127.0.0.1:{tls_port}", metrics, certs, lender, seen, header)
    finally:
        proxy.send_signal(signal.SIGTERM)
        try:
            proxy.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung nginx
            proxy.kill()
            proxy.wait()
        upstream.shutdown()
        upstream.server_close()


def test_the_tls_port_forwards_the_api_with_the_verified_certificate_only(
    chart_nginx: ChartNginx,
) -> None:
    with chart_nginx.client() as client:
        assert client.get("/v1/identities/x", headers=chart_nginx.forged).status_code == 200
    with chart_nginx.client(cert=True) as client:
        assert client.get("/v1/consents").status_code == 200
    (path, headers), (_, bound) = chart_nginx.seen
    assert path == "/v1/identities/x"
    assert chart_nginx.header not in headers, "a header the client wrote is never passed on"
    assert headers["x-forwarded-for"] == "127.0.0.1", "set at the edge, not appended"
    assert bound[chart_nginx.header] == chart_nginx.lender.forwarded


def test_metrics_are_served_on_the_metrics_port_alone(chart_nginx: ChartNginx) -> None:
    with chart_nginx.client() as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics?format=text").status_code == 404
    assert chart_nginx.seen == [], "the TLS port never forwards /metrics"

    scraped = httpx.get(f"{chart_nginx.metrics}/metrics", headers=chart_nginx.forged, timeout=10)
    assert scraped.status_code == 200
    assert scraped.text.startswith("# HELP")
    ((path, headers),) = chart_nginx.seen
    assert path == "/metrics"
    assert chart_nginx.header not in headers, "the platform believes it from loopback: dropped"
    assert headers["x-forwarded-for"] == "127.0.0.1"

    for other in ("/readyz", "/healthz", "/v1/routes", "/v1/consents", "/metrics/x", "/"):
        assert httpx.get(f"{chart_nginx.metrics}{other}", timeout=10).status_code == 404, other
    assert len(chart_nginx.seen) == 1, "nothing but /metrics reaches the platform"
