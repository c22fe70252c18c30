"""The deployment artefacts of issue 21 item 6: deploy/Dockerfile, deploy/compose.yaml and the
Helm chart deploy/helm/commons.

Neither docker's daemon nor helm is available on this project's machines, so:

* the Dockerfile is checked for what the issue asks (non-root user, a health check on
  ``/healthz``, state only in a volume, nothing secret copied in), and built and run only
  where a docker daemon answers;
* the compose file is exercised by starting the same processes directly (the issue's
  fallback): its ``migrate``, ``api`` (as many as its replicas) and ``worker`` commands, with
  its production environment, against the local PostgreSQL, Redis and a NATS server — each
  API replica must answer ``/healthz`` and ``/readyz``, and the worker must keep running;
* the chart's templates use only plain value references, which this test renders with the
  chart's values and checks against the Kubernetes API shapes (required fields, selectors
  that match their pods, probes on real ports, the security context, secret references);
  with ``helm`` on the PATH, ``helm lint`` and ``helm template`` run too.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from tests.conftest import fresh_postgres_schema
from tests.integration.federation.nats_server import NatsServer
from tests.ports import free_port

from credit_commons.core.settings import Settings
from credit_commons.gateway.surface_pin import SURFACE_REGISTRY_SHA256

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "commons"
COMMONS = [sys.executable, "-m", "credit_commons.cli"]
REDIS_URL = os.environ.get("COMMONS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DNS_1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_PLAIN_REFERENCE = re.compile(r"\.(Values(\.[A-Za-z][A-Za-z0-9]*)+|Release\.Name)")


def _settings_names() -> set[str]:
    return {f"COMMONS_{name.upper()}" for name in Settings.model_fields}


# -- Dockerfile ---------------------------------------------------------------------------------


def _final_stage(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    starts = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    return lines[starts[-1] :]


def test_the_dockerfile_runs_as_a_user_with_a_readiness_check_and_state_in_a_volume() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    final = _final_stage(text)
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users, "the final stage names a USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) > 0
    (check,) = [i for i, line in enumerate(final) if line.startswith("HEALTHCHECK")]
    assert final[check + 1].startswith("CMD curl -fsS ")
    assert '/readyz"' in final[check + 1]  # ready: migrated, the log not diverged
    assert 'VOLUME ["/var/lib/commons"]' in final
    assert any("COMMONS_DATA_DIR=/var/lib/commons" in line for line in final)
    copied = [line for line in text.splitlines() if line.startswith("COPY")]
    for line in copied:
        assert not re.search(r"master\.key|\.env|secret|\.pem", line), line
    assert "--require-hashes -r requirements.lock" in text


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _docker_answers(), reason="no docker daemon answers on this machine")
def test_the_image_builds_and_serves_healthz_read_only() -> None:
    tag = f"credit-commons-test:{secrets.token_hex(4)}"
    subprocess.run(
        ["docker", "build", "-f", str(DEPLOY / "Dockerfile"), "-t", tag, str(ROOT)],
        check=True,
        capture_output=True,
    )
    try:
        port = free_port()
        name = f"commons-{secrets.token_hex(4)}"
        subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--rm",
                "--name",
                name,
                "--read-only",
                "--tmpfs",
                "/tmp",
                "-v",
                "/var/lib/commons",
                "-p",
                f"127.0.0.1:{port}:8000",
                tag,
                "serve",
            ],
            check=True,
            capture_output=True,
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/healthz", 60)
        finally:
            subprocess.run(["docker", "stop", name], capture_output=True, check=False)
    finally:
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)


# -- compose -----------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def test_the_compose_file_has_the_production_shape() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "nats", "nginx", "migrate", "grant", "api", "worker"} <= set(
        services
    )
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 1
    for name in ("migrate", "grant", "api", "worker"):
        service = services[name]
        assert service["read_only"] is True
        assert service["user"] == "10001:10001"
        assert "/tmp" in service["tmpfs"]
        assert service["environment"]["COMMONS_ENV"] == "production"
        assert set(service["environment"]) <= _settings_names(), "every variable is a setting"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["grant"]["condition"] == (
            "service_completed_successfully"
        )
        # The service role, never the schema owner (checked at every production start).
        assert "COMMONS_MIGRATION_DATABASE_URL" not in services[name]["environment"]
        assert "//commons_app:" in services[name]["environment"]["COMMONS_DATABASE_URL"]
    assert services["grant"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["grant"]["command"] == ["db", "grant-service-role", "commons_app"]
    template = services["nginx"]["volumes"][0].split(":")[0]
    assert template == "./nginx/commons-mtls.conf.template"  # the mTLS proxy's own config
    wanted = set(re.findall(r"\$\{(COMMONS_[A-Z_]+)\}", (DEPLOY / template).read_text()))
    assert wanted, "the template names what it is rendered with"
    assert wanted <= set(services["nginx"]["environment"]), "every variable is given"
    assert services["nginx"]["environment"]["COMMONS_UPSTREAM"] == "api:8000"
    # Readiness, not liveness: nginx starts once the replicas are migrated and ready.
    assert services["api"]["healthcheck"]["test"] == [
        "CMD",
        "curl",
        "-fsS",
        "http://127.0.0.1:8000/readyz",
    ]
    assert services["nginx"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_the_deployment_files_pin_the_releases_route_registry() -> None:
    # Production requires COMMONS_SURFACE_REGISTRY_SHA256 (seed 002 §15: a pin held outside
    # the package); compose and the chart carry the release's, which `make routes` keeps.
    environment = _compose()["x-commons"]["environment"]
    pin = environment["COMMONS_SURFACE_REGISTRY_SHA256"]
    assert pin == "${COMMONS_SURFACE_REGISTRY_SHA256:-" + SURFACE_REGISTRY_SHA256 + "}"
    for name, service in _compose()["services"].items():
        if service.get("environment", {}).get("COMMONS_ENV") == "production":
            assert "COMMONS_SURFACE_REGISTRY_SHA256" in service["environment"], name
    (config,) = _by_kind(render_chart(), "ConfigMap").values()
    assert config["data"]["COMMONS_SURFACE_REGISTRY_SHA256"] == SURFACE_REGISTRY_SHA256


def _substituted(value: str, known: dict[str, str]) -> str:
    """A compose value with ``${NAME…}`` replaced from ``known`` (every one must be)."""

    def one(match: re.Match[str]) -> str:
        name, _, default = match.group(1).partition(":-")
        if default and name not in known:
            return default
        return known[re.split(r"[:?-]", name, maxsplit=1)[0]]

    return re.sub(r"\$\{([^}]+)\}", one, value)


def _local_env(
    service: dict[str, Any], tmp_path: Path, urls: dict[str, str], nats_url: str
) -> dict[str, str]:
    """The service's environment, with the compose host names pointed at local servers and
    its database URLs at the test's owner and service roles."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    known = {
        "COMMONS_DB_PASSWORD": "unused",
        "COMMONS_APP_DB_PASSWORD": "unused",
        "COMMONS_PSEUDONYM_PEPPER": secrets.token_urlsafe(32),
        "COMMONS_PUBLIC_URL": "https://commons.example.org",
        "COMMONS_PROXY_CIDR": "127.0.0.1/32",
    }
    for name, value in service["environment"].items():
        env[name] = _substituted(str(value), known)
    if "COMMONS_MIGRATION_DATABASE_URL" in env:
        env["COMMONS_MIGRATION_DATABASE_URL"] = urls["owner"]
    env.update(
        COMMONS_DATA_DIR=str(tmp_path / "data"),
        COMMONS_MASTER_KEY_FILE=str(tmp_path / "secrets" / "master.key"),
        COMMONS_DATABASE_URL=urls["service"],
        COMMONS_REDIS_URL=REDIS_URL,
        COMMONS_NATS_URL=nats_url,
    )
    return env


def _wait_for(url: str, seconds: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None:
            assert process.poll() is None, f"the process serving {url} exited"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200")


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server.url
    finally:
        if server.process is not None:
            server.process.terminate()
            server.process.wait()


@contextmanager
def service_role(owner_url: str) -> Iterator[tuple[str, str]]:
    """The compose file's service role (``commons_app``, made by its postgres init script)
    as a fresh login role on the test's server; yields its name and its URL on the same
    schema."""
    role = f"commons_app_{secrets.token_hex(4)}"
    owner = sa.create_engine(owner_url)
    with owner.begin() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    user = sa.engine.make_url(owner_url).username
    try:
        yield role, owner_url.replace(f"//{user}@", f"//{role}@", 1)
    finally:
        with owner.begin() as connection:
            connection.exec_driver_sql(f"DROP OWNED BY {role}")
            connection.exec_driver_sql(f"DROP ROLE {role}")
        owner.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_the_compose_services_run_as_local_processes(tmp_path: Path, nats_url: str) -> None:
    services = _compose()["services"]
    (tmp_path / "secrets").mkdir(mode=0o700)
    (tmp_path / "data").mkdir(mode=0o700)
    with fresh_postgres_schema() as owner_url, service_role(owner_url) as (role, service_url):
        urls = {"owner": owner_url, "service": service_url}
        env = _local_env(services["migrate"], tmp_path, urls, nats_url)
        pepper = env["COMMONS_PSEUDONYM_PEPPER"]
        subprocess.run(
            [*COMMONS, "keys", "init-master", "--production"],
            env=env,
            check=True,
            capture_output=True,
        )
        for one_shot in ("migrate", "grant"):
            env = _local_env(services[one_shot], tmp_path, urls, nats_url)
            env["COMMONS_PSEUDONYM_PEPPER"] = pepper
            command = [role if a == "commons_app" else a for a in services[one_shot]["command"]]
            ran = subprocess.run(
                [*COMMONS, *command],
                env=env,
                capture_output=True,
                check=False,
            )
            assert ran.returncode == 0, ran.stderr
        processes: list[subprocess.Popen[bytes]] = []
        logs = tmp_path / "logs"
        logs.mkdir()
        try:
            ports = []
            for replica in range(services["api"]["deploy"]["replicas"]):
                env = _local_env(services["api"], tmp_path, urls, nats_url)
                env["COMMONS_PSEUDONYM_PEPPER"] = pepper
                port = free_port()
                command = [str(a) for a in services["api"]["command"]]
                command[command.index("--host") + 1] = "127.0.0.1"  # loopback only, here
                command[command.index("--port") + 1] = str(port)
                with (logs / f"api-{replica}.log").open("wb") as log:
                    processes.append(
                        subprocess.Popen([*COMMONS, *command], env=env, stdout=log, stderr=log)
                    )
                ports.append(port)
            env = _local_env(services["worker"], tmp_path, urls, nats_url)
            env["COMMONS_PSEUDONYM_PEPPER"] = pepper
            with (logs / "worker.log").open("wb") as log:
                worker = subprocess.Popen(
                    [*COMMONS, *services["worker"]["command"]], env=env, stdout=log, stderr=log
                )
            processes.append(worker)
            for replica, (process, port) in enumerate(zip(processes, ports, strict=False)):
                try:
                    _wait_for(f"http://127.0.0.1:{port}/healthz", 120, process)
                except AssertionError as e:
                    raise AssertionError((logs / f"api-{replica}.log").read_text()[-3000:]) from e
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                assert ready.status_code == 200, ready.text
                assert ready.json()["database"] == "postgresql"
                assert ready.json()["mode"] == "normal"
                # Issue 21 item 3: each replica names the registry it serves — the pin.
                assert ready.json()["routes"] == SURFACE_REGISTRY_SHA256
                assert env["COMMONS_SURFACE_REGISTRY_SHA256"] == SURFACE_REGISTRY_SHA256
            # The worker is the log's single writer: it runs, and records the log's first
            # checkpoint (the API replicas run none: --no-worker).
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                assert worker.poll() is None, (logs / "worker.log").read_text()
                answer = httpx.get(f"http://127.0.0.1:{ports[0]}/v1/log/checkpoint", timeout=5)
                if answer.status_code == 200:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("the worker published no checkpoint")
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# -- Helm chart --------------------------------------------------------------------------------


def _value(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split(".")[2:]:
        node = node[part]
    return node


def render_chart(release: str = "commons") -> list[dict[str, Any]]:
    """The chart's manifests with its default values.  Every template action must be a plain
    reference (``.Values.a.b`` or ``.Release.Name``): anything else is refused, so what is
    rendered here is what helm renders."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documents: list[dict[str, Any]] = []
    for template in sorted((CHART / "templates").glob("*.yaml")):
        text = template.read_text()

        def replace(match: re.Match[str], name: str = template.name) -> str:
            action = match.group(1)
            assert _PLAIN_REFERENCE.fullmatch(action), f"{name}: {{{{ {action} }}}}"
            return release if action == ".Release.Name" else str(_value(values, action))

        rendered = _ACTION.sub(replace, text)
        documents.extend(d for d in yaml.safe_load_all(rendered) if d)
    return documents


def _by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def test_the_chart_renders_kubernetes_objects_of_the_production_shape() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "commons"
    assert chart["version"]
    documents = render_chart()
    known_api = {
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("v1", "PersistentVolumeClaim"),
        ("apps/v1", "Deployment"),
        ("batch/v1", "Job"),
    }
    for document in documents:
        assert (document["apiVersion"], document["kind"]) in known_api, document["kind"]
        name = document["metadata"]["name"]
        assert DNS_1123.fullmatch(name), name
        assert len(name) <= 63, name
    configs = _by_kind(documents, "ConfigMap")
    assert len(configs) == 1
    (config,) = configs.values()
    assert all(isinstance(v, str) for v in config["data"].values()), "ConfigMap data are strings"
    assert set(config["data"]) <= _settings_names()
    assert config["data"]["COMMONS_ENV"] == "production"

    deployments = _by_kind(documents, "Deployment")
    assert {n: d["spec"]["replicas"] for n, d in deployments.items()} == {
        "commons-api": 2,
        "commons-worker": 1,
    }
    jobs = _by_kind(documents, "Job")
    (job,) = jobs.values()
    pod = job["spec"]["template"]["spec"]
    assert [c["args"] for c in pod["initContainers"] + pod["containers"]] == [
        ["db", "upgrade"],
        ["db", "grant-service-role", "commons_app"],
    ]
    for container in pod["initContainers"] + pod["containers"]:  # as the schema owner
        assert "COMMONS_MIGRATION_DATABASE_URL" in {v["name"] for v in container["env"]}
    for deployment in deployments.values():  # the service role only
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert "COMMONS_MIGRATION_DATABASE_URL" not in {v["name"] for v in container["env"]}
    for workload in [*deployments.values(), *jobs.values()]:
        _check_pod(workload, config["metadata"]["name"])
    api = deployments["commons-api"]["spec"]["template"]
    container = api["spec"]["containers"][0]
    assert container["args"] == ["serve", "--no-worker"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert "http" in ports
    (service,) = _by_kind(documents, "Service").values()
    assert service["spec"]["selector"] == api["metadata"]["labels"]
    assert service["spec"]["ports"][0]["targetPort"] in ports
    worker = deployments["commons-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"] == ["worker"]
    (claim,) = _by_kind(documents, "PersistentVolumeClaim").values()
    for deployment in deployments.values():
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        claims = [
            v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
        ]
        assert claims == [claim["metadata"]["name"]]  # the data directory, shared


def _check_pod(workload: dict[str, Any], config_map: str) -> None:
    spec = workload["spec"]
    template = spec["template"]
    if workload["kind"] == "Deployment":
        selector = spec["selector"]["matchLabels"]
        assert selector.items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod.get("initContainers", []) + pod["containers"]:
        assert container["image"]
        assert ":" in container["image"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["runAsNonRoot"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert set(mounts.values()) <= set(volumes)
        assert {"/var/lib/commons", "/tmp", "/run/secrets/commons"} <= set(mounts)
        assert volumes[mounts["/run/secrets/commons"]]["secret"]["defaultMode"] == 0o400
        assert container["envFrom"] == [{"configMapRef": {"name": config_map}}]
        for variable in container["env"]:
            assert variable["name"] in _settings_names()
            reference = variable["valueFrom"]["secretKeyRef"]  # secrets only by reference
            assert reference["name"]
            assert reference["key"]
        assert container["resources"]["limits"]["memory"]


@pytest.mark.skipif(shutil.which("helm") is None, reason="helm is not installed on this machine")
def test_helm_lints_and_renders_the_chart_as_this_test_does() -> None:
    subprocess.run(["helm", "lint", str(CHART)], check=True, capture_output=True)
    rendered = subprocess.run(
        ["helm", "template", "commons", str(CHART)], check=True, capture_output=True, text=True
    ).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in documents) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in render_chart()
    )


def test_forwarded_headers_are_believed_from_the_proxy_alone() -> None:
    # Any address in COMMONS_TRUSTED_PROXIES can forge a client address and a lender's
    # certificate: compose trusts nginx's one fixed address, the chart no one by default.
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    trusted = compose["x-commons"]["environment"]["COMMONS_TRUSTED_PROXIES"]
    nginx_address = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    assert trusted == "${COMMONS_PROXY_CIDR:-" + nginx_address + "/32}"
    (subnet,) = compose["networks"]["default"]["ipam"]["config"]
    assert ipaddress.ip_address(nginx_address) in ipaddress.ip_network(subnet["subnet"])
    (config,) = _by_kind(render_chart(), "ConfigMap").values()
    assert config["data"]["COMMONS_TRUSTED_PROXIES"] == ""
