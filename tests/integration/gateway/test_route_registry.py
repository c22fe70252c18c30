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


def test_routes_build_writes_the_registry_and_its_pin_and_nothing_in_deploy(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Production requires the operator's own COMMONS_SURFACE_REGISTRY_SHA256: the deployment
    # files carry none, and `make routes` does not write the package's pin into them (that
    # would pre-fill the operator's pin with the package's).  It prints the hash to review.
    deploy = Path(__file__).resolve().parents[3] / "deploy"
    before = {p: p.read_bytes() for p in sorted(deploy.rglob("*")) if p.is_file()}
    assert before, deploy
    committed = surface.load()
    stale = surface.Registry(committed.routes[1:])
    registry, pin = tmp_path / "registry.json", tmp_path / "surface_pin.py"
    registry.write_text(stale.text(), encoding="utf-8")
    pin.write_text('SURFACE_REGISTRY_SHA256 = "' + "0" * 64 + '"\n', encoding="utf-8")
    monkeypatch.setattr(surface, "REGISTRY_FILE", registry)
    monkeypatch.setattr(routes_cli, "_PIN_FILE", pin)
    assert main(["routes", "build"]) == 0
    assert f"sha256 {SURFACE_REGISTRY_SHA256}) written" in capsys.readouterr().out
    assert registry.read_text(encoding="utf-8") == committed.text()
    assert f'SURFACE_REGISTRY_SHA256 = "{SURFACE_REGISTRY_SHA256}"' in pin.read_text()
    assert main(["routes", "build", "--check"]) == 0
    assert f"sha256 {SURFACE_REGISTRY_SHA256}) is up to date" in capsys.readouterr().out
    after = {p: p.read_bytes() for p in sorted(deploy.rglob("*")) if p.is_file()}
    assert after == before
