"""The project's Helm chart (deploy/helm/commons) as Helm renders and lints it: Helm's own Go
SDK (``helm_python``, from the helm-python-sdk package: libhelm, Helm v4), run in a process
of its own so that its Go runtime stays out of the test process."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from credit_commons.gateway.surface_pin import SURFACE_REGISTRY_SHA256

CHART = Path(__file__).resolve().parents[1] / "deploy" / "helm" / "commons"
NAMESPACE = "commons"
# What an operator must give (the chart has no default): the hash of the route registry they
# audited, here the release's own.
OPERATOR_VALUES: dict[str, Any] = {"config": {"surfaceRegistrySha256": SURFACE_REGISTRY_SHA256}}

_HELM = """
import json, sys
import helm_python
request = json.load(sys.stdin)
try:
    if request["op"] == "lint":
        answer = helm_python.lint(request["chart"], request["values"], strict=True,
                                  namespace=request["namespace"],
                                  kube_version=request["kube_version"])
    else:
        with helm_python.Chart.load(request["chart"]) as chart:
            answer = chart.render(request["values"], name=request["release"],
                                  namespace=request["namespace"])
except helm_python.HelmError as e:
    answer = {"error": str(e)}
json.dump(answer, sys.stdout)
"""


class HelmFailed(Exception):
    """Helm refused the chart (a template's ``fail``, a template that does not render)."""


@functools.cache
def helm(op: str, values: str = "null", release: str = "commons", kube_version: str = "") -> str:
    """Helm's SDK in a process of its own (its Go runtime stays out of the test process),
    answering JSON; cached, so each caller parses a fresh copy."""
    request = {
        "op": op,
        "chart": str(CHART),
        "values": json.loads(values),
        "release": release,
        "namespace": NAMESPACE,
        "kube_version": kube_version,
    }
    done = subprocess.run(
        [sys.executable, "-c", _HELM],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def operator_values(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """:data:`OPERATOR_VALUES` with ``values`` merged over them (maps merged, as helm does)."""

    def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in over.items():
            both = isinstance(value, dict) and isinstance(base.get(key), dict)
            out[key] = merged(base[key], value) if both else value
        return out

    return merged(OPERATOR_VALUES, values or {})


def render_chart(
    values: dict[str, Any] | None = None, release: str = "commons", *, operator: bool = True
) -> list[Any]:
    """The chart's manifests as ``helm template`` renders them (default values, merged with
    the operator's required ones unless ``operator`` is false, then with ``values``).
    Raises :class:`HelmFailed` when helm refuses."""
    given = operator_values(values) if operator else values
    manifests = json.loads(helm("render", json.dumps(given, sort_keys=True), release))
    if set(manifests) == {"error"}:
        raise HelmFailed(manifests["error"])
    documents: list[Any] = []
    for name in sorted(manifests):
        documents.extend(d for d in yaml.safe_load_all(manifests[name]) if d)
    return documents
