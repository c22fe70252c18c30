"""The denial matrix (issue 16; seed 002 §5): one case per pipeline step, plus DCQL
satisfaction, a malformed response and a dependency failure, on SQLite and PostgreSQL.

Each case posts an OpenID4VP response to the response endpoint over HTTP and checks that
it is denied, that the wire carries only ``{"error": "not_allowed"}`` — the same body, the
same status and no other member for every case — and that the precise reason is in the
verifier's decision record (``GET /v1/verifier/requests/{id}``) and the
``verification.decided`` event (or, for a response to no transaction at all, in the log).
Step 1's refusals leave the transaction undecided (a post that does not know its state is
only logged).  The W3C cases (a VP-JWT's holder signature, nonce and audience, an untrusted
issuer, a revoked credential) are in ``test_verifier_w3c.py``; the discarding of one
presentation (OpenID4VP 1.0 §8.6) in ``test_verifier_responses.py``; step 3's refusals of an
issuer's ``x5c`` chain (another anchor, a leaf naming another issuer, another signing key,
an expired or TLS-only leaf) and step 6's for an anchor's types in
``tests/e2e/test_x509_issuers_http.py``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from tests.integration.verifier_world import Holder, VpWorld, crc_query, vp

from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject, b64url_decode
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.jws import sign_compact
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.issuer.sd_jwt import issue, present
from credit_commons.keys import DidResolutionFailed, DidResolver, encode_did_key
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier.did_binding import HOLDER_DIDS
from credit_commons.verifier.foreign import FOREIGN_ISSUERS, ForeignIssuers
from credit_commons.verifier.models import VpTransactionRow
from credit_commons.verifier.trust_bundle import TrustBundle, TrustEntry, sign_bundle
from credit_commons.verifier.trust_pins import TRUST_FETCHER

__all__ = ["vp"]

DENIED = {"error": "not_allowed"}
FOREIGN_VCT = "https://other.example/vct/membership/v1"


def _denied(answered: httpx.Response) -> None:
    assert answered.status_code == 400, answered.text
    assert answered.json() == DENIED
    assert answered.headers["content-type"] == "application/json"


def _reason(vp: VpWorld, created: dict[str, Any], reason: str) -> None:
    status = vp.status(created["id"])
    assert (status["state"], status["decision"], status["reason"]) == ("decided", "deny", reason)
    last = vp.events()[-1]
    assert (last["decision"], last["reason"]) == ("deny", reason)


def _not_decided(vp: VpWorld, created: dict[str, Any], state: str = "pending") -> None:
    # Step 1 refused the response: the transaction is left as it was (nothing consumed).
    status = vp.status(created["id"])
    assert (status["state"], status["decision"], status["reason"]) == (state, None, None)


def _round(
    vp: VpWorld,
    holder: Holder,
    *,
    request: dict[str, Any] | None = None,
    tamper: Callable[[str], str] = lambda text: text,
    **presented: Any,
) -> tuple[dict[str, Any], httpx.Response]:
    created = vp.request(**(request or {}))
    wallet = vp.wallet_request(created)
    shown = tamper(vp.presentation(holder, wallet, **presented))
    return created, vp.respond(created, wallet, {"crc": [shown]})


def _foreign(issuer_key: PrivateKey, holder: PrivateKey, sub: str | None = None) -> str:
    # An SD-JWT VC of another issuer whose identifier is the did:key of ``issuer_key``.
    did = encode_did_key(issuer_key.public_key)
    now = int(time.time())
    claims: dict[str, Any] = {"iss": did, "iat": now, "exp": now + 3600, "vct": FOREIGN_VCT}
    claims["member"] = "yes"
    if sub is not None:
        claims["sub"] = sub
    return issue(
        claims,
        disclosable=["/member"],
        signer=issuer_key,
        header={"typ": "dc+sd-jwt"},
        holder_jwk=public_key_to_jwk(holder.public_key),
    ).serialize()


def _foreign_round(
    vp: VpWorld, credential: str, holder: PrivateKey, **request: Any
) -> tuple[dict[str, Any], httpx.Response]:
    query = {
        "credentials": [
            {
                "id": "crc",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [FOREIGN_VCT]},
                "claims": [{"path": ["member"]}],
            }
        ]
    }
    created = vp.request(dcql_query=query, **request)
    wallet = vp.wallet_request(created)
    shown = present(
        SdJwt.parse(credential),
        disclose={"/member"},
        holder_signer=holder,
        audience=wallet.client_id,
        nonce=wallet.nonce,
        iat=vp.now(),
    )
    return created, vp.respond(created, wallet, {"crc": [shown]})


def _trust(vp: VpWorld, issuer: str) -> None:
    added = vp.http.post("/v1/admin/trusted-issuers", json={"issuer": issuer}, headers=vp.admin)
    assert added.status_code == 201, added.text


# -- step 1: the challenge ----------------------------------------------------------------


def test_1_a_response_to_no_transaction(vp: VpWorld, caplog: pytest.LogCaptureFixture) -> None:
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    shown = vp.presentation(holder, wallet)
    form = {"vp_token": f'{{"crc": ["{shown}"]}}', "state": wallet.state or ""}
    with caplog.at_level(logging.INFO, logger="credit_commons.verifier.responses"):
        answered = vp.http.post("/v1/verifier/responses/vpt_unknown0000000000", data=form)
    _denied(answered)
    assert "reason=challenge_not_found" in caplog.text
    assert vp.events() == []  # anyone may post here: no event for no transaction
    assert vp.status(created["id"])["state"] == "pending"


def test_1_a_replayed_response(vp: VpWorld) -> None:
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    token = {"crc": [vp.presentation(holder, wallet)]}
    assert vp.respond(created, wallet, token).status_code == 200
    _denied(vp.respond(created, wallet, token))
    assert vp.status(created["id"])["decision"] == "allow"  # the record stays
    assert [(e["decision"], e["reason"]) for e in vp.events()] == [
        ("allow", None),
        ("deny", "challenge_consumed"),
    ]


def test_1_an_expired_request(vp: VpWorld) -> None:
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    shown = vp.presentation(holder, wallet)
    vp.clock.advance(timedelta(minutes=11))
    _denied(vp.respond(created, wallet, {"crc": [shown]}))
    _not_decided(vp, created, "expired")
    assert [(e["decision"], e["reason"]) for e in vp.events()] == [("deny", "challenge_expired")]


def test_1_the_state_of_another_transaction(vp: VpWorld, caplog: pytest.LogCaptureFixture) -> None:
    holder = vp.holder()
    created, other = vp.request(), vp.request()
    wallet = vp.wallet_request(created)
    other_state = vp.wallet_request(other).state
    shown = vp.presentation(holder, wallet)
    with caplog.at_level(logging.INFO, logger="credit_commons.verifier.responses"):
        answered = vp.respond(created, wallet, {"crc": [shown]}, state=other_state)
    _denied(answered)
    assert "reason=aud_mismatch recorded=no" in caplog.text
    _not_decided(vp, created)
    _not_decided(vp, other)
    assert vp.events() == []  # the poster did not know this transaction's state
    # The wallet's own response is still taken.
    assert vp.respond(created, wallet, {"crc": [shown]}).status_code == 200


@pytest.mark.parametrize(
    "junk",
    [
        {"state": "x"},
        {"vp_token": "[1, 2]", "state": "x"},
        {"error": "access_denied", "state": "x"},
        {"response": "not.a.jwe"},
        {"vp_token": '{"crc": ["a~b"]}'},
    ],
)
def test_1_junk_posted_to_the_response_endpoint_decides_nothing(
    vp: VpWorld, junk: dict[str, str]
) -> None:
    # OpenID4VP 1.0 §14.3.2: the response URI is public.  A post without the transaction's
    # state neither decides nor consumes it, and costs no event; the wallet's answer after
    # it is accepted.
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    _denied(vp.respond(created, wallet, None, form=junk))
    _not_decided(vp, created)
    assert vp.events() == []
    answered = vp.respond(created, wallet, {"crc": [vp.presentation(holder, wallet)]})
    assert answered.status_code == 200, answered.text
    assert vp.status(created["id"])["decision"] == "allow"


def test_1_a_malformed_transaction_id_is_refused_before_anything(vp: VpWorld) -> None:
    answered = vp.http.post("/v1/verifier/responses/vpt_x%0Aforged=1", data={"state": "s"})
    assert answered.status_code == 422
    assert answered.headers["content-type"] == "application/problem+json"


def test_1_a_request_changed_after_it_went_out(vp: VpWorld) -> None:
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    with transaction(vp.rt.sessions) as session:
        session.execute(
            update(VpTransactionRow)
            .where(VpTransactionRow.id == created["id"])
            .values(dcql='{"credentials": []}')
        )
    _denied(vp.respond(created, wallet, {"crc": [vp.presentation(holder, wallet)]}))
    _not_decided(vp, created)
    assert [(e["decision"], e["reason"]) for e in vp.events()] == [
        ("deny", "request_hash_mismatch")
    ]


# -- step 2: the holder binding -----------------------------------------------------------


def test_2_no_key_binding_jwt(vp: VpWorld) -> None:
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    bare = present(SdJwt.parse(holder.credential), disclose={"/income_bracket"})
    _denied(vp.respond(created, wallet, {"crc": [bare]}))
    _reason(vp, created, "kb_jwt_missing")


def test_2_another_nonce(vp: VpWorld) -> None:
    created, answered = _round(vp, vp.holder(), nonce="another-nonce-0123456789")
    _denied(answered)
    _reason(vp, created, "nonce_mismatch")


def test_2_another_audience(vp: VpWorld) -> None:
    created, answered = _round(vp, vp.holder(), audience="redirect_uri:https://evil.example/r")
    _denied(answered)
    _reason(vp, created, "aud_mismatch")


def test_2_a_disclosure_the_key_binding_does_not_cover(vp: VpWorld) -> None:
    def drop_one(text: str) -> str:
        parts = text.split("~")  # issuer JWT, two Disclosures, KB-JWT
        return "~".join([parts[0], parts[1], parts[-1]])

    created, answered = _round(
        vp, vp.holder(), disclose=("/income_bracket", "/debt_ratio_bracket"), tamper=drop_one
    )
    _denied(answered)
    _reason(vp, created, "sd_hash_mismatch")


def test_2_a_key_binding_by_another_key(vp: VpWorld) -> None:
    def resign(text: str) -> str:
        head, kb = text.rsplit("~", 1)
        payload = json.loads(b64url_decode(kb.split(".")[1]))
        other = PrivateKey.generate(KeyType.ED25519)
        return f"{head}~{sign_compact({'typ': 'kb+jwt'}, payload, other)}"

    created, answered = _round(vp, vp.holder(), tamper=resign)
    _denied(answered)
    _reason(vp, created, "binding_invalid")


# -- step 3: the issuer signature ---------------------------------------------------------


def test_3_a_forged_issuer_signature(vp: VpWorld) -> None:
    def flip(text: str) -> str:
        jwt, rest = text.split("~", 1)
        head, payload, signature = jwt.split(".")
        forged = ("A" if signature[5] != "A" else "B").join([signature[:5], signature[6:]])
        return f"{head}.{payload}.{forged}~{rest}"

    created, answered = _round(vp, vp.holder(), tamper=flip)
    _denied(answered)
    _reason(vp, created, "signature_invalid")


# -- step 4: the privacy tombstone --------------------------------------------------------


def test_4_the_subject_was_erased(vp: VpWorld) -> None:
    holder = vp.holder()
    erased = vp.http.delete(f"/v1/identities/{holder.token}", headers=vp.admin)
    assert erased.status_code == 200, erased.text
    created, answered = _round(vp, holder)
    _denied(answered)
    _reason(vp, created, "privacy_erased")


# -- step 5: the DID key binding ----------------------------------------------------------


def test_5_a_holder_did_that_does_not_authorize_the_key(vp: VpWorld) -> None:
    issuer, holder = PrivateKey.generate(KeyType.ED25519), PrivateKey.generate(KeyType.ED25519)
    _trust(vp, encode_did_key(issuer.public_key))
    someone_else = encode_did_key(PrivateKey.generate(KeyType.ED25519).public_key)
    created, answered = _foreign_round(vp, _foreign(issuer, holder, sub=someone_else), holder)
    _denied(answered)
    _reason(vp, created, "did_key_not_authorized")


def test_5_a_holder_did_that_authorizes_the_key_is_accepted(vp: VpWorld) -> None:
    issuer, holder = PrivateKey.generate(KeyType.ED25519), PrivateKey.generate(KeyType.ED25519)
    _trust(vp, encode_did_key(issuer.public_key))
    own_did = encode_did_key(holder.public_key)
    created, answered = _foreign_round(vp, _foreign(issuer, holder, sub=own_did), holder)
    assert answered.status_code == 200, answered.text
    assert vp.status(created["id"])["decision"] == "allow"


class _DidWebHost(DidResolver):
    """The holder DID resolver with ``did:web`` documents served from here (no network):
    ``did:key`` is resolved by the real resolver; a ``did:web`` this host does not serve, or
    any while it is down, fails as an unreachable one does (``DidResolutionFailed``)."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: dict[str, JsonObject] = {}
        self.down = False

    def resolve(self, did: str) -> JsonObject:
        if not did.startswith("did:web:"):
            return super().resolve(did)
        if self.down or did not in self.documents:
            raise DidResolutionFailed("did:web document could not be fetched: 503")
        return self.documents[did]

    def publish(self, did: str, key: PrivateKey) -> None:
        method = f"{did}#key-1"
        self.documents[did] = {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": did,
            "verificationMethod": [
                {
                    "id": method,
                    "type": "JsonWebKey",
                    "controller": did,
                    "publicKeyJwk": public_key_to_jwk(key.public_key),
                }
            ],
            "authentication": [method],
        }


def test_5_a_did_web_holder_through_the_resolver(vp: VpWorld) -> None:
    # The holder is did:web: its document is resolved at step 5.  Accepted while the
    # document lists the cnf key; after the key is rotated in the document the same holder
    # key is refused (did_key_not_authorized); a resolver that fails is a dependency_failure.
    issuer, holder = PrivateKey.generate(KeyType.ED25519), PrivateKey.generate(KeyType.ED25519)
    _trust(vp, encode_did_key(issuer.public_key))
    did = "did:web:holder.example:people:asha"
    host = _DidWebHost()
    host.publish(did, holder)
    HOLDER_DIDS.set(vp.rt, host)
    credential = _foreign(issuer, holder, sub=did)

    created, answered = _foreign_round(vp, credential, holder)
    assert answered.status_code == 200, answered.text
    assert vp.status(created["id"])["decision"] == "allow"
    assert vp.events()[-1]["decision"] == "allow"

    host.publish(did, PrivateKey.generate(KeyType.ED25519))  # the key rotated
    created, answered = _foreign_round(vp, credential, holder)
    _denied(answered)
    _reason(vp, created, "did_key_not_authorized")

    host.publish(did, holder)
    host.down = True
    created, answered = _foreign_round(vp, credential, holder)
    _denied(answered)
    _reason(vp, created, "dependency_failure")


# -- step 6: issuer trust -----------------------------------------------------------------


def test_6_an_untrusted_issuer(vp: VpWorld) -> None:
    issuer, holder = PrivateKey.generate(KeyType.ED25519), PrivateKey.generate(KeyType.ED25519)
    created, answered = _foreign_round(vp, _foreign(issuer, holder), holder)
    _denied(answered)
    _reason(vp, created, "issuer_not_trusted")


# -- step 7: the policy's rules ------------------------------------------------------------


def _policy(vp: VpWorld, rule: dict[str, Any], *, version: int = 1, **body: Any) -> None:
    document = {"id": "crc-check", "version": version, "rule": rule}
    made = vp.http.post(
        "/v1/verifier/policies",
        json={"owner": vp.lender, "document": document, **body},
        headers=vp.admin,
    )
    assert made.status_code == 201, made.text


TIER_B = {"rule": "predicate", "path": ["credit_tier"], "op": "eq", "value": "B"}
TIER_A = {"rule": "predicate", "path": ["credit_tier"], "op": "eq", "value": "A"}


def test_7_a_predicate_the_claims_fail(vp: VpWorld) -> None:
    _policy(vp, TIER_A)
    created, answered = _round(vp, vp.holder(), request={"policy_id": "crc-check"})
    _denied(answered)
    _reason(vp, created, "predicate_failed")


def test_7_a_predicate_the_claims_meet_is_accepted(vp: VpWorld) -> None:
    _policy(vp, {"rule": "all_of", "rules": [TIER_B, {"rule": "require_holder_binding"}]})
    created, answered = _round(vp, vp.holder(), request={"policy_id": "crc-check"})
    assert answered.status_code == 200, answered.text
    assert vp.status(created["id"])["decision"] == "allow"


def test_7_a_profile_that_asks_for_a_purpose(vp: VpWorld) -> None:
    _policy(vp, TIER_B, profile="india-dpdp")
    created, answered = _round(vp, vp.holder(), request={"policy_id": "crc-check"})
    _denied(answered)
    _reason(vp, created, "purpose_missing")
    created, answered = _round(
        vp, vp.holder(), request={"policy_id": "crc-check", "purpose": "loan.underwriting"}
    )
    assert answered.status_code == 200, answered.text


def test_7_a_trust_mark_the_issuer_lacks(vp: VpWorld) -> None:
    issuer, holder = PrivateKey.generate(KeyType.ED25519), PrivateKey.generate(KeyType.ED25519)
    added = vp.http.post(
        "/v1/admin/trust-bundle/entries",
        json={"issuer": encode_did_key(issuer.public_key), "marks": ["shg-federation"]},
        headers=vp.admin,
    )
    assert added.status_code == 201, added.text
    _policy(vp, {"rule": "require_trust_marks", "marks": ["bank"]})
    created, answered = _foreign_round(vp, _foreign(issuer, holder), holder, policy_id="crc-check")
    _denied(answered)
    _reason(vp, created, "trust_mark_missing")


def test_6_an_issuer_trusted_by_a_pinned_bundle_of_another_platform(vp: VpWorld) -> None:
    # Federated trust: the issuer is on no list of this platform, only in the signed bundle
    # of another platform that this one pinned by key; its marks reach the policy.
    issuer, holder = PrivateKey.generate(KeyType.ED25519), PrivateKey.generate(KeyType.ED25519)
    did = encode_did_key(issuer.public_key)
    other = PrivateKey.generate(KeyType.ED25519)
    now = int(time.time())
    bundle = TrustBundle(
        iss="https://other-platform.example",
        version=1,
        iat=now,
        exp=now + 3600,
        entries=(TrustEntry(id=did, kind="did:key", marks=frozenset({"bank"})),),
    )
    url = "https://other-platform.example/.well-known/trust-bundle"
    token = sign_bundle(bundle, other, "k1")
    served = OutboundFetcher(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(
                200, text=token, headers={"Content-Type": "application/trust-bundle+jwt"}
            )
        ),
        resolver=lambda _host: ["93.184.216.34"],
    )
    TRUST_FETCHER.set(vp.rt, served)
    pinned = vp.http.post(
        "/v1/admin/trust-pins",
        json={"url": url, "key": encode_did_key(other.public_key)},
        headers=vp.admin,
    )
    assert pinned.status_code == 201, pinned.text
    _policy(vp, {"rule": "require_trust_marks", "marks": ["bank"]})
    created, answered = _foreign_round(vp, _foreign(issuer, holder), holder, policy_id="crc-check")
    assert answered.status_code == 200, answered.text
    assert vp.status(created["id"])["decision"] == "allow"


# -- step 8: zero-knowledge predicates ----------------------------------------------------


def test_8_a_predicate_of_no_registered_statement_is_refused_when_asked(vp: VpWorld) -> None:
    # Step 8's refusals of a response are in test_zk_verifier.py; a request naming a
    # statement the registry does not hold is not made at all.
    predicate = {"id": "p", "statement": "score_gte_650", "credential_query_id": "crc"}
    made = vp.http.post(
        "/v1/verifier/requests",
        json={"dcql_query": crc_query(), "zk_predicates": [predicate]},
        headers=vp.token(),
    )
    assert made.status_code == 422, made.text
    assert "score_gte_650" in made.json()["detail"]


# -- step 9: status -----------------------------------------------------------------------


@pytest.mark.parametrize(("action", "reason"), [("revoke", "revoked"), ("suspend", "suspended")])
def test_9_a_revoked_or_suspended_credential(vp: VpWorld, action: str, reason: str) -> None:
    holder = vp.holder()
    changed = vp.http.post(f"/v1/credentials/{holder.credential_id}/{action}", headers=vp.admin)
    assert changed.status_code == 200, changed.text
    created, answered = _round(vp, holder)
    _denied(answered)
    _reason(vp, created, reason)


# -- step 10: the policy version floor ----------------------------------------------------


def test_10_a_request_made_under_a_version_below_the_floor(vp: VpWorld) -> None:
    _policy(vp, TIER_B)
    created = vp.request(policy_id="crc-check")  # pins version 1
    wallet = vp.wallet_request(created)
    shown = vp.presentation(vp.holder(), wallet)
    base = f"/v1/verifier/policies/{vp.lender}/crc-check"
    document = {"id": "crc-check", "version": 2, "rule": TIER_B}
    added = vp.http.post(f"{base}/versions", json={"document": document}, headers=vp.admin)
    assert added.status_code in (200, 201), added.text
    raised = vp.http.put(f"{base}/floor", json={"floor": 2}, headers=vp.admin)
    assert raised.status_code == 200, raised.text
    _denied(vp.respond(created, wallet, {"crc": [shown]}))
    _reason(vp, created, "policy_version_downgrade")


def test_an_unknown_policy_is_refused_when_the_request_is_made(vp: VpWorld) -> None:
    made = vp.http.post(
        "/v1/verifier/requests",
        json={"dcql_query": crc_query(), "policy_id": "no-such-policy"},
        headers=vp.token(),
    )
    assert made.status_code == 422
    assert made.headers["content-type"] == "application/problem+json"


# -- DCQL, the response itself, and a dependency ------------------------------------------


def test_dcql_a_claim_that_was_not_disclosed(vp: VpWorld) -> None:
    created, answered = _round(
        vp, vp.holder(), request={"dcql_query": crc_query("income_bracket", "debt_ratio_bracket")}
    )
    _denied(answered)
    _reason(vp, created, "dcql_unsatisfied")


def test_a_response_that_is_not_one(vp: VpWorld, caplog: pytest.LogCaptureFixture) -> None:
    # Unparseable, so its state is unknown: logged, and the transaction stays open.
    created = vp.request()
    wallet = vp.wallet_request(created)
    with caplog.at_level(logging.INFO, logger="credit_commons.verifier.responses"):
        bad = {"vp_token": "[1, 2]", "state": wallet.state or ""}
        _denied(vp.respond(created, wallet, None, form=bad))
    assert "reason=response_invalid recorded=no" in caplog.text
    _not_decided(vp, created)


@pytest.mark.parametrize("redirect", ["https://lender.example/done", None])
def test_a_wallet_error_response_ends_the_request(vp: VpWorld, redirect: str | None) -> None:
    # OpenID4VP 1.0 §8.5: the wallet refused (the user declined, say).  §8.2: a processed
    # error response is answered 200 with a JSON object.  The request is consumed and
    # recorded wallet_error: a presentation sent after it is refused.
    holder = vp.holder()
    created = vp.request(redirect_uri=redirect)
    wallet = vp.wallet_request(created)
    declined = {"error": "access_denied", "state": wallet.state or ""}
    answered = vp.respond(created, wallet, None, form=declined)
    assert answered.status_code == 200, answered.text
    assert answered.headers["content-type"] == "application/json"
    assert answered.json() == {}
    _reason(vp, created, "wallet_error")
    _denied(vp.respond(created, wallet, {"crc": [vp.presentation(holder, wallet)]}))
    assert vp.events()[-1]["reason"] == "challenge_consumed"
    assert vp.status(created["id"])["reason"] == "wallet_error"


def test_a_clear_response_where_encryption_was_asked_for(vp: VpWorld) -> None:
    holder = vp.holder()
    created = vp.request(response_mode="direct_post.jwt")
    wallet = vp.wallet_request(created)
    clear = {"vp_token": f'{{"crc": ["{vp.presentation(holder, wallet)}"]}}', "state": "s"}
    _denied(vp.respond(created, wallet, None, form=clear))
    _not_decided(vp, created)


def test_a_dependency_that_fails_is_a_denial(vp: VpWorld) -> None:
    # A trusted https issuer whose metadata cannot be fetched: the key is unknowable.
    failing = OutboundFetcher(
        transport=httpx.MockTransport(lambda _request: httpx.Response(503)),
        resolver=lambda _host: ["93.184.216.34"],
    )
    FOREIGN_ISSUERS.set(vp.rt, ForeignIssuers(failing))
    issuer, holder = PrivateKey.generate(KeyType.ED25519), PrivateKey.generate(KeyType.ED25519)
    _trust(vp, "https://issuer.other.example")
    now = int(time.time())
    credential = issue(
        {"iss": "https://issuer.other.example", "iat": now, "vct": FOREIGN_VCT, "member": "y"},
        disclosable=["/member"],
        signer=issuer,
        header={"typ": "dc+sd-jwt", "kid": "k1"},
        holder_jwk=public_key_to_jwk(holder.public_key),
    ).serialize()
    created, answered = _foreign_round(vp, credential, holder)
    _denied(answered)
    _reason(vp, created, "dependency_failure")


def test_a_database_error_inside_the_pipeline_is_a_recorded_denial(vp: VpWorld) -> None:
    # Step 4 reads the credential registry; with the table gone its statement fails in the
    # read unit of work.  The decision is still written: the challenge is consumed, the
    # denial is recorded, and the wallet gets the uniform answer (no 500).
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    shown = vp.presentation(holder, wallet)
    with transaction(vp.rt.sessions) as session:
        session.execute(text("ALTER TABLE credentials RENAME TO credentials_away"))
    try:
        _denied(vp.respond(created, wallet, {"crc": [shown]}))
    finally:
        with transaction(vp.rt.sessions) as session:
            session.execute(text("ALTER TABLE credentials_away RENAME TO credentials"))
    _reason(vp, created, "dependency_failure")
    _denied(vp.respond(created, wallet, {"crc": [shown]}))
    assert vp.events()[-1]["reason"] == "challenge_consumed"


def test_every_denial_looks_the_same_on_the_wire(vp: VpWorld) -> None:
    # Three denials of different steps: byte-identical bodies and the same headers.
    holder = vp.holder()
    bodies = set()
    for presented in ({"nonce": "another-nonce-0123456789"}, {"audience": "x:y"}, {}):
        # The third: a query the presentation does not satisfy (dcql_unsatisfied).
        query = crc_query("income_bracket", "debt_ratio_bracket")
        request = {"dcql_query": query} if not presented else {}
        _, answered = _round(vp, holder, request=request, **presented)
        bodies.add((answered.status_code, answered.content, answered.headers.get("cache-control")))
    assert len(bodies) == 1
    ((status, content, _),) = bodies
    assert status == 400
    assert content == b'{"error":"not_allowed"}'
