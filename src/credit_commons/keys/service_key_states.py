"""Every version of every service key and what it may do now: the listing ``commons
service-token keys`` prints and ``GET /v1/internal/service-keys`` answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from credit_commons.keys import service as key_service
from credit_commons.keys.errors import KeyNotFound
from credit_commons.keys.service_tokens import (
    SERVICES,
    live_versions,
    registered_instances,
    registered_keys,
    service_key_name,
)
from credit_commons.keys.store import KeyVersion

__all__ = ["ServiceKeyState", "service_key_states"]


@dataclass(frozen=True, slots=True)
class ServiceKeyState:
    """One version of a service key: the service, the instance (``name``: the service id
    itself for a key in the platform's key store), and whether it is ``signing``,
    ``verifying`` (until ``retires_at``: its successor's making plus the overlap window) or
    ``retired``."""

    service: str
    name: str
    version: int
    kid: str
    created_at: datetime
    state: str
    retires_at: datetime | None


def _states(
    service: str, name: str, versions: Sequence[KeyVersion], now: datetime, overlap: int
) -> list[ServiceKeyState]:
    ordered = sorted(versions, key=lambda v: v.version)
    live = {v.kid for v in live_versions(ordered, now, overlap)}
    out = []
    for v, successor in zip(ordered, [*ordered[1:], None], strict=True):
        retires = None if successor is None else successor.created_at + timedelta(seconds=overlap)
        state = "signing" if successor is None else "verifying" if v.kid in live else "retired"
        out.append(ServiceKeyState(service, name, v.version, v.kid, v.created_at, state, retires))
    return out


def service_key_states(
    session: Session, ctx: key_service.PlatformKeyContext, overlap: int
) -> list[ServiceKeyState]:
    """Every version of the platform's own service keys (by service), then of each
    registered instance's (by service and name), oldest first; a version verifies by the
    rule :func:`accepted_keys` applies, for an ``overlap`` of so many seconds."""
    now = ctx.clock.now()
    found: list[ServiceKeyState] = []
    for service in sorted(SERVICES):
        try:
            versions = ctx.key_store.versions(session, service_key_name(service))
        except KeyNotFound:
            continue
        found += _states(service, service, versions, now, overlap)
    for service, name in registered_instances(session):
        found += _states(service, name, registered_keys(session, service, name), now, overlap)
    return found
