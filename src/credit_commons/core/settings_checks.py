"""What the settings module refuses and how it names it: :class:`Violation` (one setting
production refuses, with its hint), :func:`production_violations` (every one of them in a
settings object), :func:`refuse` (one :class:`ConfigurationError` naming every violation),
and :func:`url_for_address` (the URL of a listening address).

Kept beside ``settings.py`` (which re-exports them) so that module stays the settings
themselves.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from credit_commons.core.errors import ConfigurationError

if TYPE_CHECKING:
    from credit_commons.core.settings import Settings

__all__ = ["Violation", "production_violations", "refuse", "url_for_address"]


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


def production_violations(settings: Settings) -> list[Violation]:
    """Every setting of ``settings`` production refuses (cf. seed 002 §15), each with what
    to set; none outside production (:meth:`Settings.production_violations`)."""
    if not settings.is_production:
        return []
    found: list[Violation] = []
    if settings.resolved_database_url.startswith("sqlite"):
        found.append(
            Violation(
                "production refuses SQLite",
                "set COMMONS_DATABASE_URL to a PostgreSQL URL, "
                "e.g. postgresql+psycopg://commons@db:5432/commons",
            )
        )
    if settings.pseudonym_pepper is None:
        found.append(
            Violation(
                "production needs a pseudonymisation pepper",
                "set COMMONS_PSEUDONYM_PEPPER to 32+ random bytes, base64url "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))")',
            )
        )
    flags = settings.insecure_flags()
    if flags:
        found.append(
            Violation(
                f"production refuses insecure flags: {', '.join(flags)}",
                "unset " + " and ".join(flags),
            )
        )
    if settings.kms == "pkcs11" and not (
        settings.pkcs11_lib and settings.pkcs11_token and settings.pkcs11_pin
    ):
        found.append(
            Violation(
                "COMMONS_KMS=pkcs11 needs the module, token and PIN",
                "set COMMONS_PKCS11_LIB, COMMONS_PKCS11_TOKEN and COMMONS_PKCS11_PIN",
            )
        )
    if settings.surface_registry_sha256 is None:
        # Seed 002 §15: the route registry fails closed against a pin held outside the
        # package (the package's own pin ships beside the file it pins).
        found.append(
            Violation(
                "production needs the hash of the route registry you audited",
                "review the release's routes (`commons routes show`: its last line is the "
                "hash) and set COMMONS_SURFACE_REGISTRY_SHA256 to that hash",
            )
        )
    # Parsed, not prefix-matched: "HTTP://x" and "ftp://x" are not https, and the scheme
    # is case-insensitive (RFC 3986 §3.1).
    parts = urlsplit(settings.public_url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        found.append(
            Violation(
                "production needs an https public URL"
                + (" (none is set)" if settings.public_url_is_derived else ""),
                "set COMMONS_PUBLIC_URL to the https:// address clients use",
            )
        )
    return found
