"""The verification pipeline (seed 002 §5): every check a credential or presentation passes
here, numbered, each step a function of this module.

An OpenID4VP response (for the transactions of ``verifier/service.py``) goes through all ten
steps — step 1 (:func:`challenge`), then :func:`decide` — and every presentation in its
``vp_token`` through steps 2-9, where one that fails is discarded (OpenID4VP 1.0 §8.6):

1. :func:`challenge` — the transaction exists and the response is for it (``state``), its
   request hash is unchanged, its nonce unexpired and unused; the decision consumes it, by
   one conditional UPDATE that repeats those conditions (``transactions.record_decision``),
   so of two concurrent responses exactly one decides;
2. :func:`holder_binding` — the KB-JWT: present (checked as the presentation is split), then
   signed by the ``cnf`` holder key for this transaction's ``nonce`` and ``aud`` = the client
   identifier, recent, with the ``sd_hash`` of what was presented (RFC 9901 §7.3 step 5);
3. :func:`issuer_signature` — the issuer signature and Disclosures (RFC 9901 §7.1), the key
   from this platform's key store or, for an issuer on the trust list, its metadata or DID
   document — or, for a credential carrying an ``x5c`` chain, the end-entity certificate's
   key once the chain verified up to an X.509 anchor of the trust list and names ``iss`` —
   never otherwise from the token; the validity period, and the SD-JWT VC type;
4. :func:`privacy_tombstone` — a credential of this platform whose subject was erased;
5. :func:`did_key_binding` — when the holder is a DID, the ``cnf`` key must be one its
   current DID document authorizes (``verifier/did_binding.py``);
6. :func:`issuer_trust` — the issuer is trusted for this credential type (the platform's
   trust list, or a pinned bundle of another platform), with its trust marks;
7. :func:`predicates` — the policy's rules (``verifier/policy.py``): types, claims,
   predicates, trust marks, status, holder binding, age, purpose;
8. :func:`zk_predicates` — zero-knowledge predicates: statement, bindings, parameters,
   commitment linkage, then the proof, one-time (``verifier/zk_step.py``);
9. :func:`status` — this platform's lists from the database, a trusted issuer's fetched;
10. :func:`policy_floor` — the request's policy version is not below the policy's floor.

Step 3 runs before step 2's signature check: the KB-JWT is verified with the holder key the
issuer signed, so a key read from an unverified payload never decides anything.  The
response's shape (:func:`shape`: query ids and counts) is checked before step 2; DCQL
satisfaction (:func:`dcql`) runs after steps 2-9, over the presentations not discarded,
before step 10.  Every failure raises; :func:`decide` returns only when everything passed, and
its caller turns whatever was raised into a reason (``verifier/reasons.py``), failing closed.

Steps 1-10 only read (``verifier/responses.py`` runs them in a read unit of work, then writes
the decision, the challenge's consumption and the event in a short write transaction).

Without a transaction the same step functions check a presentation whose audience and nonce
the caller gives (:func:`verify_presentation`, ``/v1/presentations/verify``: steps 2, 3, 6,
9) and an issuer-signed SD-JWT VC handed over without key binding
(:func:`verify_sd_jwt_credential`, a lender's consent-gated retrieval through
``/v1/credentials/verify``: steps 3, 6 and 9) — step 6 with the trust registry's rule, so an
issuer trusted for some types only is refused for the others.  They keep their own errors
(``credential.*``), which their callers map to problem+json.  VC-JWTs checked alone (this
platform's only: :func:`verify_vc_jwt_credential`, in ``verifier/w3c.py``) take steps 3 and 9.
Predicate attestations have their own numbered steps
(:func:`~credit_commons.verifier.predicates.verify_attestation`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import NotFoundError
from credit_commons.formats.dcql import DcqlQuery
from credit_commons.formats.sd_jwt_format import Parts
from credit_commons.formats.vp_jwt import parse_vp_jwt
from credit_commons.issuer import (
    EntryState,
    entry_state,
    is_own_issuer,
    issuer_public_key,
    own_status_list_id,
)
from credit_commons.issuer import service as catalogue_service
from credit_commons.keys import ACCEPTED_ALGS, PublicKey
from credit_commons.runtime import Runtime
from credit_commons.verifier import did_binding, foreign, issuer_keys, trust_registry
from credit_commons.verifier import sd_jwt_verify as rfc9901
from credit_commons.verifier import trust as trust_list
from credit_commons.verifier import w3c_presentation as w3c
from credit_commons.verifier.query_support import W3C_JWT_FORMAT, Discarded, shape
from credit_commons.verifier.reasons import Reason, VerificationDenied, of_database, reason_of
from credit_commons.verifier.schemas import SdJwtVerified
from credit_commons.verifier.sd_jwt_vc import (
    CredentialRevoked,
    CredentialSuspended,
    UnknownIssuerKey,
    UntrustedIssuer,
    VcFacts,
    disclosed_claims,
    raise_for_status,
    sd_jwt_vc_facts,
    status_read,
)
from credit_commons.verifier.transactions import Challenge, Checked, Transaction, check_challenge
from credit_commons.verifier.trust_bundle import IssuerNotTrusted, TrustEntry
from credit_commons.verifier.w3c import own_issuer_keys, verify_vc_jwt_credential
from credit_commons.verifier.zk_step import ZkCheck, check_predicates

__all__ = [
    "Challenge",
    "CredentialRevoked",
    "CredentialSuspended",
    "Decided",
    "Discarded",
    "Presented",
    "Requirements",
    "ResponseDenied",
    "UnknownIssuerKey",
    "UntrustedIssuer",
    "challenge",
    "decide",
    "shape",
    "verify_presentation",
    "verify_sd_jwt_credential",
    "verify_vc_jwt_credential",
]


@dataclass(frozen=True, slots=True)
class Presented:
    """One presentation as steps 2-9 established it: the DCQL credential query it answers,
    its issuer and type, the claims its holder disclosed (without ``cnf`` and ``status``),
    how its issuer is trusted (``platform``, ``https``, ``did:web``, ``did:key``, ``x509``) with its
    trust marks, its ``iat``, whether its status is checked (step 9) and its holder bound
    (step 2) — what the policy's rules evaluate at step 7."""

    query_id: str
    issuer: str
    vct: str
    claims: JsonObject
    issuer_kind: str = "platform"
    marks: frozenset[str] = frozenset()
    issued_at: int | None = None
    status_checked: bool = False
    holder_bound: bool = True
    format: str = "dc+sd-jwt"
    types: tuple[str, ...] = ()
    #: What DCQL claims paths point into, when not ``claims`` (a W3C credential's ``vc``
    #: object or VCDM 2.0 payload, OpenID4VP 1.0 B.1).
    query_claims: JsonObject | None = None
    zk_proofs: tuple[str, ...] = ()  # the SHA-256 of each proof step 8 accepted (one-time)


#: Step 6 beyond the trust list: the marks of the entry under which a foreign ``issuer``
#: may issue this credential type (``trust_registry.trusted``); raises to refuse.
TrustRule = Callable[[str, str], frozenset[str]]
#: Step 7: the policy's predicates over one presentation; raises to refuse.
ClaimRule = Callable[[Presented], None]
#: DCQL satisfaction over every verified presentation; raises to refuse.
DcqlRule = Callable[[Sequence[Presented]], None]


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a transaction requires beyond the checks every presentation passes: the DCQL
    query (its ids, counts and formats shape the response, :func:`shape`) and its
    satisfaction, the policy's trust rule, predicates and zero-knowledge predicates (with
    the response's proofs), and its version with a reader of the policy's floor (step 10)."""

    dcql: DcqlRule
    query: DcqlQuery | None = None
    trust: TrustRule | None = None
    predicates: ClaimRule | None = None
    zk: ZkCheck | None = None
    policy_version: int | None = None
    policy_floor: Callable[[], int | None] | None = None


@dataclass(frozen=True, slots=True)
class Decided:
    """A response the pipeline accepted: the transaction, its verified presentations, and
    those it discarded on the way (the query was satisfied without them)."""

    transaction_id: str
    presented: tuple[Presented, ...]
    discarded: tuple[Discarded, ...] = ()


def verify_presentation(
    session: Session, rt: Runtime, presentation: str, *, audience: str, nonce: str
) -> SdJwtVerified:
    """Verify an SD-JWT+KB presentation for a caller-given ``audience`` and ``nonce``
    (steps 2, 3, 6 and 9); returns the disclosed claims.

    Raises the SD-JWT errors (``credential.*``; ``credential.key_binding_missing`` without a
    KB-JWT), :class:`UnknownIssuerKey`, :class:`UntrustedIssuer`,
    ``foreign.UnknownForeignKey``/``IssuerMetadataInvalid``, ``StatusListRejected``, the
    fetcher's ``UnsafeUrl``/``FetchFailed``, :class:`CredentialRevoked` or
    :class:`CredentialSuspended`.
    """
    check = _Check(session, rt, key_binding=True, audience=audience, nonce=nonce)
    verified, facts = _verified(check, presentation)
    issuer_trust(check, facts, None)  # step 6
    status(check, facts)  # step 9
    return SdJwtVerified.of(facts, verified.payload, foreign=check.foreign_kind is not None)


def verify_sd_jwt_credential(session: Session, rt: Runtime, credential: str) -> SdJwtVerified:
    """Verify an issuer-signed SD-JWT VC handed over without Key Binding (a credential a
    lender retrieved under consent): steps 3, 6 and 9, and a KB-JWT must be absent.

    Raises what :func:`verify_presentation` raises, with ``credential.key_binding_unexpected``
    (``KeyBindingUnexpected``) for an SD-JWT that carries a KB-JWT.
    """
    check = _Check(session, rt, key_binding=False)
    verified, facts = _verified(check, credential)
    issuer_trust(check, facts, None)  # step 6
    status(check, facts)  # step 9
    return SdJwtVerified.of(facts, verified.payload, foreign=check.foreign_kind is not None)


def decide(
    session: Session,
    rt: Runtime,
    checked: Checked,
    vp_token: Mapping[str, Sequence[object]],
    requirements_of: Callable[[], Requirements],
) -> Decided:
    """Run steps 2-10 over an OpenID4VP response whose challenge step 1
    (:func:`challenge`) accepted: ``vp_token`` maps each DCQL credential query id to its
    presentations (OpenID4VP 1.0 §8.1); ``requirements_of`` reads the transaction's
    requirements (its query and policy).  Only reads: ``session`` is a read unit of work
    (a database error in a step fails that step; nothing is written to roll back).

    OpenID4VP 1.0 §8.6: first the cheap checks of the response's shape (:func:`shape`: its
    keys are the query's ids, no more presentations than each query allows) — before any
    signature is checked or anything fetched; then each presentation through steps 2-9,
    where one that fails is discarded with its reason ("the effected Presentation MUST be
    discarded"), except for a nonce or audience that is not this request's, which rejects
    the whole response (it was made for another request); then DCQL satisfaction over what
    is left, and step 10.  When what is left does not satisfy the query, the denial carries
    the reason of the first presentation discarded (the precise reason the response failed)
    or, when none was, ``dcql_unsatisfied``.

    Raises :class:`VerificationDenied` with the step's reason, or the error of a step
    (``reasons.reason_of`` names its reason; anything unknown is a dependency failure).
    """
    check = _Check(session, rt, key_binding=True, audience=checked.client_id, nonce=checked.nonce)
    requirements = requirements_of()
    shown = shape(requirements.query, vp_token)
    presented: list[Presented] = []
    discarded: list[Discarded] = []
    # One presentation: a dependency or database failure in it denies the response (with
    # its reason); of several, each failure only discards its own presentation.
    several = sum(not isinstance(text, Discarded) for _, _, text in shown) > 1
    for query_id, format_, text in shown:
        if isinstance(text, Discarded):
            discarded.append(text)
            continue
        try:
            run = _w3c_presentation if format_ == W3C_JWT_FORMAT else _presentation
            presented.append(run(check, query_id, text, requirements))
        except Exception as e:  # §8.6: discard it, keeping why
            reason = reason_of(e)
            if reason in _RESPONSE_WIDE:
                raise
            discarded.append(Discarded(query_id, reason))
            if not several and (reason is Reason.DEPENDENCY_FAILURE or of_database(e)):
                raise ResponseDenied(reason, None, tuple(discarded)) from e
    try:
        dcql(requirements, presented)  # after steps 2-9, over what was not discarded
        policy_floor(requirements)  # step 10
    except VerificationDenied as e:
        reason = (
            discarded[0].reason if discarded and e.reason is Reason.DCQL_UNSATISFIED else e.reason
        )
        raise ResponseDenied(reason, e.detail, tuple(discarded)) from e
    return Decided(checked.transaction_id, tuple(presented), tuple(discarded))


class ResponseDenied(VerificationDenied):
    """A response denied after its presentations went through steps 2-9, with those that
    were discarded on the way (their reasons go to the decision record)."""

    def __init__(
        self, reason: Reason, detail: str | None, discarded: tuple[Discarded, ...]
    ) -> None:
        super().__init__(reason, detail)
        self.discarded = discarded


#: Failures of one presentation that reject the whole response (§8.6: the nonce and the
#: audience bind the response to this request; one made for another is no answer to it).
_RESPONSE_WIDE: Final = frozenset({Reason.NONCE_MISMATCH, Reason.AUD_MISMATCH})


def _presentation(check: _Check, query_id: str, text: str, req: Requirements) -> Presented:
    verified, facts = _verified(check, text)  # steps 3 and 2
    privacy_tombstone(check, facts)  # step 4
    did_key_binding(check, verified)  # step 5
    kind, marks = issuer_trust(check, facts, req)  # step 6
    iat = verified.payload.get("iat")
    shown = Presented(
        query_id,
        facts.issuer,
        facts.vct,
        disclosed_claims(verified.payload),
        issuer_kind=kind,
        marks=marks,
        issued_at=iat if isinstance(iat, int) and not isinstance(iat, bool) else None,
        # (step 9: status_read; a KB-JWT was required at step 2)
        status_checked=status_read(facts, foreign=check.foreign_kind is not None),
        holder_bound=verified.key_binding is not None,
    )
    predicates(req, shown)  # step 7
    shown = zk_predicates(req, shown)  # step 8
    status(check, facts)  # step 9
    return shown


def _w3c_presentation(check: _Check, query_id: str, text: str, req: Requirements) -> Presented:
    # A W3C credential in a VP-JWT (verifier/w3c_presentation.py has steps 2-5 and 9).
    own_keys = own_issuer_keys(check.session, check.rt)  # every version, by kid
    vp = parse_vp_jwt(text, algs=ACCEPTED_ALGS)
    credential = w3c.issuer_signature(  # step 3
        check.session,
        check.rt,
        vp.credential,
        own_keys=own_keys,
        trusted_kind=lambda iss, type_: issuer_keys.trusted_kind(
            check.session, check.rt, iss, type_
        ),
        now=check.now,
    )
    w3c.holder_binding(  # steps 2 and 5
        check.rt, vp, credential, audience=check.audience, nonce=check.nonce, now=check.now
    )
    w3c.privacy_tombstone(check.session, check.rt, credential)  # step 4
    kind, marks = "platform", frozenset[str]()
    if credential.foreign_kind is not None:  # step 6
        kind = credential.foreign_kind
        if req.trust is not None:
            marks = req.trust(credential.issuer, credential.main_type)
    shown = Presented(
        query_id,
        credential.issuer,
        credential.main_type,
        credential.claims,
        issuer_kind=kind,
        marks=marks,
        issued_at=credential.issued_at,
        status_checked=credential.foreign_kind is None,  # step 9 refuses a foreign entry
        format=W3C_JWT_FORMAT,
        types=credential.types,
        query_claims=credential.document,
    )
    predicates(req, shown)  # step 7
    shown = zk_predicates(req, shown)  # step 8
    w3c.status(check.session, check.rt, credential, own_keys=own_keys, now=check.now)
    return shown


@dataclass
class _Check:
    """One verification's inputs and what its steps learn on the way."""

    session: Session
    rt: Runtime
    key_binding: bool
    audience: str | None = None
    nonce: str | None = None
    #: The entries of this platform's status lists read so far, by (list, index): steps 4
    #: and 9 read one entry in one statement (``None``: no such list).
    entries: dict[tuple[str, int], EntryState | None] = field(default_factory=dict)
    #: The trust-list kind of a foreign issuer, once step 3 has accepted it.
    foreign_kind: trust_list.EntryKind | None = None
    #: For an issuer certified by its ``x5c`` chain: the anchor's entry and the leaf's key.
    anchor: TrustEntry | None = None
    certified_key: PublicKey | None = None

    @property
    def now(self) -> int:
        """The verifier's clock, in Unix seconds."""
        return int(self.rt.clock.now().timestamp())


def _verified(check: _Check, text: str) -> tuple[rfc9901.Verified, VcFacts]:
    # Step 3 (with step 2's presence check as the serialization is split), then step 2.
    with rfc9901.nesting_guard():
        parts = parse(check, text)
        signed = issuer_signature(check, parts)
        bound = holder_binding(check, parts, signed)
    verified = signed.verified(bound)
    return verified, credential_type(check, verified)


# -- the steps, in order -------------------------------------------------------------------


def challenge(
    session: Session, row: Transaction | None, challenge_: Challenge, now: datetime
) -> Checked:
    """Step 1: the transaction's challenge, unused and unexpired at ``now``
    (``transactions.check_challenge``); the decision consumes it, once
    (``transactions.record_decision``).

    Raises :class:`VerificationDenied` (``challenge_not_found``, ``aud_mismatch``,
    ``request_hash_mismatch``, ``challenge_consumed``, ``challenge_expired``).
    """
    return check_challenge(session, row, challenge_, now)


def parse(check: _Check, text: str) -> Parts:
    """Splitting the serialization: a KB-JWT must be present for a presentation (step 2:
    ``KeyBindingMissing``) and absent for a credential (RFC 9901 §7.3 steps 1-3, §7.1 step 1)."""
    return rfc9901.parse_presentation(
        text, require_key_binding=check.key_binding, forbid_key_binding=not check.key_binding
    )


def holder_binding(
    check: _Check, parts: Parts, signed: rfc9901.IssuerSigned
) -> rfc9901.KeyBinding | None:
    """Step 2: the KB-JWT for this audience and nonce, by the holder key the issuer signed
    (``None`` for a credential without one, which :func:`parse` required).

    Raises ``KeyBindingInvalid``, ``KbStale``, ``KbNonceMismatch``, ``KbAudienceMismatch``
    or ``SdHashMismatch``.
    """
    return rfc9901.verify_key_binding(
        parts, signed, audience=check.audience, nonce=check.nonce, now=check.now
    )


def issuer_signature(check: _Check, parts: Parts) -> rfc9901.IssuerSigned:
    """Step 3: the issuer signature (its key from :func:`issuer_key`), the Disclosures and
    the validity period (``exp``/``nbf``/``iat`` with leeway, RFC 9901 §7.1 step 6)."""
    signed = rfc9901.verify_issuer_jwt(
        parts,
        lambda header, payload: issuer_key(check, header, payload),
        key_headers=frozenset({"x5c"}),  # vouched for by issuer_key, through an anchor only
    )
    rfc9901.check_validity(signed.payload, check.now)
    return signed


def issuer_key(check: _Check, header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
    """Step 3's key: from this platform's key store when ``iss`` is this platform (under its
    current public URL or an earlier one: ``issuer/identifiers.py``); for another issuer on
    the trust list, from its published metadata or DID document — never from the token;
    for a credential carrying an ``x5c`` chain, from the chain's end-entity certificate
    only (``verifier/issuer_keys.py``).

    Raises :class:`UnknownIssuerKey` for a ``kid`` this platform does not hold,
    :class:`UntrustedIssuer` for an issuer not trusted (``IssuerNotTrusted`` ``chain_*``), and
    ``UnknownForeignKey``/``IssuerMetadataInvalid`` or the fetcher's errors.
    """
    if "x5c" not in header and is_own_issuer(check.session, check.rt, payload.get("iss")):
        key = issuer_public_key(check.session, check.rt, header.get("kid"))
        if key is None:
            raise UnknownIssuerKey("the credential's issuer key is not known here")
        return key
    found = issuer_keys.foreign_key(check.session, check.rt, header, payload)
    check.foreign_kind, check.anchor = found.kind, found.anchor
    check.certified_key = found.key if found.anchor is not None else None
    return found.key


def credential_type(check: _Check, verified: rfc9901.Verified) -> VcFacts:
    """Step 3's type: an SD-JWT VC (``typ``, ``vct``, the status reference's shape); for
    this platform's credentials a ``vct`` of its catalogue.

    Raises :class:`UnknownIssuerKey` ("unknown credential type" and the like).
    """
    facts = sd_jwt_vc_facts(verified)
    ours = check.foreign_kind is None
    if ours and not catalogue_service.in_catalogue(check.session, check.rt, facts.vct):
        raise UnknownIssuerKey("unknown credential type")
    return facts


def privacy_tombstone(check: _Check, facts: VcFacts) -> None:
    """Step 4: a credential of this platform whose subject was erased is refused.  The
    registry entry found by the credential's status entry has lost its identity token
    (``issuer.subject_erased``); a foreign issuer's subjects are not known here.

    Raises :class:`VerificationDenied` (``privacy_erased``).
    """
    if check.foreign_kind is not None or facts.status is None:
        return
    list_id = own_status_list_id(check.session, check.rt, facts.status.uri)
    if list_id is None:
        return
    entry = _entry(check, list_id, facts.status.index)
    if entry is not None and entry.erased:
        raise VerificationDenied(Reason.PRIVACY_ERASED)


def _entry(check: _Check, list_id: str, index: int) -> EntryState | None:
    # The entry's status and tombstone in one read, for steps 4 and 9 (issuer.entry_state).
    key = (list_id, index)
    if key not in check.entries:
        check.entries[key] = entry_state(check.session, list_id, index)
    return check.entries[key]


def did_key_binding(check: _Check, verified: rfc9901.Verified) -> None:
    """Step 5: when the holder is a DID (``sub`` or ``cnf.kid``), the ``cnf`` key must be
    authorized by its current DID document (``did_binding.authorized``).

    Raises :class:`VerificationDenied` (``did_key_not_authorized``), or the resolver's
    ``DidInvalid``/``DidResolutionFailed``.
    """
    did = did_binding.holder_did(verified.payload)
    if did is None:
        return
    document = did_binding.holder_dids(check.rt).resolve(did)
    cnf = verified.payload.get("cnf")
    did_binding.authorized(document, did, cnf.get("jwk") if isinstance(cnf, dict) else None)


def issuer_trust(
    check: _Check, facts: VcFacts, req: Requirements | None
) -> tuple[str, frozenset[str]]:
    """Step 6: the issuer is this platform, or trusted — step 3 resolved its key only then —
    for this credential type, by the transaction's trust rule or else (no transaction)
    ``trust_registry.trusted``: the platform's trust list and other platforms' pinned
    bundles; an issuer certified by its ``x5c`` chain, under that anchor's entry.  Returns
    how it is trusted (``platform``, its kind, ``x509``) and its marks, for step 7.

    Raises :class:`UntrustedIssuer` (``IssuerNotTrusted``: ``type_not_allowed``, ...).
    """
    if check.foreign_kind is None:
        return "platform", frozenset()
    if check.anchor is not None:
        if not check.anchor.allows(facts.vct):
            raise IssuerNotTrusted("type_not_allowed", "the anchor's issuers may not issue this")
        return "x509", check.anchor.marks
    if req is not None and req.trust is not None:
        return check.foreign_kind, req.trust(facts.issuer, facts.vct)
    entry = trust_registry.trusted(check.session, check.rt, facts.issuer, facts.vct)
    return check.foreign_kind, entry.marks


def predicates(req: Requirements, shown: Presented) -> None:
    """Step 7: the policy's predicates over the disclosed claims (``eq``, ``neq``, ``gte``,
    ``lte``, ``in``, ``exists``; ISO timestamps compare as times).  Raises what the rule
    raises (``predicate_failed``)."""
    if req.predicates is not None:
        req.predicates(shown)


def zk_predicates(req: Requirements, shown: Presented) -> Presented:
    """Step 8 (``verifier/zk_step.py``): ``shown`` with the digests of the proofs accepted
    on its query.  Raises :class:`VerificationDenied` with a ``zk_*`` reason."""
    zk = req.zk
    accepted = check_predicates(zk, shown.query_id, shown.vct, shown.claims) if zk else ()
    return replace(shown, zk_proofs=accepted) if accepted else shown


def status(check: _Check, facts: VcFacts) -> None:
    """Step 9: the credential's status.  This platform's credentials must name one of its
    own lists; a trusted issuer's are checked when they name a list.

    Raises :class:`CredentialRevoked`, :class:`CredentialSuspended`, and
    :class:`UnknownIssuerKey` for a list of this platform's that is not its own; for a
    foreign list ``StatusListRejected`` and the fetcher's errors.
    """
    if check.foreign_kind is not None:
        if facts.status is not None:
            raise_for_status(
                foreign.foreign_issuers(check.rt).status(
                    facts.issuer,
                    check.foreign_kind,
                    facts.status.uri,
                    facts.status.index,
                    certified_key=check.certified_key,
                )
            )
        return
    reference = facts.status
    list_id = own_status_list_id(check.session, check.rt, reference.uri) if reference else None
    if list_id is None or reference is None:
        raise UnknownIssuerKey("the credential's status list is not one of this issuer's")
    entry = _entry(check, list_id, reference.index)
    if entry is None:
        raise NotFoundError("no such status list")
    raise_for_status(entry.status)


def dcql(req: Requirements, presented: Sequence[Presented]) -> None:
    """DCQL satisfaction (OpenID4VP 1.0 §6.4.2): the verified presentations answer the
    request's credential queries and credential sets.  Raises what the rule raises
    (``dcql_unsatisfied``)."""
    req.dcql(presented)


def policy_floor(req: Requirements) -> None:
    """Step 10: a request made under a policy version below the policy's current floor is
    denied — a verifier cannot be held to a policy it has since tightened.

    Raises :class:`VerificationDenied` (``policy_version_downgrade``).
    """
    if req.policy_version is None or req.policy_floor is None:
        return
    floor = req.policy_floor()
    if floor is not None and req.policy_version < floor:
        raise VerificationDenied(Reason.POLICY_VERSION_DOWNGRADE)
