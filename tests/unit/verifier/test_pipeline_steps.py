"""The pure parts of the ten-step pipeline (verifier/pipeline.py): each step's refusal and
its reason, the reason translation that makes the pipeline fail closed, the DID key binding
of step 5, and the request hash step 1 checks.  The steps that read the database are in
tests/integration/test_verifier_denials.py."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError

from credit_commons.core.encoding import canonical_json, json_decode
from credit_commons.core.errors import ValidationError
from credit_commons.core.net import FetchFailed
from credit_commons.formats import sd_jwt_errors as sd
from credit_commons.formats.dcql import DcqlInvalid, parse_dcql
from credit_commons.keys import DidResolutionFailed, did_key_document, encode_did_key
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier import did_binding, pipeline, responses, transactions
from credit_commons.verifier.models import VpTransactionRow
from credit_commons.verifier.reasons import Reason, VerificationDenied, reason_of
from credit_commons.verifier.sd_jwt_vc import (
    CredentialRevoked,
    CredentialSuspended,
    UnknownIssuerKey,
    UntrustedIssuer,
)
from credit_commons.verifier.trust_bundle import IssuerNotTrusted


def _accept(_: object) -> None:
    return None


def _requirements(**kw: Any) -> pipeline.Requirements:
    return pipeline.Requirements(dcql=_accept, **kw)


def _reason(call: Any, *args: Any) -> Reason:
    with pytest.raises(VerificationDenied) as caught:
        call(*args)
    return caught.value.reason


# -- reasons: what each step's errors stand for --------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (sd.KeyBindingMissing("x"), Reason.KB_JWT_MISSING),
        (sd.KbNonceMismatch("x"), Reason.NONCE_MISMATCH),
        (sd.KbAudienceMismatch("x"), Reason.AUD_MISMATCH),
        (sd.SdHashMismatch("x"), Reason.SD_HASH_MISMATCH),
        (sd.KbStale("x"), Reason.KB_STALE),
        (sd.KeyBindingInvalid("x"), Reason.BINDING_INVALID),
        (sd.SignatureInvalid("x"), Reason.SIGNATURE_INVALID),
        (sd.EmbeddedKeyNotAllowed("x"), Reason.SIGNATURE_INVALID),
        (sd.Expired("x"), Reason.CREDENTIAL_EXPIRED),
        (sd.Malformed("x"), Reason.CREDENTIAL_INVALID),
        (UntrustedIssuer("x"), Reason.ISSUER_NOT_TRUSTED),
        (IssuerNotTrusted("type_not_allowed"), Reason.ISSUER_NOT_TRUSTED),
        (IssuerNotTrusted("chain_invalid"), Reason.ISSUER_CHAIN_INVALID),
        (IssuerNotTrusted("chain_expired"), Reason.ISSUER_CERTIFICATE_EXPIRED),
        (IssuerNotTrusted("chain_name_mismatch"), Reason.ISSUER_CHAIN_NAME_MISMATCH),
        (UnknownIssuerKey("x"), Reason.ISSUER_UNKNOWN),
        (CredentialRevoked("x"), Reason.REVOKED),
        (CredentialSuspended("x"), Reason.SUSPENDED),
        (VerificationDenied(Reason.PRIVACY_ERASED), Reason.PRIVACY_ERASED),
    ],
)
def test_each_refusal_has_its_reason(error: Exception, reason: Reason) -> None:
    assert reason_of(error) is reason


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("a bug in a step"),
        FetchFailed("the issuer's metadata could not be fetched"),
        DidResolutionFailed("did:web document could not be fetched"),
        ValidationError("an unexpected refusal"),
        KeyError("missing"),
    ],
)
def test_anything_else_is_a_dependency_failure(error: Exception) -> None:
    assert reason_of(error) is Reason.DEPENDENCY_FAILURE


# -- steps 7, 8, 10 and DCQL satisfaction ---------------------------------------------------

SHOWN = pipeline.Presented("crc", "https://issuer.example", "urn:vct", {"tier": "B"})


def test_7_predicates_run_the_policy_rule() -> None:
    pipeline.predicates(_requirements(), SHOWN)  # no rule: nothing to refuse

    def fail(shown: pipeline.Presented) -> None:
        assert shown is SHOWN
        raise VerificationDenied(Reason.PREDICATE_FAILED)

    assert _reason(pipeline.predicates, _requirements(predicates=fail), SHOWN) is (
        Reason.PREDICATE_FAILED
    )


def test_8_without_predicates_nothing_is_asked() -> None:
    assert pipeline.zk_predicates(_requirements(), SHOWN) is SHOWN


@pytest.mark.parametrize(
    ("version", "floor", "denied"),
    [(3, 2, False), (3, 3, False), (2, 3, True), (1, None, False)],
)
def test_10_the_policy_version_floor(version: int, floor: int | None, denied: bool) -> None:
    req = _requirements(policy_version=version, policy_floor=lambda: floor)
    if denied:
        assert _reason(pipeline.policy_floor, req) is Reason.POLICY_VERSION_DOWNGRADE
    else:
        pipeline.policy_floor(req)


def test_10_without_a_policy_there_is_no_floor() -> None:
    pipeline.policy_floor(_requirements(policy_floor=lambda: 9))


def test_dcql_satisfaction_runs_its_rule() -> None:
    def unsatisfied(presented: object) -> None:
        raise VerificationDenied(Reason.DCQL_UNSATISFIED)

    req = pipeline.Requirements(dcql=unsatisfied)
    assert _reason(pipeline.dcql, req, [SHOWN]) is Reason.DCQL_UNSATISFIED


# -- step 5: the DID key binding ------------------------------------------------------------

HOLDER = PrivateKey.generate(KeyType.ED25519)
OTHER = PrivateKey.generate(KeyType.ED25519)
HOLDER_DID = encode_did_key(HOLDER.public_key)


def test_5_the_holder_did_is_sub_or_the_cnf_kid() -> None:
    assert did_binding.holder_did({"sub": HOLDER_DID}) == HOLDER_DID
    assert did_binding.holder_did({"cnf": {"kid": HOLDER_DID + "#k1"}}) == HOLDER_DID
    assert did_binding.holder_did({"sub": "urn:uuid:1", "cnf": {"jwk": {}}}) is None
    assert did_binding.holder_did({}) is None


def test_5_the_dids_own_key_is_authorized() -> None:
    document = did_key_document(HOLDER_DID)
    did_binding.authorized(document, HOLDER_DID, public_key_to_jwk(HOLDER.public_key))


@pytest.mark.parametrize(
    "change",
    [
        "another key",
        "another document",
        "no authentication",
        "assertion only",
        "another controller",
        "not a jwk",
    ],
)
def test_5_anything_else_is_not_authorized(change: str) -> None:
    document: dict[str, Any] = did_key_document(HOLDER_DID)
    jwk: object = public_key_to_jwk(HOLDER.public_key)
    if change == "another key":
        jwk = public_key_to_jwk(OTHER.public_key)
    elif change == "another document":
        document = did_key_document(encode_did_key(OTHER.public_key))
        document["id"] = HOLDER_DID
    elif change == "no authentication":
        document.pop("authentication")
    elif change == "assertion only":
        document["authentication"] = []
    elif change == "another controller":
        document["verificationMethod"][0]["controller"] = "did:example:mallory"
    elif change == "not a jwk":
        jwk = "did:key:z6Mk"
    assert _reason(did_binding.authorized, document, HOLDER_DID, jwk) is (
        Reason.DID_KEY_NOT_AUTHORIZED
    )


def test_5_an_embedded_authentication_method_counts() -> None:
    document: dict[str, Any] = did_key_document(HOLDER_DID)
    document["authentication"] = [document.pop("verificationMethod")[0]]
    did_binding.authorized(document, HOLDER_DID, public_key_to_jwk(HOLDER.public_key))


# -- step 1: the request hash ----------------------------------------------------------------


def _row(**changes: Any) -> VpTransactionRow:
    values: dict[str, Any] = {
        "id": "vpt_1",
        "owner": "lender",
        "client_id": "decentralized_identifier:did:web:commons.test",
        "client_id_prefix": "decentralized_identifier",
        "nonce": "n" * 43,
        "state": "s" * 43,
        "request_hash": "",
        "dcql": '{"credentials": [{"id": "crc", "format": "dc+sd-jwt"}]}',
        "policy_id": None,
        "policy_version": None,
        "zk_predicates": "[]",
        "response_mode": "direct_post",
        "redirect_uri": "https://lender.example/done",
        "enc_public": None,
        "enc_key": None,
        "created_at": datetime(2026, 12, 6, tzinfo=UTC),
        "expires_at": datetime(2026, 12, 6, 0, 10, tzinfo=UTC),
    }
    values.update(changes)
    return VpTransactionRow(**values)


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "redirect_uri:https://evil.example/r"},
        {"nonce": "m" * 43},
        {"state": "t" * 43},
        {"dcql": '{"credentials": [{"id": "other", "format": "dc+sd-jwt"}]}'},
        {"policy_version": 2},
        {"zk_predicates": '["x"]'},
        {"response_mode": "direct_post.jwt"},
        {"redirect_uri": "https://evil.example/done"},
        {"expires_at": datetime(2026, 12, 7, tzinfo=UTC)},
    ],
)
def test_1_the_request_hash_covers_every_member_the_wallet_was_asked_under(
    change: dict[str, Any],
) -> None:
    assert transactions.request_hash(_row(**change)) != transactions.request_hash(_row())


def test_1_the_request_hash_ignores_the_dcql_spelling() -> None:
    spaced = _row(dcql='{ "credentials" : [ { "format": "dc+sd-jwt", "id": "crc" } ] }')
    assert transactions.request_hash(spaced) == transactions.request_hash(_row())
    assert len(transactions.request_hash(_row())) == 64


def _whole_object_hash(row: VpTransactionRow) -> str:
    # request_hash's definition: the SHA-256 of canonical_json of the whole request object.
    body: dict[str, object] = {
        "client_id": row.client_id,
        "client_id_prefix": row.client_id_prefix,
        "dcql_query": json_decode(row.dcql),
        "enc_public": row.enc_public,
        "expires_at": int(row.expires_at.timestamp()),
        "id": row.id,
        "nonce": row.nonce,
        "policy_id": row.policy_id,
        "policy_version": row.policy_version,
        "redirect_uri": row.redirect_uri,
        "response_mode": row.response_mode,
        "state": row.state,
        "zk_predicates": json_decode(row.zk_predicates),
    }
    for name in ("policy_owner", "purpose", "client_name"):
        if getattr(row, name) is not None:
            body[name] = getattr(row, name)
    return hashlib.sha256(canonical_json(body)).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"dcql": '{"credentials": [{"id": "é\\u2028", "format": "dc+sd-jwt", "n": 1.5e3}]}'},
        {"zk_predicates": '[{"b": 2, "a": [1, "x\\"y"]}]', "policy_version": 2},
        {"policy_id": "pol_1", "policy_owner": "lender", "purpose": "Prêt\n«test»"},
        {"client_name": "Ünïcode \U0001f600", "enc_public": '{"kty":"EC"}'},
        {"redirect_uri": None, "client_id": 'a"b\\c'},
        {
            "dcql": '{"credentials": [{"id": "crc", "format": "dc+sd-jwt", "x": "%s"}]}'
            % ("y" * 20000)
        },
    ],
)
def test_1_the_request_hash_is_the_hash_of_the_whole_canonical_object(
    change: dict[str, Any],
) -> None:
    # Written member by member with the stored JSON texts cached: the same bytes as the
    # canonical JSON of the whole object, so hashes of stored transactions still match.
    row = _row(**change)
    assert transactions.request_hash(row) == _whole_object_hash(row)
    assert transactions.request_hash(row) == _whole_object_hash(row)  # the cached texts


def test_1_a_stored_query_that_is_no_json_fails_every_time() -> None:
    for _ in range(2):  # the cache keeps no failure
        with pytest.raises(ValidationError):
            transactions.request_hash(_row(dcql='{"credentials": [}'))


def test_a_stored_query_is_parsed_once_and_shared_frozen() -> None:
    text = '{"credentials": [{"id": "crc", "format": "dc+sd-jwt", "meta": {"vct_values": ["v"]}}]}'
    query = responses.stored_query(text)
    assert query is responses.stored_query(text)  # parsed once per distinct text
    assert query == parse_dcql(json_decode(text))
    with pytest.raises(PydanticValidationError):  # frozen: sharing it is safe
        query.credentials = ()  # type: ignore[misc]
    assert isinstance(query.credentials, tuple)
    long = text.replace('"v"', '"' + "v" * 20000 + '"')  # past the cached size: parsed anew
    assert responses.stored_query(long) == parse_dcql(json_decode(long))
    assert responses.stored_query(long) is not responses.stored_query(long)


def test_a_stored_query_that_is_invalid_fails_every_time() -> None:
    for _ in range(2):  # the cache keeps no failure
        with pytest.raises(DcqlInvalid):
            responses.stored_query('{"credentials": []}')
