"""End to end (SQLite and PostgreSQL): a real ``commons serve`` answers its internal routes
to a service token that ``commons service-token issue`` made, keeps answering the token
after ``commons service-token rotate`` (the overlap window), refuses a token without the
route's scope or no token, and logs each call without the token."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from tests.commons_inprocess import commons
from tests.e2e.test_rules_http import platform

__all__ = ["platform"]  # the fixture: a migrated database and a running server


def _issue(env: dict[str, str], *scopes: str) -> str:
    args = ["service-token", "issue", "--service", "worker", "--json"]
    for scope in scopes:
        args += ["--scope", scope]
    issued = commons(args, env)
    assert issued.returncode == 0, issued.stderr
    token: str = json.loads(issued.stdout)["token"]
    return token


def test_service_tokens_through_a_real_server(
    platform: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = platform
    before = _issue(env, "log:state")
    with httpx.Client(base_url=base, timeout=5) as client:

        def get(path: str, token: str | None) -> httpx.Response:
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            return client.get(path, headers=headers)

        answer = get("/v1/internal/log/state", before)
        assert answer.status_code == 200, answer.text
        assert set(answer.json()) == {"size", "root", "checkpoint_size", "checkpoint_at"}
        refused = get("/v1/internal/service-keys", before)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "auth.service_scope_missing"
        assert get("/v1/internal/log/state", None).status_code == 401

        rotated = commons(["service-token", "rotate", "--service", "worker", "--json"], env)
        assert rotated.returncode == 0, rotated.stderr
        assert get("/v1/internal/log/state", before).status_code == 200  # the overlap
        keys = get("/v1/internal/service-keys", _issue(env, "keys:read"))
        assert keys.status_code == 200, keys.text
        assert [(k["version"], k["state"]) for k in keys.json()["keys"]] == [
            (1, "verifying"),
            (2, "signing"),
        ]
    log = (tmp_path / "server.log").read_text()
    assert log.count('"service.access"') >= 3
    assert before not in log
