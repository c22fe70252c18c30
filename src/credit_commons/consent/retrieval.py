"""Consent-gated retrieval of a borrower's credential, and discovery of opted-in borrowers.

``retrieve`` checks the consent, opens the borrower's newest valid credential of the
scoped type from the vault, and hands the lender the SD-JWT with *only* the in-scope
Disclosures (no other claim can be recomputed from it: undisclosed claims stay digests).
The use is counted — only while the consent still allows it, so a revocation that
committed first is seen — and ``access.allowed`` recorded in the same transaction; a
refusal becomes ``access.denied`` with the reason, and the lender is told only "not
permitted".

Discovery lists the public categorical attributes (tier, income and debt-ratio brackets;
seed 001) of borrowers who opted in, each behind a reference only the asking lender can
use (``requests.borrower_ref``) — never an identifier.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from sqlalchemy import String, Table, and_, bindparam, or_, select, true
from sqlalchemy.orm import Session

from credit_commons.consent.access import Lender
from credit_commons.consent.artefacts import ARTEFACT_TYP, consent_key_versions
from credit_commons.consent.check import (
    ConsentRecord,
    ConsentTerms,
    check_consent,
    denial,
    use_and_record,
)
from credit_commons.consent.errors import (
    ConsentArtefactInvalid,
    ConsentError,
    ConsentNotFound,
    CredentialExpired,
    CredentialNotIssued,
    CredentialRevoked,
    CredentialSuspended,
    CredentialUnavailable,
)
from credit_commons.consent.model import scopes_map
from credit_commons.consent.models import ConsentRow, DiscoveryProfileRow
from credit_commons.consent.requests import borrower_ref
from credit_commons.consent.schemas import DiscoveredBorrower, DiscoverySetting, RetrievedCredential
from credit_commons.core.db import HotQuery, transaction
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, NotFoundError
from credit_commons.core.ids import is_valid_id
from credit_commons.formats.jws import parse_compact, verify_compact
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.formats.status_list import TokenStatus
from credit_commons.identity import Permission, Principal, authorise
from credit_commons.issuer import (
    CREDIT_READINESS,
    HELD,
    HeldCredential,
    disclosure_paths,
    held,
    is_own_issuer,
    issuer_key_versions,
    join_held_credentials,
    present,
    sd_jwt_credentials,
)
from credit_commons.keys import ACCEPTED_ALGS, PublicKey
from credit_commons.runtime import Runtime
from credit_commons.vault import state_subquery
from credit_commons.verifier import verify_sd_jwt

__all__ = ["consent_of_artefact", "discover", "named_consent", "retrieve", "set_discoverable"]

OPERATION = "credentials.read"


def _newest_shareable(session: Session, token: str, type_name: str, rt: Runtime) -> HeldCredential:
    # The borrower's newest credential of the type that is neither expired nor revoked nor
    # suspended (asked of the issuer's service, which reads each one's status with it).
    # Raises the CredentialUnavailable that says why there is none.
    return _shareable(sd_jwt_credentials(session, token, type_name), rt)


def _shareable(rows: list[HeldCredential], rt: Runtime) -> HeldCredential:
    # The newest of ``rows`` (newest first) that is neither expired nor revoked nor
    # suspended; raises the CredentialUnavailable that says why there is none.
    now = rt.clock.now()
    for row in rows:
        if row.expires_at > now and row.status == TokenStatus.VALID:
            return row
    raise _unavailable(rows)


def _unavailable(rows: list[HeldCredential]) -> CredentialUnavailable:
    # Why none could be shared, told by the newest credential issued (the one the borrower
    # would expect to be used).  A revocation or suspension says more than an expiry, so
    # the status is looked at first even for an expired credential; TSL "Status Types":
    # 0x01 INVALID is a revocation, and anything but VALID or SUSPENDED is not shareable
    # either.
    if not rows:
        return CredentialNotIssued("no credential of this type was issued to the borrower")
    current = rows[0].status
    if current == TokenStatus.SUSPENDED:
        return CredentialSuspended("the credential is suspended")
    if current != TokenStatus.VALID:
        return CredentialRevoked("the credential was revoked")
    # VALID but not shared: it has expired (a live one would have been returned).
    return CredentialExpired("the credential has expired")


def _newest_valid(
    session: Session, token: str, type_name: str, rt: Runtime
) -> HeldCredential | None:
    try:
        return _newest_shareable(session, token, type_name, rt)
    except CredentialUnavailable:
        return None


def _decide_scope(
    row: ConsentTerms, type_name: str | None, claims: list[str] | None
) -> tuple[str, frozenset[str]]:
    # The type asked for (default: the consent's only scope) and the claims (default: all
    # granted ones).
    granted = scopes_map(json.loads(row.scopes))
    chosen = type_name or (next(iter(granted)) if len(granted) == 1 else "")
    wanted = frozenset(claims) if claims is not None else granted.get(chosen, frozenset())
    return chosen, wanted


def retrieve(
    rt: Runtime,
    lender: Lender,
    consent_id: str,
    *,
    type_name: str | None = None,
    claims: list[str] | None = None,
) -> RetrievedCredential:
    """The borrower's credential with the in-scope Disclosures only, in two units of work.

    First a read (no write lock): the consent is checked, the credential found, opened and
    cut down to the granted Disclosures.  Then a short write: the use is counted by one
    conditional UPDATE that changes the consent only while it still allows the use
    (``check.use_consent``) — so a revocation, pause or use that committed in between is
    seen, and no retrieval that starts after a revocation's commit succeeds — and
    ``access.allowed`` is recorded (``check.use_and_record``: on PostgreSQL one statement).
    On SQLite only the second holds the database's writer.

    ``type_name`` defaults to the consent's only scope; ``claims`` to every granted claim.
    Raises ``consent.access.Denied`` (recorded as ``access.denied``) for every refusal.
    """
    return retrieve_authenticating(
        rt, lambda _: lender, consent_id, type_name=type_name, claims=claims
    )


def retrieve_authenticating(
    rt: Runtime,
    authenticate: Callable[[Session], Lender],
    consent_id: str,
    *,
    type_name: str | None = None,
    claims: list[str] | None = None,
) -> RetrievedCredential:
    """:func:`retrieve` for a lender that ``authenticate`` establishes inside the read unit
    of work (the HTTP handler checks the access token and the client there, saving a
    transaction per request).  ``authenticate`` raises what it raises."""
    with transaction(rt.read_sessions) as session:
        lender = authenticate(session)
        found = _read(session, rt, lender, consent_id, type_name=type_name, claims=claims)
    return _finish(rt, lender, consent_id, found)


@dataclass(frozen=True, slots=True)
class _Found:
    # What the read unit of work found: the consent row, the type and claims decided, and
    # the opened credential.
    row: ConsentRecord
    chosen: str
    wanted: frozenset[str]
    text: str


# The consent, the vault's state and — only when the consent is the asking lender's — the
# borrower's credentials of the asked type (of every type when none is asked: the consent's
# only scope is chosen afterwards), newest first: one statement instead of three (consent,
# credentials, vault state), each of which costs PostgreSQL a round trip of its own.  One
# row per credential, or one with NULL credential columns when there is none; no row for
# an unknown consent.
_CONSENTS = cast("Table", ConsentRow.__table__)
_STATE = state_subquery()
_TYPE = bindparam("type_name", type_=String)
_HELD_LABELS = (
    "held_id",
    "held_sealed",
    "held_expires_at",
    "held_status_list_id",
    "held_status_index",
    "held_bits",
    "held_entry_byte",
)
_READ = HotQuery(
    select(
        *_CONSENTS.c,
        _STATE.c.erasure_generation,
        _STATE.c.kek_version,
        _STATE.c.destroyed_below,
        HELD.type_name.label("held_type"),
        *(column.label(name) for column, name in zip(HELD.held, _HELD_LABELS, strict=True)),
    )
    .select_from(
        join_held_credentials(
            _CONSENTS.outerjoin(_STATE, true()),
            and_(
                HELD.subject_token == _CONSENTS.c.principal_token,
                _CONSENTS.c.lender_client_id == bindparam("lender"),
                or_(HELD.type_name == _TYPE, _TYPE.is_(None)),
            ),
        )
    )
    .where(_CONSENTS.c.id == bindparam("consent_id"))
    .order_by(HELD.issued_at.desc()),
    ("consent_id", "lender", "type_name"),
)


def _read(
    session: Session,
    rt: Runtime,
    lender: Lender,
    consent_id: str,
    *,
    type_name: str | None,
    claims: list[str] | None,
) -> _Found:
    row: ConsentRecord | None = None
    try:
        now = rt.clock.now()
        rows = _READ.records(
            session, consent_id=consent_id, lender=lender.client_id, type_name=type_name
        )
        row = rows[0] if rows else None
        if row is None or row.lender_client_id != lender.client_id:
            raise ConsentNotFound()  # unknown, or another lender's: the same answer
        chosen, wanted = _decide_scope(row, type_name, claims)
        check_consent(row, chosen, wanted, now)
        held_rows = [
            held(
                (
                    r.held_id,
                    r.held_sealed,
                    r.held_expires_at,
                    r.held_status_list_id,
                    r.held_status_index,
                    r.held_bits,
                    r.held_entry_byte,
                )
            )
            for r in rows
            if r.held_id is not None and r.held_type == chosen
        ]
        credential = _shareable(held_rows, rt)
        first = rows[0]
        rt.vault.note_state(
            session, (first.erasure_generation, first.kek_version, first.destroyed_below)
        )
        text = rt.vault.open(
            session,
            credential.sealed,
            subject=row.principal_token,
            purpose="credentials",
            record=credential.id,
        ).decode("ascii")
    except ConsentError as e:
        raise denial(
            rt, lender, row, consent_id=consent_id, operation=OPERATION, reason=e.code
        ) from e
    return _Found(row, chosen, wanted, text)


def _finish(rt: Runtime, lender: Lender, consent_id: str, found: _Found) -> RetrievedCredential:
    parsed = SdJwt.parse(found.text)
    # A granted claim the credential does not carry (an optional one) is not disclosed.
    disclosed = sorted(found.wanted & set(disclosure_paths(parsed)))
    shared = present(parsed, disclose=disclosed)
    try:
        # The use counted only if the consent as it is now allows it (one conditional
        # UPDATE: a revocation, pause or use committed since the read is seen), and
        # ``access.allowed`` recorded with it.
        event_id = use_and_record(
            rt, lender, found.row, type_name=found.chosen, claims=found.wanted, operation=OPERATION
        )
    except ConsentError as e:
        raise denial(
            rt, lender, found.row, consent_id=consent_id, operation=OPERATION, reason=e.code
        ) from e
    mine = found.row
    # The hot path's one model construction (data_life is validated into a Period by it).
    return RetrievedCredential(
        consent_id=consent_id,
        type=found.chosen,
        credential=shared,
        disclosed=disclosed,
        mode=mine.mode,
        data_life={"unit": mine.data_life_unit, "value": mine.data_life_value},
        access_event_id=event_id,
    )


def named_consent(artefact: str) -> str | None:
    """The consent id a presented artefact names (its unverified ``consentId``), or
    ``None`` when it names none in the platform's id shape.  Only for attributing a
    refusal: nothing else may trust it.  Raises nothing."""
    try:
        consent_id = parse_compact(artefact, algs=ACCEPTED_ALGS).payload.get("consentId")
    except (CommonsError, ValueError, AttributeError):
        return None
    if isinstance(consent_id, str) and consent_id.startswith("cns_") and is_valid_id(consent_id):
        return consent_id
    return None


def consent_of_artefact(session: Session, rt: Runtime, lender: Lender, artefact: str) -> str:
    """The consent id of a presented artefact, if it is exactly the one the platform signed
    for this consent; raises ``Denied`` (``consent.artefact_invalid``) otherwise."""
    consent_id, row = "unknown", None
    try:
        jws = parse_compact(artefact, algs=ACCEPTED_ALGS)
        header, payload = jws.header, jws.payload
        consent_id = str(payload.get("consentId", "unknown"))[:64]
        keys = {v.kid: v.public_key for v in consent_key_versions(session, rt)}
        key = keys.get(str(header.get("kid")))
        if key is None:
            raise ConsentArtefactInvalid()
        verify_compact(artefact, key, typ=ARTEFACT_TYP, algs=ACCEPTED_ALGS)
        row = session.get(ConsentRow, consent_id)
        if row is None or row.artefact != artefact:
            raise ConsentArtefactInvalid()
    except (CommonsError, ValueError) as e:
        if row is None and consent_id != "unknown":
            # An artefact that names one of a borrower's consents is an attempt on their
            # data even when it does not verify (forged, re-pointed): the named consent's
            # borrower is the denial's subject, so it shows in their history.
            row = session.get(ConsentRow, consent_id)
        reason = ConsentArtefactInvalid.code
        raise denial(
            rt, lender, row, consent_id=consent_id, operation=OPERATION, reason=reason
        ) from e
    return consent_id


def _own_claims(session: Session, rt: Runtime, text: str) -> JsonObject:
    # The processed payload of one of our own credentials (issuer key from our key store).
    keys: dict[str, PublicKey] = {v.kid: v.public_key for v in issuer_key_versions(session, rt)}

    def resolve(header: Mapping[str, object], payload: Mapping[str, object]) -> PublicKey:
        kid = header.get("kid")
        # Ours under the current public URL or an earlier one (issuer/identifiers.py).
        if not is_own_issuer(session, rt, payload.get("iss")) or kid not in keys:
            raise NotFoundError("not one of this platform's credentials")
        return keys[str(kid)]

    return verify_sd_jwt(
        text,
        issuer_key_resolver=resolve,
        require_key_binding=False,
        now=int(rt.clock.now().timestamp()),
    ).payload


def set_discoverable(
    session: Session, rt: Runtime, principal: Principal, token: str, *, enabled: bool
) -> DiscoverySetting:
    """Opt in to (or out of) discovery with the attributes of the newest valid Credit
    Readiness Credential.  Raises :class:`NotFoundError` when there is none."""
    authorise(session, principal, token, Permission.MANAGE_CONSENTS, rt.clock.now())
    existing = session.get(DiscoveryProfileRow, token)
    if not enabled:
        if existing is not None:
            session.delete(existing)
        return DiscoverySetting(discoverable=False)
    credential = _newest_valid(session, token, CREDIT_READINESS.name, rt)
    if credential is None:
        raise NotFoundError("no valid credit readiness credential to publish")
    text = rt.vault.open(
        session,
        bytes(credential.sealed),
        subject=token,
        purpose="credentials",
        record=credential.id,
    ).decode("ascii")
    claims = _own_claims(session, rt, text)
    values = {
        "credit_tier": str(claims["credit_tier"]),
        "income_bracket": str(claims["income_bracket"]),
        "debt_ratio_bracket": str(claims["debt_ratio_bracket"]),
    }
    if existing is None:
        session.add(
            DiscoveryProfileRow(principal_token=token, opted_in_at=rt.clock.now(), **values)
        )
    else:
        for key, value in values.items():
            setattr(existing, key, value)
    return DiscoverySetting(discoverable=True, **values)


def discover(
    session: Session,
    rt: Runtime,
    lender: Lender,
    *,
    credit_tier: str | None = None,
    limit: int = 50,
) -> list[DiscoveredBorrower]:
    """Opted-in borrowers' public attributes, each with a lender-bound reference."""
    query = select(DiscoveryProfileRow)
    if credit_tier is not None:
        query = query.where(DiscoveryProfileRow.credit_tier == credit_tier)
    rows = session.scalars(query.order_by(DiscoveryProfileRow.opted_in_at).limit(limit))
    return [
        DiscoveredBorrower(
            borrower_ref=borrower_ref(rt, lender.client_id, r.principal_token),
            credit_tier=r.credit_tier,
            income_bracket=r.income_bracket,
            debt_ratio_bracket=r.debt_ratio_bracket,
        )
        for r in rows
    ]
