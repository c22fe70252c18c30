"""Keyed pseudonyms for people and organisations.

Identifiers such as Aadhaar, PAN and phone numbers have so little entropy that a plain
SHA-256 of them is reversed by enumeration in hours.  A pseudonym is therefore a versioned
HMAC-SHA-256 under a secret pepper, with a domain label so the same value gives unrelated
pseudonyms in different roles: ``p1:`` + base64url(HMAC(pepper, domain || 0x00 || value)).
The version prefix lets a later pepper (``p2:``) coexist with the old one during migration.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Annotated

from pydantic import StringConstraints

from credit_commons.core.encoding import b64url_encode
from credit_commons.core.errors import ConfigurationError, ValidationError

__all__ = ["PSEUDONYM_PATTERN", "Pseudonym", "Pseudonymizer"]

PSEUDONYM_PATTERN = r"^p[1-9][0-9]*:[A-Za-z0-9_-]{43}$"
_DOMAIN = re.compile(r"[a-z][a-z0-9_.-]{0,31}")

Pseudonym = Annotated[str, StringConstraints(pattern=PSEUDONYM_PATTERN)]
"""A pydantic-validated pseudonym string (``p1:…``)."""


class Pseudonymizer:
    """Turns a (domain, value) pair into a stable keyed pseudonym."""

    def __init__(self, pepper: bytes, version: int = 1) -> None:
        if len(pepper) < 32:
            raise ConfigurationError(
                "the pseudonymisation pepper is shorter than 32 bytes",
                hint="set COMMONS_PSEUDONYM_PEPPER to at least 32 random bytes, base64url",
            )
        if version < 1:
            raise ConfigurationError("pseudonym version must be >= 1")
        self._pepper = pepper
        self.version = version

    def __repr__(self) -> str:  # never show the pepper
        return f"Pseudonymizer(version={self.version})"

    def fingerprint(self) -> str:
        """A public fingerprint of the pepper, to detect that it changed between runs."""
        mac = hmac.new(self._pepper, b"commons pepper fingerprint", hashlib.sha256).digest()
        return b64url_encode(mac[:16])

    def pseudonym(self, domain: str, value: str) -> str:
        """The pseudonym of ``value`` within ``domain`` (e.g. ``"identity"``, ``"lender"``).

        Raises :class:`ValidationError` for a malformed domain, or an empty value or one
        that is not Unicode text (a lone surrogate, which a JSON escape can carry in).
        """
        if not _DOMAIN.fullmatch(domain):
            raise ValidationError("pseudonym domain must be a short lower-case label")
        if not value:
            raise ValidationError("cannot pseudonymise an empty value")
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValidationError("cannot pseudonymise a value that is not Unicode text") from e
        message = domain.encode() + b"\x00" + encoded
        mac = hmac.new(self._pepper, message, hashlib.sha256).digest()
        return f"p{self.version}:{b64url_encode(mac)}"
