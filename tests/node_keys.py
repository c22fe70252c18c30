"""A full node's own service key for tests: made in a file and registered on the platform by
its operator, as `commons service-token register --service node` does (keys/service_identity.py,
keys/service_tokens.py)."""

from __future__ import annotations

from pathlib import Path

from credit_commons.core.clock import Clock
from credit_commons.core.db import transaction
from credit_commons.keys import ServiceIdentity, register_service_key
from credit_commons.runtime import Runtime


def registered_node(
    rt: Runtime, path: Path, name: str, *, clock: Clock | None = None
) -> ServiceIdentity:
    """The node ``name``'s new identity in the file ``path``, its public key registered on
    ``rt``'s platform."""
    identity = ServiceIdentity.create(path, service="node", name=name, clock=clock)
    with transaction(rt.sessions) as session:
        register_service_key(
            session,
            rt,
            service="node",
            name=name,
            public_key=identity.public_key,
            actor=rt.operator_actor("operator"),
        )
    return identity
