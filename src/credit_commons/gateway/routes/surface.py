"""``GET /v1/routes``: the route registry this deployment serves, signed by its own key
(``gateway/surface_signing.py``), and ``GET /v1/routes/jwks``: the key.  Public: the
registry names routes and what they ask of callers, nothing about anyone."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from credit_commons.gateway.deps import RuntimeDep, SessionDep
from credit_commons.gateway.openapi import JwkSet, answers
from credit_commons.gateway.surface import surface_state
from credit_commons.gateway.surface_signing import sign_registry, surface_keys

__all__ = ["SignedRegistry", "router"]

router = APIRouter(prefix="/v1/routes", tags=["operations"])


class SignedRegistry(BaseModel):
    """The route registry's SHA-256 and the deployment's compact JWS over it (its payload
    holds the registry document)."""

    model_config = ConfigDict(extra="forbid")
    sha256: str = Field(description="SHA-256 (hex) of the registry's RFC 8785 JSON")
    jws: str = Field(description="compact JWS, typ surface-registry+jwt")


@router.get(
    "",
    summary="The route registry, signed by this deployment.",
    responses=answers(SignedRegistry),
)
def signed_registry(request: Request, session: SessionDep, runtime: RuntimeDep) -> SignedRegistry:
    state = surface_state(request.app)
    if state.signed is None:  # signed on first use, then kept for the process's life
        state.signed = sign_registry(session, runtime, state.registry)
    return SignedRegistry(sha256=state.registry.sha256, jws=state.signed)


@router.get("/jwks", summary="Keys that sign the route registry.", responses=answers(JwkSet))
def registry_keys(session: SessionDep, runtime: RuntimeDep) -> JwkSet:
    versions = sorted(surface_keys(session, runtime), key=lambda v: v.version, reverse=True)
    return JwkSet(keys=[dict(version.jwk()) for version in versions])
