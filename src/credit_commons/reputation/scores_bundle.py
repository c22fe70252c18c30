"""Score bundles (docs/reputation.md, "Score bundles"): what ``GET /v1/scores`` serves and
what ``commons score verify`` checks offline, with no database and no network.

A bundle (``credit-commons-score-bundle/v1``) carries the score record — its factors,
score, tier and diversity as commitments SHA-256(JCS{factor, value, salt}), or, for the
subject, the values and salts — the SHA-256 of the record's JCS bytes, the platform's signed
score statement, the rule set's signed token and hash, the signed checkpoint note the score
was computed at, and every input the record depends on: each vouch and report of the
subject's ``iterations``-hop neighbourhood (its CID, the blob's bytes, the spine event that
recorded it, the log entry, leaf index and inclusion proof) and each membership of a DID
those events name (the same proof of its ``reputation.member`` spine event).

:func:`verify_bundle` checks, in order, and raises :class:`BundleInvalid` naming the first
check that failed: 1 the checkpoint's signature; 2 the rule set's signature, hash and id /
version / hash the record names; 3 per event, the blob's CID, its signature, the spine event
naming that CID and the SHA-256 of its two DIDs, and its inclusion proof; 4 per membership,
its spine event, what it states (the SHA-256 of its DID among it) and its inclusion proof;
5 the platform's score statement (``reputation-score+jwt``, under a pinned key): the record's
DID, context, day, rule set and hash, the checkpoint's size and root, and exactly the
bundle's inputs — what makes a dropped input detectable, since an inclusion proof cannot
prove absence; 6 a recompute by the reference scorer from the bundle's inputs alone (the
values, for the subject's bundle); 7 the recomputed record's JCS hash equals the bundle's and
its visible fields are the bundle's, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from credit_commons.core.encoding import (
    JsonObject,
    b64url_decode,
    b64url_encode,
    canonical_json,
    sha256_hex,
)
from credit_commons.core.errors import CommonsError, IntegrityError
from credit_commons.formats.jws import JwsInvalid, parse_compact
from credit_commons.keys import public_key_from_jwk
from credit_commons.ledger import Ed25519Verifier, verify_checkpoint, verify_receipt
from credit_commons.reputation.errors import ReputationError
from credit_commons.reputation.events import blob_cid, ed25519_did, parse_event
from credit_commons.reputation.rules import (
    RuleSet,
    rule_set_kid,
    verify_rule_set,
)
from credit_commons.reputation.scorer import ScoringEvent, ScoringMember, score_reference

__all__ = [
    "BUNDLE_FORMAT",
    "FACTORS",
    "HIDDEN",
    "PROOF_MAX_AGE_SECONDS",
    "SALTED",
    "STATEMENT_TYP",
    "TOMBSTONE_TYP",
    "BundleInvalid",
    "SubjectProofInvalid",
    "VerifiedBundle",
    "attestation_count",
    "commitment",
    "did_sha256",
    "public_record",
    "score_statement",
    "verify_bundle",
    "verify_did_proof",
    "verify_subject_proof",
]

BUNDLE_FORMAT = "credit-commons-score-bundle/v1"
RECEIPT_FORMAT = "credit-commons-receipt/v1"
FACTORS = ("K", "A", "V", "R", "T")
# The record's fields hidden from everyone but the subject, besides the factors: what a
# consent to a credential's tier alone must not give away to whoever knows the DID.
HIDDEN = ("score", "tier", "diversity")
SALTED = FACTORS + HIDDEN
PROOF_MAX_AGE_SECONDS = 60
PROOF_TYP = "score-request+jwt"
TOMBSTONE_TYP = "reputation-tombstone+jwt"
STATEMENT_TYP = "reputation-score+jwt"
STATEMENT_MAX_CHARS = 1 << 20


def is_kyc(issuer: str, vct: str, rule_set: RuleSet) -> bool:
    """Whether a membership of that credential type from that issuer is KYC by ``rule_set``
    (its ``kyc.credentialTypes`` and ``kyc.trustedIssuers``), whatever rule set it was
    registered under: a type or issuer a later rule set drops no longer counts as KYC."""
    return vct in rule_set.kyc.credential_types and issuer in rule_set.kyc.trusted_issuers


def attestation_count(credentials: Iterable[tuple[str, str]], rule_set: RuleSet) -> int:
    """A DID's attestations (A, before the cap): the distinct (issuer, vct) of its active
    non-KYC memberships, the rule set's own output credential type excluded."""
    output = rule_set.aura.output_credential_type
    return len({(issuer, vct) for issuer, vct in credentials if vct != output})


def did_sha256(did: str) -> str:
    """The plain SHA-256 (hex) of a DID string, as the ``reputation.event`` and
    ``reputation.member`` spine events state it (a DID is a pseudonymous key, no PII)."""
    return sha256_hex(did.encode("utf-8"))


def score_statement(
    record: Mapping[str, Any],
    *,
    record_hash: str,
    checkpoint_size: int,
    checkpoint_root: bytes,
    event_cids: Sequence[str],
    member_event_ids: Sequence[str],
) -> JsonObject:
    """What the platform signs about a record (the statement's payload besides ``iss`` and
    ``iat``): whose, where, when, at which checkpoint, under which rule set, its hash, and
    the complete list of inputs it used — the events' CIDs and the memberships' spine event
    ids, sorted.  An inclusion proof shows an input is in the log; only this signature says
    no other input counts."""
    return {
        "did": record.get("did"),
        "ctx": record.get("ctx"),
        "asOf": record.get("asOf"),
        "checkpoint": {"size": checkpoint_size, "root": b64url_encode(checkpoint_root)},
        "ruleSet": record.get("ruleSet"),
        "recordHash": record_hash,
        "inputs": {"events": sorted(event_cids), "members": sorted(member_event_ids)},
    }


class BundleInvalid(IntegrityError, ReputationError):
    """A score bundle that does not verify; ``check`` names the first check that failed."""

    code = "reputation.bundle_invalid"
    title = "Score bundle invalid"

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}", extra={"check": check})
        self.check = check


class SubjectProofInvalid(IntegrityError, ReputationError):
    """A request that claims to come from the subject but whose proof does not verify."""

    code = "reputation.subject_proof_invalid"
    title = "Subject proof invalid"
    status = 401


def commitment(factor: str, value: Any, salt: str) -> str:
    """SHA-256 (hex) of JCS{factor, value, salt}: a value hidden in a record (a factor's
    decimal string, the score's, the tier's name or null, the diversity count)."""
    return sha256_hex(canonical_json({"factor": factor, "value": value, "salt": salt}))


def public_record(record: Mapping[str, Any], salts: Mapping[str, str]) -> JsonObject:
    """The record as anyone but the subject sees it: each factor's value, the score, the
    tier and the diversity replaced by their commitments."""
    factors = record["factors"]
    hidden: JsonObject = {f: commitment(f, str(factors[f]), salts[f]) for f in FACTORS}
    return {
        **record,
        "factors": hidden,
        **{name: commitment(name, record[name], salts[name]) for name in HIDDEN},
    }


def verify_subject_proof(token: str, *, did: str, ctx: str, audience: str, now: datetime) -> None:
    """Check that a score request comes from ``did``: a compact JWS (``typ``
    ``score-request+jwt``, EdDSA) signed by the DID's key, its payload naming ``sub`` =
    ``did``, ``ctx``, ``aud`` = this platform and an ``iat`` at most 60 seconds old (and not
    in the future).  Raises :class:`SubjectProofInvalid`."""
    verify_did_proof(token, typ=PROOF_TYP, did=did, audience=audience, now=now, claims={"ctx": ctx})


def verify_did_proof(
    token: str,
    *,
    typ: str,
    did: str,
    audience: str,
    now: datetime,
    claims: Mapping[str, Any] | None = None,
) -> None:
    """Check that a request of kind ``typ`` comes from ``did``: a compact JWS of that
    ``typ`` (EdDSA) signed by the DID's key, its payload naming ``sub`` = ``did``, ``aud`` =
    ``audience``, each of ``claims`` with its value and an ``iat`` at most 60 seconds old
    (and not in the future).  Raises :class:`SubjectProofInvalid`."""
    try:
        key = ed25519_did(did)
        jws = parse_compact(token, algs=("EdDSA", "Ed25519"), max_chars=4096)
        if jws.header.get("typ") != typ:
            raise SubjectProofInvalid(f"the proof's typ is not {typ}")
        jws.verify(key)
        payload = jws.payload
    except SubjectProofInvalid:
        raise
    except (CommonsError, JwsInvalid) as e:
        raise SubjectProofInvalid("the subject proof does not verify") from e
    iat = payload.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise SubjectProofInvalid("the subject proof has no iat")
    age = int(now.timestamp()) - iat
    if not 0 <= age <= PROOF_MAX_AGE_SECONDS:
        raise SubjectProofInvalid("the subject proof is not fresh")
    wanted = {"aud": audience, "sub": did, **(claims or {})}
    if any(payload.get(k) != v for k, v in wanted.items()):
        raise SubjectProofInvalid("the subject proof is for another platform, DID or context")


@dataclass(frozen=True, slots=True)
class VerifiedBundle:
    """What a verified bundle proves: the record (values when the bundle had them), its
    hash, the checkpoint size, the rule set, and how many events and memberships it used."""

    record: JsonObject
    record_hash: str
    checkpoint_size: int
    rule_set: RuleSet
    events: int
    members: int
    values_checked: bool


def _fail(check: str, message: str) -> BundleInvalid:
    return BundleInvalid(check, message)


def _receipt(check: str, note: str, item: Mapping[str, Any], log_vkey: str) -> JsonObject:
    receipt = {
        "format": RECEIPT_FORMAT,
        "checkpoint": note,
        "index": item.get("leafIndex"),
        "entry": item.get("entry"),
        "inclusion_proof": item.get("inclusionProof"),
        "event": item.get("event"),
    }
    try:
        verified = verify_receipt(receipt, log_vkey)
    except CommonsError as e:
        raise _fail(check, f"the inclusion proof does not verify ({e.code})") from e
    if not verified.event_checked:
        raise _fail(check, "the spine event is missing")
    event = receipt["event"]
    assert isinstance(event, dict)
    return event


def _rule_set(bundle: Mapping[str, Any], jwks: Mapping[str, Any]) -> RuleSet:
    block = bundle.get("ruleSet")
    if not isinstance(block, dict) or not isinstance(block.get("token"), str):
        raise _fail("rule_set", "the bundle has no rule-set token")
    token = block["token"]
    try:
        kid = rule_set_kid(token)
        keys = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
        if not keys:
            raise _fail("rule_set", "no key of the rule-set JWKS has the token's kid")
        rule_set = verify_rule_set(token, public_key_from_jwk(keys[0])).rule_set
    except BundleInvalid:
        raise
    except CommonsError as e:
        raise _fail("rule_set", f"the rule set's signature does not verify ({e.code})") from e
    if block.get("hash") != rule_set.hash or sha256_hex(rule_set.canonical) != rule_set.hash:
        raise _fail("rule_set", "the rule set's hash is not the hash of its JCS bytes")
    return rule_set


def _events(note: str, items: Sequence[Any], log_vkey: str) -> list[ScoringEvent]:
    out = []
    for n, item in enumerate(items):
        check = f"event[{n}]"
        if not isinstance(item, dict):
            raise _fail(check, "not an object")
        cid, blob_b64 = item.get("cid"), item.get("blob")
        if not isinstance(cid, str) or not isinstance(blob_b64, str):
            raise _fail(check, "needs cid and blob")
        try:
            blob = b64url_decode(blob_b64)
        except CommonsError as e:
            raise _fail(check, "the blob is not base64url") from e
        if blob_cid(blob) != cid:
            raise _fail(check, "the blob's CID is not the CID given")
        try:
            event = parse_event(blob)
            event.verify()
        except CommonsError as e:
            raise _fail(check, f"the event's signature does not verify ({e.code})") from e
        spine = _receipt(check, note, item, log_vkey)
        details = spine.get("details")
        if (
            spine.get("type") != "reputation.event"
            or not isinstance(details, dict)
            or (details.get("cid") != cid)
        ):
            raise _fail(check, "the spine event does not record this CID")
        if details.get("from_sha256") != did_sha256(event.sender) or details.get(
            "to_sha256"
        ) != did_sha256(event.to):
            raise _fail(check, "the spine event is not about this event's DIDs")
        out.append(
            ScoringEvent(
                type=event.type,
                sender=event.sender,
                subject=event.to,
                ctx=event.ctx,
                issued_at=event.issued_at,
                cid=cid,
            )
        )
    return out


def _date(value: Any, check: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as e:
        raise _fail(check, "a date is malformed") from e


def _members(
    note: str, items: Sequence[Any], log_vkey: str, ids: list[str], rule_set: RuleSet
) -> list[ScoringMember]:
    rows: dict[str, list[tuple[bool, date, date | None, tuple[str, str]]]] = {}
    for n, item in enumerate(items):
        check = f"member[{n}]"
        if not isinstance(item, dict) or not isinstance(item.get("did"), str):
            raise _fail(check, "needs a did")
        spine = _receipt(check, note, item, log_vkey)
        details = spine.get("details")
        kyc = item.get("kyc")
        since = _date(item.get("since"), check)
        if (
            spine.get("type") != "reputation.member"
            or not isinstance(details, dict)
            or details.get("kyc") is not kyc
            or details.get("credential_sha256") != item.get("credentialSha256")
            or since is None
            or str(spine.get("at", ""))[:10] != since.isoformat()
        ):
            raise _fail(check, "the spine event does not state this membership")
        if details.get("did_sha256") != did_sha256(item["did"]):
            raise _fail(check, "the spine event is another DID's membership")
        ids.append(str(spine.get("id")))
        credential = (str(item.get("issuer")), str(item.get("vct")))
        # A membership stops counting on the earlier of its revocation and its suspension.
        ends = [_date(item.get(k), check) for k in ("revokedOn", "suspendedOn")]
        ended = min((d for d in ends if d is not None), default=None)
        rows.setdefault(item["did"], []).append(
            (is_kyc(*credential, rule_set), since, ended, credential)
        )
    members = []
    for did, mine in sorted(rows.items()):
        kyc_rows = [r for r in mine if r[0]]
        since = min(r[1] for r in (kyc_rows or mine))
        revoked = None
        if kyc_rows and all(r[2] is not None for r in kyc_rows):
            revoked = max(r[2] for r in kyc_rows if r[2] is not None)
        attestations = attestation_count(
            (r[3] for r in mine if not r[0] and r[2] is None), rule_set
        )
        members.append(ScoringMember(did, since, bool(kyc_rows), revoked, attestations))
    return members


def _statement(
    bundle: Mapping[str, Any], jwks: Mapping[str, Any] | None, expected: JsonObject
) -> None:
    token = bundle.get("statement")
    if jwks is None:
        raise _fail("statement", "no score-statement key to verify with")
    if not isinstance(token, str):
        raise _fail("statement", "the bundle has no score statement")
    try:
        jws = parse_compact(token, algs=("EdDSA", "Ed25519"), max_chars=STATEMENT_MAX_CHARS)
        kid = jws.header.get("kid")
        keys = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
        if jws.header.get("typ") != STATEMENT_TYP or not keys:
            raise _fail("statement", "the statement's typ or key is not the expected one")
        jws.verify(public_key_from_jwk(keys[0]))
        payload = jws.payload
    except BundleInvalid:
        raise
    except (CommonsError, JwsInvalid) as e:
        raise _fail("statement", "the statement's signature does not verify") from e
    stated = {k: payload.get(k) for k in expected}
    if canonical_json(stated) != canonical_json(expected):
        raise _fail("statement", "the platform signed another record, checkpoint or set of inputs")


def _recompute(
    record: Mapping[str, Any],
    record_hash: str,
    inputs: tuple[list[ScoringEvent], list[ScoringMember]],
    rule_set: RuleSet,
) -> JsonObject:
    """The record the reference scorer computes from the inputs alone, checked against the
    bundle's hash and visible fields."""
    try:
        did, ctx = str(record["did"]), str(record["ctx"])
        as_of = date.fromisoformat(str(record["asOf"]))
        recomputed = score_reference(*inputs, (), rule_set, as_of=as_of, ctx=ctx).get(did)
    except (KeyError, ValueError, CommonsError) as e:
        raise _fail("recompute", "the record's did, ctx or asOf is malformed") from e
    if recomputed is None:
        raise _fail("recompute", "the inputs give this DID no score")
    if sha256_hex(recomputed.to_jcs()) != record_hash:
        raise _fail("recompute", "the recomputed record's hash is not the bundle's")
    full = recomputed.as_json()
    masked = ("factors", *HIDDEN)
    visible = {k: v for k, v in full.items() if k not in masked}
    if canonical_json({k: v for k, v in record.items() if k not in masked}) != canonical_json(
        visible
    ):
        raise _fail("recompute", "a visible field differs from the recompute")
    return full


def verify_bundle(
    bundle: Any,
    *,
    log_vkey: str | None = None,
    rules_jwks: Mapping[str, Any] | None = None,
    scores_jwks: Mapping[str, Any] | None = None,
    trust_bundle_keys: bool = False,
) -> VerifiedBundle:
    """Verify ``bundle`` (parsed JSON) offline (see the module).  ``log_vkey``,
    ``rules_jwks`` and ``scores_jwks`` are the keys to trust; without the first two the
    bundle's own ``logKey`` and ``rulesJwks`` are used.  The score statement — the only
    proof that no input was left out — needs ``scores_jwks`` unless ``trust_bundle_keys``
    says to take the bundle's own ``scoresJwks`` (which proves consistency, not origin).
    Raises :class:`BundleInvalid`."""
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise _fail("format", f"not a {BUNDLE_FORMAT} document")
    record, record_hash = bundle.get("record"), bundle.get("recordHash")
    note = bundle.get("checkpoint")
    if (
        not isinstance(record, dict)
        or not isinstance(record_hash, str)
        or not isinstance(note, str)
    ):
        raise _fail("format", "needs record, recordHash and checkpoint")
    vkey = log_vkey or bundle.get("logKey")
    jwks = rules_jwks if rules_jwks is not None else bundle.get("rulesJwks")
    if not isinstance(vkey, str) or not isinstance(jwks, dict):
        raise _fail("format", "no log key or rule-set JWKS to verify with")
    if scores_jwks is None and trust_bundle_keys:
        own = bundle.get("scoresJwks")
        scores_jwks = own if isinstance(own, dict) else None
    # 1. The checkpoint.
    try:
        checkpoint = verify_checkpoint(note, Ed25519Verifier.from_vkey(vkey))
    except CommonsError as e:
        raise _fail("checkpoint", f"the checkpoint's signature does not verify ({e.code})") from e
    # 2. The rule set.
    rule_set = _rule_set(bundle, jwks)
    if record.get("ruleSet") != {
        "id": rule_set.id,
        "version": rule_set.version,
        "hash": rule_set.hash,
    }:
        raise _fail("rule_set", "the record names another rule set")
    # 3-4. The inputs.
    event_items, member_items = bundle.get("events"), bundle.get("members")
    if not isinstance(event_items, list) or not isinstance(member_items, list):
        raise _fail("format", "events and members must be lists")
    events = _events(note, event_items, vkey)
    member_ids: list[str] = []
    members = _members(note, member_items, vkey, member_ids, rule_set)
    # 5. The platform's statement: this record, at this checkpoint, from exactly these inputs.
    _statement(
        bundle,
        scores_jwks,
        score_statement(
            record,
            record_hash=record_hash,
            checkpoint_size=checkpoint.size,
            checkpoint_root=bytes(checkpoint.root_hash),
            event_cids=[e.cid for e in events],
            member_event_ids=member_ids,
        ),
    )
    # 6-7. The recompute.
    full = _recompute(record, record_hash, (events, members), rule_set)
    values_checked = isinstance(bundle.get("factorSalts"), dict)
    if values_checked and canonical_json(record) != canonical_json(full):
        raise _fail("recompute", "a value differs from the recompute")
    return VerifiedBundle(
        record=full if values_checked else record,
        record_hash=record_hash,
        checkpoint_size=checkpoint.size,
        rule_set=rule_set,
        events=len(events),
        members=len(members),
        values_checked=values_checked,
    )
