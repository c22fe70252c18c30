"""The deployment artefacts of issue 21 item 6: deploy/Dockerfile, deploy/compose.yaml and the
Helm chart deploy/helm/commons.

No docker daemon answers on this project's machines, so:

* the Dockerfile is checked for what the issue asks (non-root user, a health check on
  ``/readyz``, state only in a volume, nothing secret copied in), and built and run only
  where a docker daemon answers;
* the compose file is exercised by starting the same processes directly (the issue's
  fallback): its ``migrate``, ``api`` (as many as its replicas) and ``worker`` commands, with
  its production environment, against the local PostgreSQL, Redis and a NATS server — each
  API replica must answer ``/healthz`` and ``/readyz`` (naming the pinned route registry),
  and the worker must keep running;
* the chart is rendered and linted by Helm's own Go SDK (``helm_python``, no helm binary),
  its objects validated against the Kubernetes API's JSON schemas (``kubernetes_validate``),
  and checked for the production shape and for what its NetworkPolicies admit.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import sqlalchemy as sa
import yaml
from tests.conftest import fresh_postgres_schema
from tests.helm_chart import CHART, NAMESPACE, OPERATOR_VALUES, HelmFailed, helm, render_chart
from tests.integration.federation.nats_server import NatsServer
from tests.ports import free_port

from credit_commons.core.settings import Settings
from credit_commons.gateway.surface_pin import SURFACE_REGISTRY_SHA256

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMMONS = [sys.executable, "-m", "credit_commons.cli"]
REDIS_URL = os.environ.get("COMMONS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DNS_1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


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


def test_the_operator_must_pin_the_route_registry() -> None:
    # Production requires COMMONS_SURFACE_REGISTRY_SHA256 (seed 002 §15: a pin held outside
    # the package, the hash of the registry the operator audited).  A default in the
    # deployment files would be the package's own pin again, so none carries one: compose
    # refuses to start without it, the chart to render, and the example leaves it empty.
    environment = _compose()["x-commons"]["environment"]
    pin = environment["COMMONS_SURFACE_REGISTRY_SHA256"]
    assert re.fullmatch(
        r"\$\{COMMONS_SURFACE_REGISTRY_SHA256:\?[^}]*commons routes show[^}]*\}", pin
    )
    for name, service in _compose()["services"].items():
        if service.get("environment", {}).get("COMMONS_ENV") == "production":
            assert service["environment"]["COMMONS_SURFACE_REGISTRY_SHA256"] == pin, name
    assert _env_example()["COMMONS_SURFACE_REGISTRY_SHA256"] == ""
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and not path.is_symlink():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"(?<![0-9a-fA-F])[0-9a-f]{64}(?![0-9a-fA-F])", text), path
    with pytest.raises(HelmFailed, match="surfaceRegistrySha256: set the SHA-256"):
        render_chart(operator=False)
    for malformed in ("0" * 63, SURFACE_REGISTRY_SHA256.upper(), SURFACE_REGISTRY_SHA256 + "0"):
        with pytest.raises(HelmFailed, match="64 lower-case hex digits"):
            render_chart({"config": {"surfaceRegistrySha256": malformed}})
    config = _by_kind(render_chart(), "ConfigMap")["commons-config"]
    given = OPERATOR_VALUES["config"]["surfaceRegistrySha256"]
    assert config["data"]["COMMONS_SURFACE_REGISTRY_SHA256"] == given
    other = "ab" * 32  # the operator's pin is the one the pods get, whatever it is
    config = _by_kind(render_chart({"config": {"surfaceRegistrySha256": other}}), "ConfigMap")
    assert config["commons-config"]["data"]["COMMONS_SURFACE_REGISTRY_SHA256"] == other


def _env_example() -> dict[str, str]:
    lines = (DEPLOY / "env.example").read_text().splitlines()
    pairs = [line.partition("=") for line in lines if line and not line.startswith("#")]
    return {name: value for name, _, value in pairs}


def test_the_env_example_names_every_variable_compose_is_started_with() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    named = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = _env_example()
    assert required <= set(example), "each variable compose requires is in the example"
    commented = set(
        re.findall(r"^# (COMMONS_[A-Z0-9_]+)=", (DEPLOY / "env.example").read_text(), re.M)
    )
    assert named <= set(example) | commented, "each one compose reads is named"
    assert "deploy/.env" in (ROOT / ".gitignore").read_text().splitlines()


def _substituted(value: str, known: dict[str, str]) -> str:
    """A compose value with ``${NAME…}`` replaced from ``known`` (every one must be)."""

    def one(match: re.Match[str]) -> str:
        name, _, default = match.group(1).partition(":-")
        if default and name not in known:
            return default
        return known[re.split(r"[:?-]", name, maxsplit=1)[0]]

    return re.sub(r"\$\{([^}]+)\}", one, value)


@functools.cache
def _audited_registry_hash() -> str:
    """What an operator sets COMMONS_SURFACE_REGISTRY_SHA256 to: the hash `commons routes
    show` ends with, after reviewing the routes it lists."""
    shown = subprocess.run(
        [*COMMONS, "routes", "show"], capture_output=True, text=True, check=True, timeout=300
    )
    last = shown.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"sha256 [0-9a-f]{64}", last), last
    return last.split()[1]


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
        "COMMONS_SURFACE_REGISTRY_SHA256": _audited_registry_hash(),
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
#
# Rendered and linted by Helm's own Go SDK (helm-python-sdk binds libhelm, Helm v4), every
# object validated against the Kubernetes API's JSON schemas (kubernetes-validate, strict: an
# unknown field is an error), then checked for the production shape and for what its
# NetworkPolicies admit.  What no cluster here can show — that the images start with these
# security contexts, that a CNI enforces the policies — is not checked.

KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def _by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def test_helm_lints_the_chart_without_a_warning() -> None:
    for version in KUBERNETES_VERSIONS:
        report = json.loads(helm("lint", json.dumps(OPERATOR_VALUES), kube_version=version))
        assert report["errors"] == []
        assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_object_is_valid_against_the_kubernetes_api_schemas() -> None:
    documents = render_chart()
    assert len(documents) >= 15
    for version in KUBERNETES_VERSIONS:
        for document in documents:
            kubernetes_validate.validate(document, version, strict=True)
    broken = next(d for d in render_chart() if d["kind"] == "Deployment")
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def _pods(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every workload's pod template, by the workload's component label."""
    workloads = [d for d in documents if d["kind"] in {"Deployment", "StatefulSet", "Job"}]
    return {w["metadata"]["labels"]["app.kubernetes.io/component"]: w for w in workloads}


def test_the_chart_renders_the_production_shape() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "commons"
    documents = render_chart()
    for document in documents:
        name = document["metadata"]["name"]
        assert DNS_1123.fullmatch(name), name
        assert len(name) <= 63, name
    config = _by_kind(documents, "ConfigMap")["commons-config"]
    assert all(isinstance(v, str) for v in config["data"].values()), "ConfigMap data are strings"
    assert set(config["data"]) <= _settings_names()
    assert config["data"]["COMMONS_ENV"] == "production"
    assert config["data"]["COMMONS_NATS_URL"] == "nats://commons-nats:4222"

    workloads = _pods(documents)
    assert set(workloads) == {"api", "worker", "migrate", "postgres", "redis", "nats"}
    replicas = {c: w["spec"].get("replicas") for c, w in workloads.items() if c != "migrate"}
    assert replicas == {"api": 2, "worker": 1, "postgres": 1, "redis": 1, "nats": 1}
    # The chart's PostgreSQL exists only once the release's objects do: migrate after install,
    # and before the new pods of an upgrade.
    hook = workloads["migrate"]["metadata"]["annotations"]["helm.sh/hook"]
    assert set(hook.split(",")) == {"post-install", "pre-upgrade"}
    migrate = workloads["migrate"]["spec"]["template"]["spec"]
    assert [c["args"] for c in migrate["initContainers"] + migrate["containers"]] == [
        ["db", "upgrade"],
        ["db", "grant-service-role", "commons_app"],
    ]
    for container in migrate["initContainers"] + migrate["containers"]:  # the schema owner
        assert "COMMONS_MIGRATION_DATABASE_URL" in {v["name"] for v in container["env"]}
    for component in ("api", "worker"):  # the service role only
        for container in workloads[component]["spec"]["template"]["spec"]["containers"]:
            assert "COMMONS_MIGRATION_DATABASE_URL" not in {
                v["name"] for v in container.get("env", [])
            }
    for component, workload in workloads.items():
        _check_pod(workload, platform=component in {"api", "worker", "migrate"})

    api = workloads["api"]["spec"]["template"]
    containers = {c["name"]: c for c in api["spec"]["containers"]}
    assert set(containers) == {"api", "nginx"}
    assert containers["api"]["args"] == ["serve", "--no-worker"]
    assert "ports" not in containers["api"], "the platform listens on the pod's loopback"
    probes = {
        k: containers["api"][k]["exec"]["command"] for k in ("livenessProbe", "readinessProbe")
    }
    assert probes["livenessProbe"][-1] == "http://127.0.0.1:8000/healthz"
    assert probes["readinessProbe"][-1] == "http://127.0.0.1:8000/readyz"
    nginx_ports = {p["name"]: p["containerPort"] for p in containers["nginx"]["ports"]}
    assert nginx_ports == {"https": 8443, "metrics": 9090}
    assert api["metadata"]["annotations"]["prometheus.io/port"] == "9090"
    service = _by_kind(documents, "Service")["commons-api"]
    assert service["spec"]["selector"] == api["metadata"]["labels"]
    assert service["spec"]["ports"] == [
        {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}
    ]
    for name, workload in workloads.items():  # each Service selects its component's pods
        if name in {"postgres", "redis", "nats"}:
            labels = workload["spec"]["template"]["metadata"]["labels"]
            assert _by_kind(documents, "Service")[f"commons-{name}"]["spec"]["selector"] == labels
    (claim,) = _by_kind(documents, "PersistentVolumeClaim").values()
    for component in ("api", "worker"):
        volumes = workloads[component]["spec"]["template"]["spec"]["volumes"]
        claims = [
            v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
        ]
        assert claims == [claim["metadata"]["name"]]  # the data directory, shared


def test_the_chart_ships_the_repositorys_own_nginx_and_postgres_files() -> None:
    # One nginx configuration (the one the mTLS e2e test runs) and one init script, linked
    # into the chart rather than copied.
    configs = _by_kind(render_chart(), "ConfigMap")
    nginx = configs["commons-nginx"]["data"]
    for name in ("commons-mtls.conf.template", "commons-metrics.conf.template"):
        assert nginx[name] == (DEPLOY / "nginx" / name).read_text()
    init = configs["commons-postgres-init"]["data"]["10-service-role.sh"]
    assert init == (DEPLOY / "postgres" / "10-service-role.sh").read_text()
    api = _pods(render_chart())["api"]["spec"]["template"]["spec"]
    (nginx_container,) = [c for c in api["containers"] if c["name"] == "nginx"]
    given = {v["name"] for v in nginx_container["env"]}
    for name in ("commons-mtls.conf.template", "commons-metrics.conf.template"):
        wanted = set(re.findall(r"\$\{(COMMONS_[A-Z_]+)\}", nginx[name]))
        assert wanted, name
        assert wanted <= given, f"{name} needs {wanted - given}"
    env = {v["name"]: v.get("value") for v in nginx_container["env"]}
    assert env["COMMONS_UPSTREAM"] == "127.0.0.1:8000"


def _check_pod(workload: dict[str, Any], *, platform: bool) -> None:
    spec = workload["spec"]
    template = spec["template"]
    if workload["kind"] != "Job":
        assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for template_claim in spec.get("volumeClaimTemplates", []):
        volumes[template_claim["metadata"]["name"]] = template_claim
    for container in pod.get("initContainers", []) + pod["containers"]:
        assert ":" in container["image"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["runAsNonRoot"] is True
        assert context.get("runAsUser", pod["securityContext"]["runAsUser"]) > 0
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["limits"]["memory"]
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert set(mounts.values()) <= set(volumes)
        for variable in container.get("env", []):
            if "valueFrom" in variable:  # secrets only by reference
                reference = variable["valueFrom"]["secretKeyRef"]
                assert reference["name"]
                assert reference["key"]
        if workload["kind"] != "Job":
            assert "readinessProbe" in container or "livenessProbe" in container, container["name"]
        if platform and container["name"] != "nginx":
            assert {"/var/lib/commons", "/tmp", "/run/secrets/commons"} <= set(mounts)
            assert volumes[mounts["/run/secrets/commons"]]["secret"]["defaultMode"] == 0o400
            assert container["envFrom"] == [{"configMapRef": {"name": "commons-config"}}]
            for variable in container["env"]:
                assert variable["name"] in _settings_names()
                assert "secretKeyRef" in variable["valueFrom"]


# What the NetworkPolicies admit, computed as Kubernetes defines it: a pod selected by any
# policy with Ingress admits a connection only when one of those policies has a rule whose
# ports include the target port (none listed: every port) and whose peers include the source
# (none listed: every source).  ipBlock peers are counted as admitting every source (what a
# CNI does with pod addresses in a CIDR varies).


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        value = labels.get(key)
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass(frozen=True)
class _Peer:
    name: str
    namespace: str
    labels: dict[str, str]
    more_namespace_labels: dict[str, str] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace, **self.more_namespace_labels}


def _peer_matches(peer_rule: dict[str, Any], peer: _Peer) -> bool:
    if "ipBlock" in peer_rule:
        return True
    if "namespaceSelector" in peer_rule:
        if not _selects(peer_rule["namespaceSelector"], peer.namespace_labels):
            return False
    elif peer.namespace != NAMESPACE:
        return False  # a podSelector alone: the policy's own namespace
    return _selects(peer_rule.get("podSelector", {}), peer.labels)


def _container_ports(workload: dict[str, Any]) -> dict[str, int]:
    pod = workload["spec"]["template"]["spec"]
    return {p["name"]: p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}


def admits(
    policies: list[dict[str, Any]], workload: dict[str, Any], port: int, peer: _Peer
) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    named = _container_ports(workload)
    selecting = [
        p
        for p in policies
        if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        and _selects(p["spec"]["podSelector"], labels)
    ]
    if not selecting:
        return True  # not isolated: everything gets in
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            ports = [named.get(p["port"], p["port"]) for p in rule.get("ports", [])]
            if ports and port not in ports:
                continue
            if not rule.get("from") or any(_peer_matches(r, peer) for r in rule["from"]):
                return True
    return False


def _component(name: str) -> _Peer:
    return _Peer(
        name,
        NAMESPACE,
        {
            "app.kubernetes.io/name": "commons",
            "app.kubernetes.io/instance": "commons",
            "app.kubernetes.io/component": name,
        },
    )


PROMETHEUS = _Peer("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
STRANGERS = (
    _Peer("a pod in another namespace", "elsewhere", {}),
    _Peer("a pod beside the release", NAMESPACE, {"app": "other"}),
    _Peer("another pod of the monitoring namespace", "monitoring", {"app": "grafana"}),
    _Peer(
        "a prometheus of another namespace", "elsewhere", {"app.kubernetes.io/name": "prometheus"}
    ),
    _Peer(
        "another release's api",
        NAMESPACE,
        {**_component("api").labels, "app.kubernetes.io/instance": "other"},
    ),
)


def check_network_policies(documents: list[dict[str, Any]]) -> None:
    """Who reaches what: the clients nginx's TLS port only; Prometheus nginx's metrics port
    only; the platform's processes (and the migrate Job, PostgreSQL) the backing services;
    nobody the platform's own port or the worker.  Raises AssertionError naming the breach."""
    policies = list(_by_kind(documents, "NetworkPolicy").values())
    workloads = _pods(documents)
    chart_peers = [_component(c) for c in workloads]
    everyone = [*chart_peers, PROMETHEUS, *STRANGERS]
    wanted: dict[tuple[str, int], set[str]] = {
        ("api", 8443): {p.name for p in everyone},
        ("api", 9090): {"prometheus"},
        ("api", 8000): set(),
        ("postgres", 5432): {"api", "worker", "migrate"},
        ("redis", 6379): {"api", "worker"},
        ("nats", 4222): {"api", "worker"},
        ("nats", 8222): set(),  # its monitoring port: the kubelet's probes only
        ("worker", 8000): set(),
        ("migrate", 8000): set(),
    }
    for (target, port), allowed in wanted.items():
        got = {p.name for p in everyone if admits(policies, workloads[target], port, p)}
        assert got == allowed, f"{target}:{port} admits {sorted(got)}, not {sorted(allowed)}"
    for component, workload in workloads.items():  # nothing unlisted gets in anywhere
        for port in {*_container_ports(workload).values(), 1, 8080}:
            if (component, port) not in wanted:
                assert not any(admits(policies, workload, port, p) for p in STRANGERS), (
                    f"{component}:{port} admits a stranger"
                )


def test_the_network_policies_admit_only_what_the_production_shape_needs() -> None:
    check_network_policies(render_chart())


@pytest.mark.parametrize(
    "breach",
    ["postgres open to all", "api policy dropped", "metrics from any namespace", "no deny"],
)
def test_a_chart_whose_policies_let_more_in_fails_the_check(breach: str) -> None:
    documents = render_chart()
    policies = _by_kind(documents, "NetworkPolicy")
    if breach == "postgres open to all":
        policies["commons-postgres"]["spec"]["ingress"] = [{}]
    elif breach == "api policy dropped":
        documents.remove(policies["commons-api"])
    elif breach == "metrics from any namespace":
        rule = policies["commons-api"]["spec"]["ingress"][1]["from"][0]
        rule["namespaceSelector"] = {}
    else:
        documents.remove(policies["commons-default-deny"])
    with pytest.raises(AssertionError, match="admits"):
        check_network_policies(documents)


def test_the_monitoring_selector_is_required_and_values_driven() -> None:
    moved = render_chart(
        {
            "networkPolicy": {
                "monitoring": {
                    # helm merges maps into the defaults: null removes a default label
                    "namespaceLabels": {
                        "kubernetes.io/metadata.name": None,
                        "team": "observability",
                    },
                    "podLabels": {"app.kubernetes.io/name": None, "app": "vmagent"},
                }
            }
        }
    )
    policies = list(_by_kind(moved, "NetworkPolicy").values())
    api = _pods(moved)["api"]
    vmagent = _Peer("vmagent", "obs", {"app": "vmagent"}, {"team": "observability"})
    assert admits(policies, api, 9090, vmagent)
    assert not admits(policies, api, 9090, _Peer("vmagent", "obs", {"app": "vmagent"}))
    assert not admits(policies, api, 9090, PROMETHEUS)
    with pytest.raises(HelmFailed, match="namespaceLabels and podLabels"):
        render_chart({"networkPolicy": {"monitoring": {"namespaceLabels": None}}})
    assert _by_kind(render_chart({"networkPolicy": {"enabled": False}}), "NetworkPolicy") == {}


def test_forwarded_headers_are_believed_from_the_proxy_alone() -> None:
    # Any address in COMMONS_TRUSTED_PROXIES can forge a client address and a lender's
    # certificate: compose trusts nginx's one fixed address; the chart the nginx in each API
    # pod, on loopback, where the platform alone listens.
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    trusted = compose["x-commons"]["environment"]["COMMONS_TRUSTED_PROXIES"]
    nginx_address = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    assert trusted == "${COMMONS_PROXY_CIDR:-" + nginx_address + "/32}"
    (subnet,) = compose["networks"]["default"]["ipam"]["config"]
    assert ipaddress.ip_address(nginx_address) in ipaddress.ip_network(subnet["subnet"])
    config = _by_kind(render_chart(), "ConfigMap")["commons-config"]
    assert config["data"]["COMMONS_TRUSTED_PROXIES"] == "127.0.0.1/32"
    assert config["data"]["COMMONS_HOST"] == "127.0.0.1"


def _proxied_headers(template: str) -> list[set[str]]:
    """The headers nginx sets (lower-cased) in each location of ``template`` that forwards to
    the platform."""
    blocks = re.findall(r"\blocation\b[^{]*\{([^{}]*)\}", template)
    return [
        {name.lower() for name in re.findall(r"^\s*proxy_set_header\s+(\S+)", block, re.M)}
        for block in blocks
        if "proxy_pass" in block
    ]


def test_the_platform_believes_the_certificate_header_nginx_sets() -> None:
    # The platform believes COMMONS_CLIENT_CERT_HEADER from the proxy; nginx replaces the
    # header it sets, and passes any other a client wrote untouched.  So the header the
    # platform reads must be one nginx sets on every request it forwards, or a client could
    # send a lender's certificate of its own through nginx.
    configs = _by_kind(render_chart(), "ConfigMap")
    header = configs["commons-config"]["data"]["COMMONS_CLIENT_CERT_HEADER"]
    templates = configs["commons-nginx"]["data"]
    for name in ("commons-mtls.conf.template", "commons-metrics.conf.template"):
        forwarding = _proxied_headers(templates[name])
        assert forwarding, f"{name} forwards to the platform"
        for headers in forwarding:
            assert header.lower() in headers, f"{name} leaves {header} as the client sent it"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounted = compose["services"]["nginx"]["volumes"][0].split(":")[0]
    compose_header = compose["x-commons"]["environment"]["COMMONS_CLIENT_CERT_HEADER"]
    for headers in _proxied_headers((DEPLOY / mounted).read_text()):
        assert compose_header.lower() in headers
    # And the chart offers no way to name another.
    with pytest.raises(HelmFailed, match="clientCertHeader"):
        render_chart({"config": {"clientCertHeader": "x-other-cert"}})
