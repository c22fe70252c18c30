"""Replacing the DID in an identity's profile: the holder's key rotation (docs/wallet.md).

The request is authenticated by the previous key (consent/holder_auth.py) and carries the
new key's own signature; this module only reseals the profile with the new DID and records
``identity.holder_key_changed`` (no details: a DID is the holder's identifier, and the
event's digest is public).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from credit_commons.core.errors import NotFoundError
from credit_commons.events import EventDetails, record_event
from credit_commons.identity import service as identity_service
from credit_commons.identity.auth import Principal, actor_of, subject_of
from credit_commons.identity.models import IdentityRow
from credit_commons.identity.schemas import Profile
from credit_commons.runtime import Runtime

__all__ = ["HolderKeyChanged", "replace_did", "rotation_message"]


class HolderKeyChanged(EventDetails, event_type="identity.holder_key_changed"):
    """The DID in the identity's profile was replaced, at the previous key's request."""


def rotation_message(token: str, did: str) -> bytes:
    """What the new key signs: it consents to speak for identity ``token`` as ``did``."""
    return f"credit-commons holder key\n{token}\n{did}\n".encode()


def replace_did(session: Session, rt: Runtime, token: str, did: str) -> str:
    """Reseal identity ``token``'s profile with ``did``; returns the event id.

    Raises :class:`NotFoundError` for an unknown identity and ``pydantic.ValidationError``
    for a DID the profile does not accept.
    """
    row = session.get(IdentityRow, token)
    if row is None:
        raise NotFoundError("no such identity")
    owner = Principal(token, "identity")
    profile = Profile.model_validate(
        {
            **identity_service.get_profile(session, rt, owner, token).model_dump(
                exclude_unset=True
            ),
            "did": did,
        }
    )
    now = rt.clock.now()
    row.profile_sealed = rt.vault.seal(
        session,
        profile.model_dump_json(exclude_none=True).encode(),
        subject=token,
        purpose=identity_service.PROFILE,
        record=f"identity:{token}:{identity_service.PROFILE}",
    )
    row.updated_at = now
    return record_event(
        session,
        HolderKeyChanged(),
        actor=actor_of(rt, owner),
        at=now,
        subject=subject_of(rt, token),
    ).id
