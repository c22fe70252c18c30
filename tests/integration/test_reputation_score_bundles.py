"""Score bundles over HTTP on SQLite and PostgreSQL: ``GET /v1/scores`` for the subject
(values and salts) and for anyone else (commitments), 404 without an oracle, a refused
subject proof before any lookup; ``commons score verify`` accepts an honest bundle and
refuses its tampered siblings, naming the first failing check."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.integration.reputation_world import (
    AT,
    CTX,
    active_rules,
    checkpoint,
    fetch_bundle,
    member_did,
    member_key,
    register_dev_rules,
    register_member,
    signed_event,
    submit,
)

from credit_commons.cli import main
from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_decode, b64url_encode, sha256_hex
from credit_commons.core.settings import Settings
from credit_commons.formats.jws import sign_compact
from credit_commons.jobs import bundles_step
from credit_commons.reputation import (
    rules_service,
    scores_service,
    scores_store,
)
from credit_commons.reputation.scorer import score_reference
from credit_commons.reputation.scores_bundle import (
    BundleInvalid,
    commitment,
    verify_bundle,
)
from credit_commons.reputation.scores_service import (
    ScoringState,
    score_checkpoint,
    scoring_events,
    scoring_members,
)
from credit_commons.runtime import Runtime


@pytest.fixture(autouse=True)
def clock(runtime: Runtime) -> FixedClock:
    fixed = FixedClock(AT)
    runtime.clock = fixed
    register_dev_rules(runtime)
    return fixed


def _world(rt: Runtime) -> None:
    """Six members; 1-4 vouch for each other, 5 and 6 report 4, 5 vouches for 1; scored."""
    rules = active_rules(rt)
    for n in range(1, 7):
        register_member(rt, n, rules=rules)
    pairs = [(i, j, "vouch") for i in range(1, 5) for j in range(1, 5) if i != j]
    pairs += [(5, 4, "report"), (6, 4, "report"), (5, 1, "vouch")]
    for sender, to, kind in pairs:
        submit(rt, signed_event(sender, to, type=kind), rules)
    checkpoint(rt)
    assert score_checkpoint(rt, ScoringState()) is not None


def _proof(rt: Runtime, n: int, *, ctx: str = CTX, age: int = 0, aud: str | None = None) -> str:
    payload = {
        "aud": aud or rt.settings.public_url,
        "iat": int(AT.timestamp()) - age,
        "sub": member_did(n),
        "ctx": ctx,
    }
    return sign_compact({"typ": "score-request+jwt"}, payload, member_key(n))


def test_the_first_fetch_answers_202_and_a_jobs_step_builds_the_bundle(
    runtime: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch, clock: FixedClock
) -> None:
    _world(runtime)
    params = {"did": member_did(4), "ctx": CTX}
    built: list[object] = []
    real = scores_service._build_bundle

    def counted(*args: Any) -> bytes:
        built.append(args)
        return real(*args)

    monkeypatch.setattr(scores_service, "_build_bundle", counted)
    first = client.get("/v1/scores", params=params)
    assert first.status_code == 202
    assert first.headers["retry-after"] == "2"
    assert first.json()["status"] == "pending"
    assert built == []  # never on the request path
    assert client.get("/v1/scores", params=params).status_code == 202  # one request kept
    with transaction(runtime.sessions) as session:
        assert scores_store.requested_bundles(session, 10) == [
            (member_did(4), CTX, scores_store.score_row(session, member_did(4), CTX).record_hash)  # type: ignore[union-attr]
        ]
    assert bundles_step(batch=1)(runtime, 0) == {"bundles_built": 1}
    assert len(built) == 1
    served = client.get("/v1/scores", params=params)
    assert served.status_code == 200
    assert verify_bundle(served.json(), trust_bundle_keys=True).events > 0
    assert bundles_step()(runtime, 0) == {}  # nothing left requested
    # A bounded pass: two requests, one built a pass, oldest first.
    for n in (2, 1):
        assert (
            client.get("/v1/scores", params={"did": member_did(n), "ctx": CTX}).status_code == 202
        )
        clock.advance(timedelta(seconds=1))
    assert bundles_step(batch=1)(runtime, 0) == {"bundles_built": 1}
    assert client.get("/v1/scores", params={"did": member_did(2), "ctx": CTX}).status_code == 200
    assert client.get("/v1/scores", params={"did": member_did(1), "ctx": CTX}).status_code == 202
    # Unknown DID or context: still 404 without building or requesting anything.
    assert client.get("/v1/scores", params={"did": member_did(9), "ctx": CTX}).status_code == 404
    assert len(built) == 2


def test_subject_and_public_views_and_no_oracle(runtime: Runtime, client: TestClient) -> None:
    _world(runtime)
    public = fetch_bundle(client, 4)
    assert public.status_code == 200
    bundle = public.json()
    assert bundle["format"] == "credit-commons-score-bundle/v1"
    factors = bundle["record"]["factors"]
    assert all(len(v) == 64 and "." not in v for v in factors.values())
    assert fetch_bundle(client, 4).content == public.content  # the kept bundle, byte for byte

    mine = fetch_bundle(client, 4, **{"Subject-Proof": _proof(runtime, 4)})
    assert mine.status_code == 200
    own = mine.json()
    assert own["record"]["factors"]["K"] == "1.000000"
    assert own["record"]["factors"]["R"] != "0.000000"  # two KYC reporters: the quorum
    for name, value in own["record"]["factors"].items():
        assert commitment(name, value, own["factorSalts"][name]) == factors[name]
    # Score, tier and diversity are hidden too: knowing the DID (a credential's cnf) must not
    # give away more than the holder consented to show.
    assert own["record"]["tier"] is not None
    for name in ("score", "tier", "diversity"):
        hidden = bundle["record"][name]
        assert isinstance(hidden, str), name
        assert len(hidden) == 64, name
        assert commitment(name, own["record"][name], own["factorSalts"][name]) == hidden
    assert own["record"]["score"] not in public.text
    assert verify_bundle(own, trust_bundle_keys=True).values_checked
    assert not verify_bundle(bundle, trust_bundle_keys=True).values_checked

    # Another DID's key, a stale proof, another platform: 401, before any lookup.
    for proof in (
        _proof(runtime, 5),
        _proof(runtime, 4, age=61),
        _proof(runtime, 4, aud="https://elsewhere.example"),
        _proof(runtime, 4, ctx="general"),
    ):
        refused = fetch_bundle(client, 4, **{"Subject-Proof": proof})
        assert refused.status_code == 401
        assert refused.json()["code"] == "reputation.subject_proof_invalid"
    unknown_did = client.get(
        "/v1/scores",
        params={"did": member_did(9), "ctx": CTX},
        headers={"Subject-Proof": _proof(runtime, 9)},
    )
    unknown_ctx = client.get("/v1/scores", params={"did": member_did(4), "ctx": "commerce:x"})
    assert unknown_did.status_code == unknown_ctx.status_code == 404
    assert unknown_did.headers["content-type"] == "application/problem+json"
    assert unknown_did.json()["code"] == unknown_ctx.json()["code"] == "reputation.score_not_found"
    assert client.get("/v1/scores", params={"did": "x", "ctx": CTX}).status_code == 422


def _tampered(bundle: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    cases: dict[str, tuple[dict[str, Any], str]] = {}
    b = copy.deepcopy(bundle)
    blob = bytearray(b64url_decode(b["events"][0]["blob"]))
    blob[-3] ^= 1
    b["events"][0]["blob"] = b64url_encode(bytes(blob))
    cases["a changed event byte"] = (b, "event[0]")
    b = copy.deepcopy(bundle)
    used = set(b["record"]["events"])
    b["events"] = [e for e in b["events"] if e["cid"] != sorted(used)[0]]
    cases["a dropped event"] = (b, "statement")
    b = copy.deepcopy(bundle)
    b["ruleSet"]["hash"] = "0" * 64
    cases["a wrong rule hash"] = (b, "rule_set")
    b = copy.deepcopy(bundle)
    lines = b["checkpoint"].split("\n")
    lines[1] = str(int(lines[1]) + 1)
    b["checkpoint"] = "\n".join(lines)
    cases["a forged checkpoint"] = (b, "checkpoint")
    b = copy.deepcopy(bundle)
    b["record"]["score"] = "99.000000"
    cases["an altered score"] = (b, "recompute")
    b = copy.deepcopy(bundle)
    b["record"]["factors"]["V"] = "9.000000"
    cases["an altered factor value"] = (b, "recompute")
    return cases


def test_offline_verify_accepts_honest_and_refuses_tampered(
    runtime: Runtime, client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _world(runtime)
    bundle = fetch_bundle(client, 4, **{"Subject-Proof": _proof(runtime, 4)}).json()
    log_key = client.get("/v1/log/key").json()["vkey"]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(client.get("/v1/rules/jwks").json()))
    scores_jwks = client.get("/v1/scores/jwks").json()
    statement_jwks = tmp_path / "scores-jwks.json"
    statement_jwks.write_text(json.dumps(scores_jwks))
    honest = tmp_path / "bundle.json"
    honest.write_text(json.dumps(bundle))
    pinned = ["--log-key", log_key, "--rules-jwks", str(jwks), "--scores-jwks", str(statement_jwks)]
    capsys.readouterr()
    assert main(["score", "verify", str(honest), *pinned, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"]
    assert out["keysPinned"]
    assert out["valuesChecked"]
    assert out["events"] == len(bundle["events"]) > 0
    for name, (document, check) in _tampered(bundle).items():
        with pytest.raises(BundleInvalid) as refused:
            verify_bundle(document, log_vkey=log_key, scores_jwks=scores_jwks)
        assert refused.value.check == check, name
        path = tmp_path / "tampered.json"
        path.write_text(json.dumps(document))
        assert main(["score", "verify", str(path), *pinned]) != 0, name
        assert f"{check}:" in capsys.readouterr().err, name
    # A checkpoint signed by another key verifies only against that key: a pinned log key
    # refuses a bundle whose own key is not the platform's.
    other = copy.deepcopy(bundle)
    other["logKey"] = "other+00000000+AQ" + "A" * 42
    with pytest.raises(BundleInvalid) as refused:
        verify_bundle(other, trust_bundle_keys=True)
    assert refused.value.check == "checkpoint"
    verified = verify_bundle(other, log_vkey=log_key, scores_jwks=scores_jwks)
    assert verified.record_hash == bundle["recordHash"]
    # No score-statement key pinned and no explicit trust in the bundle's own: refused.
    with pytest.raises(BundleInvalid) as refused:
        verify_bundle(bundle, log_vkey=log_key)
    assert refused.value.check == "statement"
    assert main(["score", "verify", str(honest), "--log-key", log_key]) != 0
    assert "statement:" in capsys.readouterr().err
    assert main(["score", "verify", str(honest), "--trust-bundle-keys", "--json"]) == 0
    assert not json.loads(capsys.readouterr().out)["keysPinned"]


def test_show_prints_the_cached_record(
    runtime: Runtime,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _world(runtime)
    monkeypatch.setenv("COMMONS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COMMONS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COMMONS_ENV", settings.env.value)
    capsys.readouterr()
    code = main(["score", "show", member_did(4), CTX, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["record"]["did"] == member_did(4)
    assert main(["score", "show", member_did(4), CTX, "--bundle"]) == 0
    public = json.loads(capsys.readouterr().out)
    assert "factorSalts" not in public
    assert len(public["record"]["score"]) == 64  # a commitment, as GET /v1/scores serves it
    assert main(["score", "show", member_did(9), CTX]) != 0
    assert "reputation.score_not_found" in capsys.readouterr().err


def test_malformed_bundles_are_refused_by_name(runtime: Runtime, client: TestClient) -> None:
    _world(runtime)
    bundle = fetch_bundle(client, 4).json()
    for document, check in (
        ([], "format"),
        ({**bundle, "format": "credit-commons-receipt/v1"}, "format"),
        ({**bundle, "events": {"cid": "x"}}, "format"),
        ({**bundle, "members": None}, "format"),
        ({**bundle, "events": [7]}, "event[0]"),
        ({**bundle, "members": [{"did": 7}]}, "member[0]"),
        ({**bundle, "ruleSet": {"token": "not.a.jws", "hash": "0" * 64}}, "rule_set"),
        ({**bundle, "record": {**bundle["record"], "asOf": "yesterday"}}, "statement"),
    ):
        with pytest.raises(BundleInvalid) as refused:
            verify_bundle(document, trust_bundle_keys=True)
        assert refused.value.check == check, document if isinstance(document, list) else check


def _forged(rt: Runtime, bundle: dict[str, Any], drop: str) -> dict[str, Any]:
    """The subject's bundle without the event ``drop``, its record and hash recomputed by
    the reference scorer from what is left: consistent, but not what the platform scored."""
    rules = active_rules(rt)
    with transaction(rt.sessions) as session:
        events = scoring_events(e for e in scores_store.events_of(session, [CTX]) if e.cid != drop)
        members = scoring_members(scores_store.members(session), rules)
    did, as_of = bundle["record"]["did"], date.fromisoformat(bundle["asOf"])
    record = score_reference(events, members, (), rules, as_of=as_of, ctx=CTX)[did]
    forged = copy.deepcopy(bundle)
    forged["events"] = [e for e in forged["events"] if e["cid"] != drop]
    forged["record"] = record.as_json()
    forged["recordHash"] = sha256_hex(record.to_jcs())
    return forged


def test_statement_refuses_a_dropped_report_and_a_borrowed_membership(
    runtime: Runtime, client: TestClient
) -> None:
    _world(runtime)
    own = fetch_bundle(client, 4, **{"Subject-Proof": _proof(runtime, 4)}).json()
    keys = client.get("/v1/scores/jwks").json()
    assert verify_bundle(own, scores_jwks=keys).values_checked
    # Drop one of the two reports (the quorum): R falls to 0 and the score rises; the record
    # and its hash are recomputed, so only the platform's statement can tell.
    reports = [
        e["cid"] for e in own["events"] if json.loads(b64url_decode(e["blob"]))["type"] == "report"
    ]
    assert len(reports) == 2
    forged = _forged(runtime, own, reports[0])
    assert Decimal(forged["record"]["score"]) > Decimal(own["record"]["score"])
    with pytest.raises(BundleInvalid) as refused:
        verify_bundle(forged, scores_jwks=keys)
    assert refused.value.check == "statement"
    # Another DID's KYC membership attached to DID 9: its spine event names another DID.
    borrowed = copy.deepcopy(own)
    n = next(i for i, m in enumerate(borrowed["members"]) if m["did"] == member_did(5))
    borrowed["members"][n]["did"] = member_did(9)
    with pytest.raises(BundleInvalid) as refused:
        verify_bundle(borrowed, scores_jwks=keys)
    assert refused.value.check == f"member[{n}]"
    # An event's spine event must name its DIDs' hashes too.
    tampered = copy.deepcopy(own)
    tampered["events"][0]["event"]["details"]["to_sha256"] = "0" * 64
    with pytest.raises(BundleInvalid) as refused:
        verify_bundle(tampered, scores_jwks=keys)
    assert refused.value.check == "event[0]"


def test_subject_proof_audience_ignores_a_trailing_slash(
    runtime: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A public URL configured with a trailing "/": a wallet names the platform without it,
    # as presentations to POST /v1/reputation/members do; both routes of the group agree.
    _world(runtime)
    base = runtime.settings.public_url.rstrip("/")
    proof = _proof(runtime, 4, aud=base)
    slashed = runtime.settings.model_copy(update={"public_url": base + "/"})
    monkeypatch.setattr(runtime, "settings", slashed)
    assert fetch_bundle(client, 4, **{"Subject-Proof": proof}).status_code == 200
    capabilities = client.get(
        "/v1/reputation/capabilities",
        params={"did": member_did(4), "ctx": CTX},
        headers={"Subject-Proof": proof},
    )
    assert capabilities.status_code == 200, capabilities.text
    wrong = _proof(runtime, 4, aud="https://elsewhere.example")
    assert fetch_bundle(client, 4, **{"Subject-Proof": wrong}).status_code == 401


def test_bundle_reads_the_neighbourhood_only_and_is_capped(
    runtime: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _world(runtime)

    # Assembling a bundle never reads a whole context (nor every membership): the
    # neighbourhood hop by hop through the recipient index, the memberships of its DIDs.
    def whole(*_: object) -> None:
        raise AssertionError("read a whole context or every membership")

    monkeypatch.setattr(scores_store, "events_of", whole)
    monkeypatch.setattr(scores_store, "members", whole)
    own = fetch_bundle(client, 4, **{"Subject-Proof": _proof(runtime, 4)})
    assert own.status_code == 200, own.text
    assert verify_bundle(own.json(), trust_bundle_keys=True).events == len(own.json()["events"])
    # Above the cap of inputs: a stable refusal instead of a bundle.
    monkeypatch.setattr(scores_service, "MAX_BUNDLE_INPUTS", 3)
    refused = fetch_bundle(client, 1)
    assert refused.status_code == 409
    assert refused.json()["code"] == "reputation.bundle_too_large"


def test_a_kyc_type_a_later_rule_set_drops_scores_k_zero_and_verifies(
    runtime: Runtime, client: TestClient, clock: FixedClock
) -> None:
    _world(runtime)
    before = fetch_bundle(client, 4, **{"Subject-Proof": _proof(runtime, 4)}).json()
    assert before["record"]["factors"]["K"] == "1.000000"
    # Version 2 no longer lists the type the memberships were registered with as KYC.
    document = json.loads(active_rules(runtime).canonical)
    document["version"] = before["record"]["ruleSet"]["version"] + 1
    document["validFrom"] = (AT + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    document["kyc"]["credentialTypes"] = ["https://credit-commons.dev/vct/other/v1"]
    with transaction(runtime.sessions) as session:
        rules_service.register_rule_set(
            session, runtime, document, actor=runtime.operator_actor("reputation"), dev=True
        )
    clock.advance(timedelta(minutes=2))
    checkpoint(runtime)
    scored = score_checkpoint(runtime, ScoringState())
    assert scored is not None
    assert scored.full
    after = fetch_bundle(client, 4, **{"Subject-Proof": _proof(runtime, 4, age=-120)})
    assert after.status_code == 200, after.text
    bundle = after.json()
    assert bundle["record"]["ruleSet"]["version"] == document["version"]
    assert bundle["record"]["factors"]["K"] == "0.000000"
    # No KYC reporter any more: the report quorum is not met either.
    assert bundle["record"]["factors"]["R"] == "0.000000"
    verified = verify_bundle(bundle, trust_bundle_keys=True)
    assert verified.values_checked
    assert verified.record_hash == bundle["recordHash"]
