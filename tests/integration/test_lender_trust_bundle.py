"""The lender client verifying a retrieval against the platform's trust bundle, on SQLite and
PostgreSQL, over HTTP (the app's in-process transport): the bundle fetched from
``/.well-known/trust-bundle`` and verified under the key the lender pinned (what
``/v1/admin/trust-bundle`` and ``commons verify trust key`` publish), then the credential's
issuer judged by it.  Refused: a type the bundle does not let the issuer issue, a mark it
does not give, a bundle signed by another key, a rolled-back bundle; accepted: the normal
retrieval."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.consent_world import BASE, World, world  # noqa: F401 - fixture
from tests.integration.test_lender_client import InProcess, ready  # noqa: F401 - fixture
from tests.ports import free_port

from credit_commons.cli import main
from credit_commons.client import BundleVersions, Lender, Retrieval
from credit_commons.keys import encode_did_key
from credit_commons.keys.algorithms import PrivateKey
from credit_commons.verifier import (
    IssuerNotTrusted,
    TrustBundleRollback,
    TrustBundleSignatureInvalid,
)

BUNDLE_PATH = "/.well-known/trust-bundle"


class Replaying(InProcess):
    """The platform over HTTP, except that the trust bundle may be replaced by an answer
    recorded earlier (an old bundle replayed by someone between lender and platform)."""

    def __init__(self, w: World) -> None:
        super().__init__(w.http)
        self.replay: bytes | None = None
        self.bundles: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == BUNDLE_PATH and self.replay is not None:
            return httpx.Response(
                200, content=self.replay, headers={"Content-Type": "application/trust-bundle+jwt"}
            )
        answer = super().handle_request(request)
        if request.url.path == BUNDLE_PATH:
            self.bundles.append(answer.content)
        return answer


def _bundle_key(w: World) -> tuple[str, dict[str, Any]]:
    view = w.http.get("/v1/admin/trust-bundle", headers=w.admin)
    assert view.status_code == 200, view.text
    return view.json()["did"], view.json()["key"]


def _pinned(w: World, base: Lender, transport: Replaying, key: str, **kw: Any) -> Lender:
    # The same lender (client id, key, log key), verifying against the bundle.
    return Lender(
        BASE,
        client_id=base.client_id,
        key=base.key,
        log_key=base.log_key,
        transport=transport,
        clock=lambda: w.clock.now().timestamp(),
        bundle_key=key,
        bundle_versions=BundleVersions(),
        **kw,
    )


@pytest.fixture
def pinned(
    ready: tuple[World, Lender, Retrieval],  # noqa: F811
) -> Iterator[tuple[World, Lender, Retrieval, Replaying, str]]:
    """The retrieval of ``ready``, and a lender pinning the platform's bundle key."""
    w, lender, retrieval = ready
    did, _ = _bundle_key(w)
    transport = Replaying(w)
    with _pinned(w, lender, transport, did) as bundled:
        yield w, bundled, retrieval, transport, did


def test_the_retrieval_verifies_against_the_bundle(
    pinned: tuple[World, Lender, Retrieval, Replaying, str],
) -> None:
    w, lender, retrieval, transport, _ = pinned
    verified = lender.verify(retrieval)
    assert verified.issuer == BASE
    assert verified.status == "valid"
    assert verified.claims["income_bracket"] == "5L-25L"
    assert len(transport.bundles) == 1  # the bundle was fetched, not skipped
    # Pinned as the JWK the platform publishes, too.
    _, jwk = _bundle_key(w)
    with _pinned(w, lender, Replaying(w), json.dumps(jwk)) as by_jwk:
        assert by_jwk.verify(retrieval).issuer == BASE


def test_a_type_the_bundle_does_not_allow_is_refused(
    pinned: tuple[World, Lender, Retrieval, Replaying, str],
) -> None:
    w, lender, retrieval, _, _ = pinned
    # The administrator's own entry for the platform's URL takes the place of the
    # automatic one (any type): now it may issue another type only.
    made = w.http.post(
        "/v1/admin/trust-bundle/entries",
        json={"issuer": BASE, "types": ["https://other.example/vct/membership/v1"]},
        headers=w.admin,
    )
    assert made.status_code == 201, made.text
    with pytest.raises(IssuerNotTrusted) as refused:
        lender.verify(retrieval)
    assert refused.value.reason == "type_not_allowed"


def test_a_mark_the_bundle_does_not_give_is_refused(
    pinned: tuple[World, Lender, Retrieval, Replaying, str],
) -> None:
    w, lender, retrieval, _, did = pinned
    strict = _pinned(w, lender, Replaying(w), did, required_marks=["bank"])
    with strict, pytest.raises(IssuerNotTrusted) as refused:
        strict.verify(retrieval)
    assert refused.value.reason == "mark_missing"


def test_a_bundle_signed_by_another_key_is_refused(
    pinned: tuple[World, Lender, Retrieval, Replaying, str],
) -> None:
    w, lender, retrieval, _, _ = pinned
    other = encode_did_key(PrivateKey.generate().public_key)
    wrong = _pinned(w, lender, Replaying(w), other)
    with wrong, pytest.raises(TrustBundleSignatureInvalid):
        wrong.verify(retrieval)


def test_a_rolled_back_bundle_is_refused(
    pinned: tuple[World, Lender, Retrieval, Replaying, str],
) -> None:
    w, lender, retrieval, transport, _ = pinned
    lender.verify(retrieval)  # version 1 accepted
    (old,) = transport.bundles
    made = w.http.post(
        "/v1/admin/trust-bundle/entries", json={"issuer": "did:web:coop.example"}, headers=w.admin
    )
    assert made.status_code == 201, made.text
    lender.verify(retrieval)  # version 2 accepted
    transport.replay = old
    with pytest.raises(TrustBundleRollback):
        lender.verify(retrieval)


def test_the_command_refuses_a_bundle_key_that_is_not_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `commons lender verify --trust-bundle-key`: the pin is parsed before any request.
    monkeypatch.chdir(tmp_path)
    saved = {
        "consent_id": "cns_x",
        "type": "CreditReadinessCredential",
        "credential": "e30.e30.sig~",
        "disclosed": [],
        "mode": "one_time",
        "access_event_id": "evt_x",
    }
    (tmp_path / "retrieval.json").write_text(json.dumps(saved))
    url = f"http://127.0.0.1:{free_port()}"
    for key in ("did:key:zNotAKey", '{"kty": "OKP"}', "neither"):
        argv = ["lender", "verify", "retrieval.json", "--url", url, "--log-key", "k"]
        code = main([*argv, "--trust-bundle-key", key, "--json"])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        assert (code, json.loads(captured.err)["code"]) == (8, "lender.bundle_key_invalid")
