"""The shipped Prometheus alerting rules (deploy/prometheus/alerts.yml): valid for
``promtool check rules``, passing their unit tests (``promtool test rules``: each alert
fires on the series that should raise it, ordinary traffic raises none), and naming only
metrics the app exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from tests.conftest import make_settings, migrate

from credit_commons.gateway.app import create_app
from credit_commons.runtime import Runtime

RULES = Path(__file__).parents[3] / "deploy" / "prometheus"
PROMETHEUS_OWN = {"up"}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed, so the alerting rules cannot be checked: "
            "scripts/ensure-system-deps.sh installs it (make system-deps)"
        )
    return found


def _run(*args: str) -> str:
    done = subprocess.run(
        [_promtool(), *args], cwd=RULES, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_are_valid() -> None:
    assert "SUCCESS: 14 rules found" in _run("check", "rules", "alerts.yml")


def test_the_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS" in _run("test", "rules", "alerts_test.yml")


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((RULES / "alerts_test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
    silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert alerts == fired
    assert alerts == silent


def test_the_rules_name_only_metrics_the_app_exposes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'm.db'}")
    runtime = Runtime.build(settings)
    migrate(runtime.engine)
    with TestClient(create_app(settings, runtime=runtime)) as client:
        exposed = client.get("/metrics").text
    families = set(re.findall(r"^# TYPE (\S+) (\S+)", exposed, re.MULTILINE))
    names = {n for n, _ in families}
    names |= {f"{n}_total" for n, kind in families if kind == "counter"}
    used = set(re.findall(r"\b(commons_[a-z_]+|up)\b", (RULES / "alerts.yml").read_text()))
    used = {u for u in used if not u.startswith("commons-")}
    assert used - PROMETHEUS_OWN <= names, sorted(used - PROMETHEUS_OWN - names)
    assert "commons_alerts_total" in used
