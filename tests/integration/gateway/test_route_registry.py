"""The route registry through HTTP and the CLI, on SQLite and PostgreSQL (issue 21 §3):
``/readyz`` reports the registry's hash, ``GET /v1/routes`` serves it signed by the
deployment's key (verified against ``GET /v1/routes/jwks``), and a signature that was
tampered with, or covers another registry, is refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from credit_commons.cli import main
from credit_commons.cli import routes as routes_cli
from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.core.errors import ExitCode
from credit_commons.gateway import surface
from credit_commons.gateway.surface_pin import SURFACE_REGISTRY_SHA256
from credit_commons.gateway.surface_signing import RegistrySignatureInvalid, verify_registry
from credit_commons.keys import PublicKey, public_key_from_jwk


@dataclass(frozen=True)
class _Key:
    """A registry key as an auditor has it: the kid and public key of a published JWK."""

    kid: str
    public_key: PublicKey


def _keys(client: TestClient) -> list[_Key]:
    answer = client.get("/v1/routes/jwks")
    assert answer.status_code == 200
    return [_Key(jwk["kid"], public_key_from_jwk(jwk)) for jwk in answer.json()["keys"]]


def test_readyz_reports_the_registry_and_routes_serves_it_signed(client: TestClient) -> None:
    ready = client.get("/readyz").json()
    assert ready["routes"] == SURFACE_REGISTRY_SHA256

    served = client.get("/v1/routes")
    assert served.status_code == 200
    body = served.json()
    assert body["sha256"] == SURFACE_REGISTRY_SHA256
    payload = verify_registry(body["jws"], _keys(client), SURFACE_REGISTRY_SHA256)
    assert payload["registry"] == surface.load().document()
    assert payload["iss"] == "http://127.0.0.1:8000"
    assert served.headers["ratelimit-policy"].startswith('"well-known.ip')


def test_a_tampered_or_foreign_signed_registry_is_refused(client: TestClient) -> None:
    token = client.get("/v1/routes").json()["jws"]
    keys = _keys(client)
    header, payload, signature = token.split(".")

    document = json.loads(b64url_decode(payload))
    document["registry"]["routes"] = document["registry"]["routes"][1:]
    dropped = b64url_encode(json.dumps(document).encode())
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for forged in (f"{header}.{dropped}.{signature}", f"{header}.{payload}.{flipped}"):
        with pytest.raises(RegistrySignatureInvalid, match="does not verify"):
            verify_registry(forged, keys, SURFACE_REGISTRY_SHA256)
    with pytest.raises(RegistrySignatureInvalid, match="not the one served"):
        verify_registry(token, keys, "0" * 64)
    with pytest.raises(RegistrySignatureInvalid, match="no known registry key"):
        verify_registry(token, [], SURFACE_REGISTRY_SHA256)
    with pytest.raises(RegistrySignatureInvalid, match="not an acceptable JWS"):
        verify_registry(token + ".x", keys, SURFACE_REGISTRY_SHA256)


def test_routes_build_check_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "build", "--check", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["sha256"], out["changed"]) == (SURFACE_REGISTRY_SHA256, False)
    assert main(["routes", "show"]) == 0
    shown = capsys.readouterr().out
    assert "POST    /v1/consents  lender consent:request  lender-api" in shown
    assert shown.rstrip().endswith(f"sha256 {SURFACE_REGISTRY_SHA256}")


def test_routes_build_check_fails_on_a_stale_registry(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stale = surface.Registry(surface.load().routes[1:])
    path = tmp_path / "registry.json"
    path.write_text(stale.text(), encoding="utf-8")
    monkeypatch.setattr(surface, "REGISTRY_FILE", path)
    assert main(["routes", "build", "--check"]) == ExitCode.CONFIGURATION
    assert "the committed route registry is not the app's" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == stale.text()  # --check writes nothing


def test_routes_build_keeps_the_deployment_files_pin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # deploy/compose.yaml and the chart's values carry the release's pin (production
    # requires COMMONS_SURFACE_REGISTRY_SHA256): --check names a stale one, build rewrites it.
    assert routes_cli._DEPLOY_PINS, "the checkout's deployment files are known"
    pins = []
    for path, pattern in routes_cli._DEPLOY_PINS:
        assert path.exists(), path
        copy = tmp_path / path.name
        copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        pins.append((copy, pattern))
    monkeypatch.setattr(routes_cli, "_DEPLOY_PINS", tuple(pins))
    assert main(["routes", "build", "--check"]) == 0
    capsys.readouterr()
    compose = pins[0][0]
    released = compose.read_text(encoding="utf-8")
    assert released.count(SURFACE_REGISTRY_SHA256) == 1
    compose.write_text(released.replace(SURFACE_REGISTRY_SHA256, "0" * 64), encoding="utf-8")
    assert main(["routes", "build", "--check"]) == ExitCode.CONFIGURATION
    err = capsys.readouterr().err
    assert "pin is stale" in err
    assert str(compose) in err
    assert main(["routes", "build", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert compose.read_text(encoding="utf-8") == released
    compose.write_text(released.replace(f":-{SURFACE_REGISTRY_SHA256}", ""), encoding="utf-8")
    assert main(["routes", "build", "--check"]) == ExitCode.CONFIGURATION
    assert "does not carry one route registry pin" in capsys.readouterr().err
