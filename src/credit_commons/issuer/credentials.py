"""Issuing SD-JWT VCs and W3C credentials (issue 5, item 2; issue 16, W3C VCDM 2.0).

``issue_credential`` validates the claims against the catalogue type (field-level
errors), refuses an erased (tombstoned) or unknown subject, allocates a random status
index, signs a ``dc+sd-jwt`` with the issuer key (``iss``, ``iat``, ``exp``, ``vct``,
``cnf`` holder key, ``status``; the type's disclosable paths selectively disclosable) or a
W3C VCDM 2.0 credential as a ``vc+jwt`` (VC-JOSE-COSE; its ``credentialStatus`` a
``BitstringStatusListEntry``), keeps only the token's SHA-256 and metadata in the registry,
seals the credential in the vault under the subject's ``credentials`` key, and records
``credential.issued``.

Formats: ``dc+sd-jwt`` (OID4VCI 1.0 Appendix A.3) and ``vc+jwt``.  OID4VCI 1.0 defines no
format profile for VCDM 2.0 secured with JOSE (its ``jwt_vc_json``, Appendix A.1.1, is the
Data Model 1.1 ``vc`` claim), and recommends that a new profile use the credential's media
type as its identifier: ``application/vc+jwt`` gives ``vc+jwt``.  ``jwt_vc_json`` (VCDM
1.1) is no longer issued — Bitstring Status List v1.0 defines its entries for 2.0
credentials only — but the rows of those already issued keep their format, and their
status still changes (:mod:`~credit_commons.issuer.registry`, which reads the registry and
changes a credential's status).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from credit_commons import zk
from credit_commons.core.db import HotStatement
from credit_commons.core.encoding import JsonObject, b64url_encode
from credit_commons.core.errors import (
    CommonsError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    ValidationError,
)
from credit_commons.core.ids import new_id
from credit_commons.events import (
    EventDetails,
    EventSpec,
    RecordedEvent,
    Token,
    record_events,
)
from credit_commons.formats.bitstring_status_list import BitstringStatusEntry
from credit_commons.formats.vc_jose import VCDM2_CONTEXT, datetime_stamp, secure_credential
from credit_commons.identity import (
    Principal,
    actor_of,
    existing_identities,
    is_tombstoned,
    subject_of,
)
from credit_commons.issuer import service as catalogue_service
from credit_commons.issuer import status
from credit_commons.issuer.build_pool import BuildJob, BuildPool, Built, PendingBuilds
from credit_commons.issuer.catalogue import (
    ClaimsInvalid,
    CredentialType,
    complete_score_commitment,
    verify_score_opening,
)
from credit_commons.issuer.models import CredentialRow
from credit_commons.issuer.schemas import (
    IssuedCredential,
    IssueRequest,
)
from credit_commons.issuer.sd_jwt import compact_sd_jwt
from credit_commons.keys import PublicKey, StoredSigner, encode_did_key, public_key_from_jwk
from credit_commons.runtime import Runtime

__all__ = [
    "VC_JWT",
    "CredentialIssued",
    "IssueRequest",
    "checked_claims",
    "issue_credential",
    "issue_credentials",
]

SD_JWT_VC = "dc+sd-jwt"
_CREDENTIALS = cast(Table, CredentialRow.__table__)
_INSERT_CREDENTIALS = HotStatement(
    insert(_CREDENTIALS),
    (
        "id",
        "type_name",
        "subject_token",
        "format",
        "token_hash",
        "status_list_id",
        "status_index",
        "sealed",
        "issued_at",
        "expires_at",
    ),
)
VC_JWT = "vc+jwt"  # W3C VCDM 2.0 secured as application/vc+jwt (VC-JOSE-COSE §3.1.1)
JWT_VC_JSON = "jwt_vc_json"  # W3C VCDM 1.1: the format of rows issued before VCDM 2.0
FORMATS = (SD_JWT_VC, VC_JWT)  # what is issued
_VAULT_PURPOSE = "credentials"  # the subject key an issued credential is sealed under


class CredentialIssued(EventDetails, event_type="credential.issued"):
    """A credential was issued (its type and format; never its claims)."""

    type_name: Token
    format: Token


def _present(claims: JsonObject, paths: tuple[str, ...]) -> list[str]:
    # The type's disclosable paths that these claims actually contain (optional claims
    # may be absent).
    found = []
    for path in paths:
        node: Any = claims
        for segment in path.strip("/").split("/"):
            if not isinstance(node, dict) or segment not in node:
                break
            node = node[segment]
        else:
            found.append(path)
    return found


@dataclass(frozen=True)
class _Checked:
    request: IssueRequest
    credential_type: CredentialType
    holder_key: PublicKey


def _score_salt() -> str:
    # 128 random bits, as the SD-JWT disclosures' salts (22 base64url characters).
    return b64url_encode(secrets.token_bytes(16))


def checked_claims(credential_type: CredentialType, claims: Mapping[str, Any]) -> Mapping[str, Any]:
    """``claims`` as they will be signed: with the score commitment the platform computes
    when the issuer sent a score but no commitment (seed 001,
    :func:`~credit_commons.issuer.catalogue.complete_score_commitment`), checked against the
    type's schema, and with a sent commitment opened by the sent opening.

    Raises ``ClaimsInvalid`` (field-level): claims that break the schema, or a score
    opening that does not open the score commitment the issuer sent.
    """
    claims = complete_score_commitment(credential_type, claims, salt=_score_salt)
    credential_type.validate(claims)
    opening = claims.get("score_opening")
    if isinstance(opening, Mapping) and isinstance(claims.get("score_commitment"), str):
        # Seed 001: the commitment in the credential must be opened by the disclosed score.
        try:
            verify_score_opening(claims["score_commitment"], opening)
        except IntegrityError as e:
            raise ClaimsInvalid(
                "the score opening does not open the score commitment",
                extra={
                    "errors": [
                        {"field": "/score_opening", "message": "does not open /score_commitment"}
                    ]
                },
            ) from e
    return claims


def _check(
    session: Session,
    rt: Runtime,
    request: IssueRequest,
    types: dict[str, CredentialType],
    statements: dict[str, list[zk.Statement]],
) -> _Checked:
    # Everything about one request that needs no other request: format, type, claims
    # (schema, score opening, ZK commitments), holder key.  ``types`` and ``statements``
    # hold the types and the registry's statements (by vct) already looked up.
    if request.credential_format == JWT_VC_JSON:
        raise ValidationError(
            "jwt_vc_json (VCDM 1.1) is no longer issued: W3C credentials are vc+jwt",
            hint="ask for format vc+jwt (VCDM 2.0 with a Bitstring Status List entry)",
            extra={"field": "format"},
        )
    if request.credential_format not in FORMATS:
        raise ValidationError("unknown credential format", extra={"field": "format"})
    credential_type = types.get(request.type_name)
    if credential_type is None:
        credential_type = catalogue_service.get_type(session, rt, request.type_name)
        types[request.type_name] = credential_type
    claims = checked_claims(credential_type, request.claims)
    if request.credential_format == SD_JWT_VC:
        # Issue 18 §3: a commitment to each claim a registered statement reads, its salt
        # in a Disclosure only the holder gets (zk/registry_claims.py).  Not for a vc+jwt:
        # without selective disclosure its salt would go to every verifier.
        vct = credential_type.vct
        if vct not in statements:
            statements[vct] = zk.statements_for_vct(session, rt, vct)
        if statements[vct]:
            try:
                claims = zk.commit_claims(statements[vct], claims)
            except zk.ClaimNotProvable as e:
                # A value the schema let through that has no committed form (a day that
                # does not exist, 2026-02-30): refused as the schema's errors are, by field.
                field = str(e.extra.get("field", "/"))
                raise ClaimsInvalid(
                    "the claims do not match the credential type",
                    extra={"errors": [{"field": field, "message": "breaks the format rule"}]},
                ) from e
    if claims is not request.claims:
        request = replace(request, claims=dict(claims))
    holder_key = public_key_from_jwk(request.holder_jwk)  # Ed25519/P-256, or KeyInvalid
    return _Checked(request, credential_type, holder_key)


def _check_subjects(session: Session, rt: Runtime, requests: Sequence[IssueRequest]) -> None:
    # One query per 500 subjects; only a missing subject can be an erased one (erasure
    # deletes the identity row), so the tombstones are read only for those.  The error of
    # a batch names the first request for that subject as ``item``.
    first: dict[str, int] = {}
    for position, request in enumerate(requests):
        first.setdefault(request.subject_token, position)
    tokens = list(first)
    known = existing_identities(session, tokens)
    for token in tokens:
        if token not in known:
            error: CommonsError
            if is_tombstoned(session, rt, token):
                error = ConflictError("the subject was erased; nothing can be issued to it")
            else:
                error = NotFoundError("no such subject identity")
            if len(requests) > 1:
                error.extra["item"] = first[token]
            raise error


def issue_credential(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    type_name: str,
    subject_token: str,
    claims: JsonObject,
    holder_jwk: dict[str, str],
    credential_format: str = SD_JWT_VC,
) -> IssuedCredential:
    """Issue an SD-JWT VC, or a W3C VCDM 2.0 credential as a ``vc+jwt`` (administrators/
    issuers only; others get :class:`NotFoundError`).

    Raises ``ClaimsInvalid`` (field-level), ``KeyInvalid`` for a bad holder key,
    :class:`ConflictError` for an erased subject, :class:`NotFoundError` for an unknown one.
    """
    request = IssueRequest(type_name, subject_token, claims, holder_jwk, credential_format)
    return issue_credentials(session, rt, principal, [request])[0]


# One credential on its way: the checked request, its id, its build job (or its VC-JWT, signed
# already), its status-list entry and its expiry; then the same with the credential's text.
_Made = tuple[_Checked, str, BuildJob | str, status.StatusRef, datetime]
_Issued = tuple[_Checked, str, str, status.StatusRef, datetime]


def issue_credentials(
    session: Session,
    rt: Runtime,
    principal: Principal,
    requests: Sequence[IssueRequest],
    *,
    builders: BuildPool | None = None,
) -> list[IssuedCredential]:
    """Issue several credentials in the caller's transaction, all or none.

    Everything done once per call is done once for the batch: the catalogue types, the
    subjects' existence, the status-list lock, the issuer key, the subjects' vault keys,
    and one multi-row insert each for the registry rows and the events.  Raises what
    :func:`issue_credential` raises; in a batch of more than one the problem carries the
    failing request's position as ``item``.  With ``builders``, the SD-JWTs are built on
    its worker processes and in this one (:mod:`~credit_commons.issuer.build_pool`); the
    credentials are the same.
    """
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    if not requests:
        return []
    checked = _check_batch(session, rt, requests)
    signer, now, made = _prepare_batch(session, rt, checked)
    built, events = _build_and_record(
        session, rt, principal, checked=checked, made=made, now=now, builders=builders
    )
    issued = _sign_batch(signer, made, built)
    _store_batch(session, rt, issued, now)
    # The one model construction per credential of the hot path (bench/credentials.py).
    return [
        IssuedCredential(
            credential_id=credential_id,
            format=item.request.credential_format,
            credential=text,
            expires_at=expires.isoformat(),
            event_id=event.id,
        )
        for (item, credential_id, text, _, expires), event in zip(issued, events, strict=True)
    ]


def _check_batch(session: Session, rt: Runtime, requests: Sequence[IssueRequest]) -> list[_Checked]:
    # Each request against the catalogue (one lookup per type), then the subjects at once.
    checked: list[_Checked] = []
    types: dict[str, CredentialType] = {}
    statements: dict[str, list[zk.Statement]] = {}
    for position, request in enumerate(requests):
        try:
            checked.append(_check(session, rt, request, types, statements))
        except CommonsError as e:
            if len(requests) > 1:
                e.extra["item"] = position
            raise
    _check_subjects(session, rt, requests)
    return checked


def _prepare_batch(
    session: Session, rt: Runtime, checked: list[_Checked]
) -> tuple[StoredSigner, datetime, list[_Made]]:
    # The status-list entries of the whole batch, the issuer key, and each credential's
    # build job (a VC-JWT is signed here already).
    kinds = [
        status.StatusKind.TOKEN
        if item.request.credential_format == SD_JWT_VC
        else status.StatusKind.BITSTRING
        for item in checked
    ]
    refs: dict[status.StatusKind, Iterator[status.StatusRef]] = {
        kind: iter(status.allocate_many(session, rt, kind, kinds.count(kind)))
        for kind in set(kinds)
    }
    signer = status.issuer_signer(session, rt)
    now = rt.clock.now()
    made: list[_Made] = []
    for position, (item, kind) in enumerate(zip(checked, kinds, strict=True)):
        ref = next(refs[kind])
        credential_id = new_id("crd")
        expires = now + timedelta(days=item.credential_type.default_validity_days)
        try:
            job = _build(
                rt,
                item,
                credential_id=credential_id,
                ref=ref,
                signer=signer,
                now=now,
                expires=expires,
            )
        except CommonsError as e:
            if len(checked) > 1:
                e.extra["item"] = position
            raise
        made.append((item, credential_id, job, ref, expires))
    return signer, now, made


def _build_and_record(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    checked: list[_Checked],
    made: list[_Made],
    now: datetime,
    builders: BuildPool | None,
) -> tuple[list[Built], list[RecordedEvent]]:
    # With workers, the SD-JWTs are built there while this process does what needs no
    # credential text (the subjects' vault keys, the events); without, they are built
    # first, so that a claim no SD-JWT can carry is refused before anything is written.
    sd_jwts = [
        (position, job)
        for position, (_, _, job, _, _) in enumerate(made)
        if not isinstance(job, str)
    ]
    jobs = [job for _, job in sd_jwts]
    pending = builders.submit(jobs) if builders is not None else PendingBuilds(jobs, [])
    try:
        if not pending.sent:
            built = _collect_builds(pending, sd_jwts, len(made))
        rt.vault.ensure_keys(
            session, {item.request.subject_token for item in checked}, _VAULT_PURPOSE
        )
        actor = actor_of(rt, principal)
        events = record_events(
            session,
            [
                EventSpec(
                    CredentialIssued(
                        type_name=item.credential_type.name,
                        format=item.request.credential_format,
                    ),
                    actor=actor,
                    at=now,
                    subject=subject_of(rt, item.request.subject_token),
                    object=rt.objects.digest("credential", credential_id),
                )
                for item, credential_id, _, _, _ in made
            ],
        )
        if pending.sent:
            built = _collect_builds(pending, sd_jwts, len(made))
    finally:
        pending.cancel()
    return built, events


def _sign_batch(signer: StoredSigner, made: list[_Made], built: list[Built]) -> list[_Issued]:
    # The SD-JWTs' signatures all at once (a large batch is signed on several threads).
    signatures = signer.sign_many([signing_input for signing_input, _ in built])
    sd_jwt_texts = iter(
        compact_sd_jwt(signing_input, disclosures, signature)
        for (signing_input, disclosures), signature in zip(built, signatures, strict=True)
    )
    return [
        (item, credential_id, job if isinstance(job, str) else next(sd_jwt_texts), ref, expires)
        for item, credential_id, job, ref, expires in made
    ]


def _store_batch(session: Session, rt: Runtime, issued: list[_Issued], now: datetime) -> None:
    # The credentials sealed for their subjects, and their registry rows.
    sealed = rt.vault.seal_many(
        session,
        [(text.encode(), item.request.subject_token, cid) for item, cid, text, _, _ in issued],
        purpose=_VAULT_PURPOSE,
    )
    # One precompiled executemany: plain values, no ORM or Core per-call layers.
    _INSERT_CREDENTIALS.executemany(
        session,
        [
            {
                "id": credential_id,
                "type_name": item.credential_type.name,
                "subject_token": item.request.subject_token,
                "format": item.request.credential_format,
                "token_hash": hashlib.sha256(text.encode()).hexdigest(),
                "status_list_id": ref.list_id,
                "status_index": ref.index,
                "sealed": envelope,
                "issued_at": now,
                "expires_at": expires,
            }
            for (item, credential_id, text, ref, expires), envelope in zip(
                issued, sealed, strict=True
            )
        ],
    )


def _collect_builds(
    pending: PendingBuilds, sd_jwts: list[tuple[int, BuildJob]], batch: int
) -> list[Built]:
    # The builds, or the first failing one's error naming its request (``item``) in a batch.
    try:
        return pending.result()
    except CommonsError as e:
        at = e.extra.pop("item", None)
        if batch > 1 and isinstance(at, int):
            e.extra["item"] = sd_jwts[at][0]
        raise


def _build(
    rt: Runtime,
    item: _Checked,
    *,
    credential_id: str,
    ref: status.StatusRef,
    signer: StoredSigner,
    now: datetime,
    expires: datetime,
) -> BuildJob | str:
    # The credential in its format: what an SD-JWT's build needs (see build_pool), or a
    # VC-JWT signed already.
    request, credential_type = item.request, item.credential_type
    uri = status.status_uri(rt, ref.list_id)
    iat = int(now.timestamp())
    if request.credential_format == SD_JWT_VC:
        payload = {
            **request.claims,
            "iss": rt.settings.public_url,
            "iat": iat,
            "exp": int(expires.timestamp()),
            "vct": credential_type.vct,
            "status": {"status_list": {"idx": ref.index, "uri": uri}},
        }
        return (
            payload,
            _present(
                request.claims, credential_type.disclosable + zk.opening_paths(request.claims)
            ),
            signer.alg,
            {"typ": SD_JWT_VC, "kid": signer.kid},
            request.holder_jwk,
        )
    # W3C VCDM 2.0 (§4.3 context, §4.5 types, §4.9 validity) with a Bitstring Status List
    # entry (W3C §2.1), secured as a vc+jwt; the holder is the subject's did:key.
    credential = {
        "@context": [VCDM2_CONTEXT],
        "id": f"urn:credit-commons:{credential_id}",
        "type": ["VerifiableCredential", credential_type.name],
        "issuer": rt.settings.public_url,
        "validFrom": datetime_stamp(now),
        "validUntil": datetime_stamp(expires),
        "credentialSubject": {"id": encode_did_key(item.holder_key), **request.claims},
        "credentialStatus": BitstringStatusEntry(uri, ref.index, "revocation").to_json(),
    }
    return secure_credential(credential, signer, kid=signer.kid, iat=iat)
