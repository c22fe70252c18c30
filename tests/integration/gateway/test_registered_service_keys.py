"""Service instances outside the platform's processes (issue 21 item 2), on SQLite and
PostgreSQL: a full node's key registered by the operator verifies the tokens the node signs
itself (``sub`` its instance name, and no other); the node rotates it through
``POST /v1/internal/service-keys/rotate`` with a proof from its next key; only the signing
version may rotate, a retried rotation answers the same version, a proof for another
service or platform or not signed by its key is refused; the old version verifies through
the overlap window and not after; a token living longer than the platform's token lifetime
is refused; and a rotation made by another process is picked up from the key file."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import make_settings

from credit_commons.cli import main
from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.errors import ValidationError
from credit_commons.core.settings import Settings
from credit_commons.events.models import EventRow
from credit_commons.formats.jws import sign_compact
from credit_commons.gateway.deps import platform_audience
from credit_commons.keys import (
    KEY_PROOF_TYP,
    PrivateKey,
    ServiceIdentity,
    ServiceKeyRefused,
    issue_service_token,
    public_key_to_jwk,
    register_service_key,
)
from credit_commons.runtime import Runtime

STATE = "/v1/internal/log/state"
KEYS = "/v1/internal/service-keys"
ROTATE = "/v1/internal/service-keys/rotate"
TTL = 60


@pytest.fixture
def settings(tmp_path: Path, backend_url: str) -> Settings:
    return make_settings(
        tmp_path, database_url=backend_url, service_token_ttl=TTL, service_key_overlap=120
    )


@pytest.fixture
def node(tmp_path: Path, runtime: Runtime, clock: FixedClock) -> ServiceIdentity:
    identity = ServiceIdentity.create(
        tmp_path / "node-key.json", service="node", name="node-a1", clock=clock
    )
    _register(runtime, identity)
    return identity


def _register(runtime: Runtime, identity: ServiceIdentity) -> None:
    with transaction(runtime.sessions) as session:
        register_service_key(
            session,
            runtime,
            service=identity.service,
            name=identity.name,
            public_key=identity.public_key,
            actor=runtime.operator_actor("operator"),
        )


def _call(client: TestClient, token: str, path: str = STATE, **body: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    answer = (
        client.post(path, json=body, headers=headers) if body else client.get(path, headers=headers)
    )
    return answer.status_code, answer.json()


def _token(runtime: Runtime, identity: ServiceIdentity, *scopes: str, ttl: int = TTL) -> str:
    return identity.token(audience=platform_audience(runtime), scopes=scopes, ttl=ttl)


def _rotate(client: TestClient, runtime: Runtime, identity: ServiceIdentity) -> tuple[int, Any]:
    token = _token(runtime, identity, "keys:rotate")
    return _call(
        client, token, ROTATE, proof=identity.rotation_proof(audience=platform_audience(runtime))
    )


def test_a_registered_node_calls_with_its_own_tokens(
    client: TestClient, runtime: Runtime, node: ServiceIdentity
) -> None:
    status, body = _call(client, _token(runtime, node, "log:state"))
    assert (status, body["size"]) == (200, 0)
    # Not a scope a node may hold; not the route's scope.
    with transaction(runtime.sessions) as session:
        worker = issue_service_token(
            session,
            runtime,
            service="worker",
            scopes=["keys:read"],
            audience=platform_audience(runtime),
            ttl=TTL,
        )
    listed = _call(client, worker, KEYS)[1]["keys"]
    assert [(k["service"], k["name"], k["version"], k["state"]) for k in listed] == [
        ("worker", "worker", 1, "signing"),
        ("node", "node-a1", 1, "signing"),
    ]
    status, body = _call(client, _token(runtime, node, "log:state"), KEYS)
    assert (status, body["code"]) == (403, "auth.service_scope_missing")


def test_the_key_speaks_for_its_instance_only(
    client: TestClient, runtime: Runtime, node: ServiceIdentity, clock: FixedClock
) -> None:
    assert node._key is not None
    now = int(clock.now().timestamp())
    claims = {"iss": "node", "aud": platform_audience(runtime), "iat": now, "exp": now + 30}
    for sub in ("node-b2", "node"):  # another node; the platform's own node key
        forged = sign_compact(
            {"typ": "service+jwt", "kid": node.kid},
            {**claims, "sub": sub, "jti": "x" + sub, "scope": "log:state"},
            node._key,
        )
        status, body = _call(client, forged)
        assert (status, body["detail"]) == (401, "the token's key is unknown or retired")
    bad_name = sign_compact(
        {"typ": "service+jwt", "kid": node.kid},
        {**claims, "sub": "Node A1!", "jti": "x3", "scope": "log:state"},
        node._key,
    )
    assert _call(client, bad_name)[0] == 401


def test_a_token_outliving_the_platforms_lifetime_is_refused(
    client: TestClient, runtime: Runtime, node: ServiceIdentity
) -> None:
    status, body = _call(client, _token(runtime, node, "log:state", ttl=TTL + 1))
    assert (status, body["detail"]) == (401, "the service token's lifetime is not acceptable")


def test_the_node_rotates_its_key_with_an_overlap(
    client: TestClient, runtime: Runtime, node: ServiceIdentity, clock: FixedClock, tmp_path: Path
) -> None:
    shutil.copy(node.path, tmp_path / "v1.json")
    v1 = ServiceIdentity(tmp_path / "v1.json", clock=clock)
    before = _token(runtime, node, "log:state")
    status, body = _rotate(client, runtime, node)
    assert status == 200, body.get("detail")
    assert (body["name"], body["version"]) == ("node-a1", 2)
    assert body["previous_retires_at"] is not None
    # The platform registered it; the node has not switched yet (a lost answer): sent
    # again, signed by the version it replaces, the same rotation answers version 2.
    again = _call(
        client,
        _token(runtime, node, "keys:rotate"),
        ROTATE,
        proof=node.rotation_proof(audience=platform_audience(runtime)),
    )
    assert (again[0], again[1]["version"]) == (200, 2)
    node.commit_rotation()
    assert node.kid == body["kid"]
    # Version 1 verifies through the overlap, but may not pick another successor.
    assert _call(client, before)[0] == 200
    status, body = _rotate(client, runtime, v1)
    assert (status, body["code"]) == (409, "auth.service_key_refused")
    clock.advance(timedelta(seconds=runtime.settings.service_key_overlap - 1))
    assert _call(client, _token(runtime, v1, "log:state"))[0] == 200
    clock.advance(timedelta(seconds=1))
    status, body = _call(client, _token(runtime, v1, "log:state"))
    assert (status, body["detail"]) == (401, "the token's key is unknown or retired")
    assert _call(client, _token(runtime, node, "log:state"))[0] == 200
    with runtime.sessions() as session:
        kinds = session.scalars(
            select(EventRow.type).where(EventRow.type == "service_key.registered")
        ).all()
    assert len(kinds) == 2


def _proof(runtime: Runtime, key: PrivateKey, jwk_key: PrivateKey, **claims: Any) -> str:
    now = int(runtime.clock.now().timestamp())
    payload = {
        "iss": "node",
        "sub": "node-a1",
        "aud": platform_audience(runtime),
        "iat": now,
        "exp": now + 60,
        "jti": "p1",
        **claims,
    }
    header = {"typ": KEY_PROOF_TYP, "jwk": public_key_to_jwk(jwk_key.public_key)}
    return sign_compact(header, payload, key)


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "https://other.example"},
        {"sub": "node-b2"},
        {"iss": "witness"},
        {"exp": 0},
        {"signed_by_another": True},
    ],
)
def test_a_bad_proof_is_refused(
    client: TestClient, runtime: Runtime, node: ServiceIdentity, change: dict[str, Any]
) -> None:
    change = dict(change)  # the parameter is shared by both backends' runs
    new, other = PrivateKey.generate(), PrivateKey.generate()
    signer = other if change.pop("signed_by_another", False) else new
    if change.get("exp") == 0:
        change["exp"] = int(runtime.clock.now().timestamp())
    proof = _proof(runtime, signer, new, **change)
    status, body = _call(client, _token(runtime, node, "keys:rotate"), ROTATE, proof=proof)
    assert (status, body["code"]) == (409, "auth.service_key_refused")
    assert _call(client, _token(runtime, node, "log:state"))[0] == 200  # nothing changed


def test_the_platforms_own_keys_do_not_rotate_through_the_route(
    client: TestClient, runtime: Runtime
) -> None:
    with transaction(runtime.sessions) as session:
        token = issue_service_token(
            session,
            runtime,
            service="node",
            scopes=["keys:rotate"],
            audience=platform_audience(runtime),
            ttl=TTL,
        )
    new = PrivateKey.generate()
    status, body = _call(client, token, ROTATE, proof=_proof(runtime, new, new, sub="node"))
    assert (status, body["code"]) == (409, "auth.service_key_refused")


def test_a_key_registers_once_and_names_are_checked(
    runtime: Runtime, node: ServiceIdentity
) -> None:
    with transaction(runtime.sessions) as session:
        for service, name, error in (
            ("node", "node-b2", ServiceKeyRefused),  # the same key for another instance
            ("node", "node", ValidationError),  # a service id is not an instance name
            ("nobody", "x1", ValidationError),
        ):
            with pytest.raises(error):
                register_service_key(
                    session,
                    runtime,
                    service=service,
                    name=name,
                    public_key=node.public_key,
                    actor=runtime.operator_actor("operator"),
                )


def test_a_rotation_by_another_process_is_picked_up(
    tmp_path: Path, clock: FixedClock, runtime: Runtime
) -> None:
    path = tmp_path / "shared.json"
    serving = ServiceIdentity.create(path, service="node", name="node-c3", clock=clock)
    rotating = ServiceIdentity(path, clock=clock)
    audience = platform_audience(runtime)
    first = serving.token(audience=audience, scopes=["log:state"], ttl=TTL)
    rotating.rotation_proof(audience=audience)
    new_kid = rotating.commit_rotation()
    # The token in hand is reused until it is due for renewal (the old key verifies for
    # the overlap window meanwhile); the renewed one is signed by the new key.
    assert serving.token(audience=audience, scopes=["log:state"], ttl=TTL) == first
    clock.advance(timedelta(seconds=TTL // 2))
    renewed = serving.token(audience=audience, scopes=["log:state"], ttl=TTL)
    assert renewed != first
    assert serving.kid == new_kid
    assert (path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(ValidationError):
        ServiceIdentity.open_or_create(path, service="node", name="node-d4")


def test_the_cli_registers_and_lists(
    settings: Settings,
    runtime: Runtime,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COMMONS_DATABASE_URL", str(settings.database_url))
    identity = ServiceIdentity.create(tmp_path / "k.json", service="node", name="node-e5")
    (tmp_path / "jwk.json").write_text(json.dumps(identity.public_jwk()))
    args = ["service-token", "register", "--service", "node", "--name", "node-e5", "--json"]
    assert main([*args, "--public-key", f"@{tmp_path / 'jwk.json'}"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    # The same key again is refused; a private JWK is refused.
    assert main([*args, "--public-key", json.dumps(identity.public_jwk())]) != 0
    private = json.loads(identity.path.read_text())["key"]["jwk"]
    assert main([*args, "--public-key", json.dumps(private)]) != 0
    capsys.readouterr()
    assert main(["service-token", "keys", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["keys"]
    assert [(r["service"], r["name"], r["version"], r["state"]) for r in listed] == [
        ("node", "node-e5", 1, "signing")
    ]
