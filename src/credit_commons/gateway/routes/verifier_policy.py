"""HTTP API of the verifier's trust bundle and policies.

* ``GET /.well-known/trust-bundle`` — this platform's signed trust bundle
  (``application/trust-bundle+jwt``: the media type its ``typ`` names, RFC 7515 §4.1.9;
  docs/verifier.md "Trust bundle");
* ``/v1/admin/trust-bundle`` — the bundle's entries and signing key, entries with trust
  marks, types or an X.509 anchor, and other platforms' bundles pinned by key;
* ``/v1/verifier/policies`` — verifiers' policies, their versions and floors
  (administrators; docs/verifier.md "Policies and profiles").
"""

from __future__ import annotations

from typing import Annotated, Self

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from credit_commons.core.encoding import JsonObject
from credit_commons.gateway.deps import PrincipalDep, ReadPrincipalDep, RuntimeDep, SessionDep
from credit_commons.gateway.openapi import answers, media
from credit_commons.verifier import policy_service, trust, trust_pins, trust_registry
from credit_commons.verifier.schemas import (
    PolicyView,
    TrustBundleView,
    TrustedIssuerView,
    TrustPinRefresh,
    TrustPinView,
)
from credit_commons.verifier.trust_bundle import TRUST_BUNDLE_MEDIA_TYPE, TRUST_BUNDLE_TYP

__all__ = ["policies_router", "trust_admin_router", "well_known_router"]

well_known_router = APIRouter(tags=["trust bundle"])
trust_admin_router = APIRouter(prefix="/v1/admin", tags=["trust bundle"])
policies_router = APIRouter(prefix="/v1/verifier/policies", tags=["verifier policies"])

_BUNDLE_JWS = f"a compact JWS, typ {TRUST_BUNDLE_TYP}"
_Mark = Annotated[str, Field(min_length=1, max_length=64)]
_Type = Annotated[str, Field(min_length=1, max_length=255)]
_Owner = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
_PolicyId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


@well_known_router.get(
    "/.well-known/trust-bundle",
    summary="This platform's signed trust bundle.",
    response_class=Response,
    responses=media(
        {
            TRUST_BUNDLE_MEDIA_TYPE: {
                "type": "string",
                "description": f"a JWS, typ {TRUST_BUNDLE_TYP}",
            }
        }
    ),
)
def trust_bundle(session: SessionDep, runtime: RuntimeDep) -> Response:
    signed = trust_registry.published_bundle(session, runtime)
    headers = {"Cache-Control": "public, max-age=300", "ETag": f'"trust-bundle-{signed.version}"'}
    return Response(signed.token, media_type=TRUST_BUNDLE_MEDIA_TYPE, headers=headers)


@trust_admin_router.get(
    "/trust-bundle",
    summary="The trust bundle's newest version, entries and key (administrators).",
    responses=answers(TrustBundleView, 401, 404),
)
def bundle_view(
    session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> TrustBundleView:
    return trust_registry.bundle_view(session, runtime, principal)


class TrustEntryBody(BaseModel):
    """A trust-list entry: an issuer identifier, or an X.509 CA certificate (PEM), with
    trust marks and the credential types it may issue (none: any)."""

    model_config = ConfigDict(extra="forbid")
    issuer: Annotated[str, Field(min_length=8, max_length=512)] | None = None
    anchor_pem: Annotated[str, Field(min_length=64, max_length=16_384)] | None = None
    marks: Annotated[list[_Mark], Field(max_length=64)] = []
    types: Annotated[list[_Type], Field(max_length=64)] = []

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        if (self.issuer is None) == (self.anchor_pem is None):
            raise ValueError("give exactly one of issuer and anchor_pem")
        return self


@trust_admin_router.post(
    "/trust-bundle/entries",
    status_code=201,
    summary="Trust an issuer or X.509 anchor, with marks and types (administrators).",
    responses=answers(TrustedIssuerView, 401, 404, 409, 422, status=201),
)
def add_entry(
    body: TrustEntryBody, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> TrustedIssuerView:
    if body.anchor_pem is not None:
        return trust.add_trusted_anchor(
            session,
            runtime,
            principal,
            body.anchor_pem.encode("ascii", "replace"),
            marks=body.marks,
            types=body.types,
        )
    return trust.add_trusted_issuer(
        session, runtime, principal, body.issuer or "", marks=body.marks, types=body.types
    )


class PinBody(BaseModel):
    """Another platform's bundle to trust: its URL and the key it is signed with (a
    ``did:key`` or a public JWK as JSON text)."""

    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, Field(min_length=8, max_length=512)]
    key: Annotated[str, Field(min_length=8, max_length=2048)]


@trust_admin_router.get(
    "/trust-pins",
    summary="Other platforms' bundles pinned by key (administrators).",
    responses=answers(list[TrustPinView], 401, 404),
)
def list_pins(
    session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> list[TrustPinView]:
    return trust_pins.list_pins(session, runtime, principal)


@trust_admin_router.post(
    "/trust-pins",
    status_code=201,
    summary="Pin another platform's bundle by key; fetched and verified now (administrators).",
    responses=answers(TrustPinView, 400, 401, 404, 409, 422, 503, status=201),
)
def pin(body: PinBody, runtime: RuntimeDep, principal: ReadPrincipalDep) -> TrustPinView:
    # No read-write unit of work around the fetch: the pin opens its own.
    return trust_pins.pin_bundle(runtime, principal, body.url, body.key)


@trust_admin_router.post(
    "/trust-pins/refresh",
    summary="Fetch every pinned bundle again (administrators).",
    responses=answers(list[TrustPinRefresh], 401, 404),
)
def refresh_pins(runtime: RuntimeDep, principal: ReadPrincipalDep) -> list[TrustPinRefresh]:
    # No read-write unit of work around the fetches: the refresh opens its own.
    return trust_pins.refresh_pins(runtime, principal)


@trust_admin_router.delete(
    "/trust-pins/{pin_id}",
    summary="Stop trusting a pinned bundle (administrators).",
    responses=answers(TrustPinView, 401, 404, 422),
)
def unpin(
    pin_id: Annotated[str, Path(pattern=r"^pin_[0-9A-Z]{26}$")],
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> TrustPinView:
    return trust_pins.unpin_bundle(session, runtime, principal, pin_id)


class NewPolicy(BaseModel):
    """A verifier's new policy: the verifier, the policy document and its profile."""

    model_config = ConfigDict(extra="forbid")
    owner: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    profile: Annotated[str, Field(max_length=32)] = "default"
    document: JsonObject


class NewVersion(BaseModel):
    """A policy's next version (the profile stays unless given)."""

    model_config = ConfigDict(extra="forbid")
    profile: Annotated[str, Field(max_length=32)] | None = None
    document: JsonObject


class Floor(BaseModel):
    """A policy's new version floor."""

    model_config = ConfigDict(extra="forbid")
    floor: Annotated[int, Field(ge=1, le=2**31 - 1)]


@policies_router.post(
    "",
    status_code=201,
    summary="Store a verifier's new policy (administrators).",
    responses=answers(PolicyView, 401, 404, 409, 422, status=201),
)
def create_policy(
    body: NewPolicy, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> PolicyView:
    return policy_service.create_policy(
        session, runtime, principal, owner=body.owner, document=body.document, profile=body.profile
    )


@policies_router.get(
    "",
    summary="The latest version of every policy (administrators).",
    responses=answers(list[PolicyView], 401, 404, 422),
)
def list_policies(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    owner: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = None,
) -> list[PolicyView]:
    return policy_service.list_policies(session, runtime, principal, owner=owner)


@policies_router.get(
    "/{owner}/{policy_id}",
    summary="A policy version, the latest unless asked (administrators).",
    responses=answers(PolicyView, 401, 404, 422),
)
def get_policy(
    owner: _Owner,
    policy_id: _PolicyId,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> PolicyView:
    return policy_service.get_policy(
        session, runtime, principal, owner=owner, policy_id=policy_id, version=version
    )


@policies_router.post(
    "/{owner}/{policy_id}/versions",
    status_code=201,
    summary="Add a version to a policy (administrators).",
    responses=answers(PolicyView, 401, 404, 409, 422, status=201),
)
def add_version(
    owner: _Owner,
    policy_id: _PolicyId,
    body: NewVersion,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> PolicyView:
    return policy_service.add_policy_version(
        session,
        runtime,
        principal,
        owner=owner,
        policy_id=policy_id,
        document=body.document,
        profile=body.profile,
    )


@policies_router.put(
    "/{owner}/{policy_id}/floor",
    summary="Raise a policy's version floor (administrators).",
    responses=answers(PolicyView, 401, 404, 409, 422),
)
def set_floor(
    owner: _Owner,
    policy_id: _PolicyId,
    body: Floor,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> PolicyView:
    return policy_service.set_policy_floor(
        session, runtime, principal, owner=owner, policy_id=policy_id, floor=body.floor
    )
