"""What the settings module refuses and how it names it: :class:`Violation` (one setting
production refuses, with its hint), :func:`refuse` (one :class:`ConfigurationError` naming
every violation), and :func:`url_for_address` (the URL of a listening address).

Kept beside ``settings.py`` (which re-exports them) so that module stays the settings
themselves.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from credit_commons.core.errors import ConfigurationError

__all__ = ["Violation", "refuse", "url_for_address"]


def url_for_address(host: str, port: int) -> str:
    """The ``http`` URL of a listening address; a wildcard address becomes loopback.

    A wildcard (``0.0.0.0``, ``::``) is where a server listens, not an address a client can
    use; loopback is the one address certain to reach it from the same machine.
    """
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"http://{host}:{port}"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    text = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{text}:{port}"


@dataclass(frozen=True)
class Violation:
    """One setting production refuses, and what to set instead."""

    problem: str
    hint: str


def refuse(violations: list[Violation]) -> None:
    """Raise one :class:`ConfigurationError` naming every violation, if there is any."""
    if not violations:
        return
    if len(violations) == 1:
        only = violations[0]
        raise ConfigurationError(
            only.problem,
            hint=only.hint,
            extra={"violations": [{"problem": only.problem, "hint": only.hint}]},
        )
    raise ConfigurationError(
        f"production refuses {len(violations)} settings: "
        + "; ".join(f"({n}) {v.problem}" for n, v in enumerate(violations, 1)),
        hint="; ".join(f"({n}) {v.hint}" for n, v in enumerate(violations, 1)),
        extra={"violations": [{"problem": v.problem, "hint": v.hint} for v in violations]},
    )
