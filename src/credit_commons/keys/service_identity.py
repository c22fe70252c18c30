"""A service instance's own signing key outside the platform (a full node, a witness):
:class:`ServiceIdentity`, kept in a file of its own, signing the instance's service tokens
(keys/service_tokens.py) and rotating its key from the service's side."""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credit_commons.core.clock import Clock, SystemClock
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, ValidationError
from credit_commons.core.files import create_private, path_error, write_private
from credit_commons.formats.jws import sign_compact
from credit_commons.keys.algorithms import PrivateKey, PublicKey
from credit_commons.keys.jwk import (
    private_key_from_jwk,
    private_key_to_jwk,
    public_key_to_jwk,
    thumbprint,
)
from credit_commons.keys.service_tokens import (
    KEY_PROOF_TYP,
    MAX_TTL,
    SERVICE_TYP,
    check_instance_name,
)

__all__ = ["ServiceIdentity"]


def _load_key(entry: Any, what: str) -> tuple[PrivateKey, datetime]:
    try:
        key = private_key_from_jwk(entry["jwk"])
        created = datetime.fromisoformat(entry["created_at"])
    except (KeyError, TypeError, ValueError, CommonsError) as e:
        raise ValidationError(f"the service key file's {what} key is malformed") from e
    return key, created


class ServiceIdentity:
    """A service instance's own signing key, outside the platform (a full node, a witness):
    kept in ``path`` (mode 0600, JSON: the service, the instance name, the key that signs and,
    during a rotation, its successor), never sent anywhere but its public half.

    Tokens are signed and reused as :class:`ServiceTokenSource`'s are.  When a token is
    renewed the file is read again if it changed, so a rotation another process made
    (``commons node service-key rotate``) is picked up; a token in hand stays good for the
    overlap window.  Thread-safe within a process."""

    def __init__(self, path: Path, *, clock: Clock | None = None, margin: int = 60) -> None:
        self.path = path
        self._clock = clock or SystemClock()
        self.margin = margin
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, tuple[str, ...], int], tuple[str, float]] = {}
        self._stamp: tuple[int, int] | None = None
        self.service, self.name = "", ""
        self._key: PrivateKey | None = None
        self.created_at = datetime.min.replace(tzinfo=UTC)
        self._pending: tuple[PrivateKey, datetime] | None = None
        self._read()

    @classmethod
    def create(
        cls, path: Path, *, service: str, name: str, clock: Clock | None = None
    ) -> ServiceIdentity:
        """A new identity for the instance ``name`` of ``service`` in the new file ``path``
        (raises ``CommonsError`` if it exists)."""
        check_instance_name(service, name)
        now = (clock or SystemClock()).now()
        document = {
            "service": service,
            "name": name,
            "key": {
                "jwk": private_key_to_jwk(PrivateKey.generate()),
                "created_at": now.isoformat(),
            },
            "pending": None,
        }
        try:
            create_private(path, json.dumps(document, indent=2).encode())
        except OSError as e:
            raise path_error(e, "write") from e
        return cls(path, clock=clock)

    @classmethod
    def open_or_create(
        cls, path: Path, *, service: str, name: str, clock: Clock | None = None
    ) -> ServiceIdentity:
        """The identity in ``path``, made on first use; raises ``ValidationError`` if the file
        holds another instance."""
        if not path.exists():
            return cls.create(path, service=service, name=name, clock=clock)
        found = cls(path, clock=clock)
        if (found.service, found.name) != (service, name):
            raise ValidationError(
                f"{path} holds the key of {found.service} {found.name}, not {service} {name}"
            )
        return found

    def _read(self) -> None:
        try:
            stat = self.path.stat()
            document = json.loads(self.path.read_bytes())
        except OSError as e:
            raise path_error(e, "read") from e
        except ValueError as e:
            raise ValidationError("the service key file is not JSON") from e
        if not isinstance(document, dict):
            raise ValidationError("the service key file is not a JSON object")
        service, name = document.get("service"), document.get("name")
        if not isinstance(service, str) or not isinstance(name, str):
            raise ValidationError("the service key file names no service and instance")
        check_instance_name(service, name)
        self._key, self.created_at = _load_key(document.get("key"), "signing")
        pending = document.get("pending")
        self._pending = None if pending is None else _load_key(pending, "pending")
        self.service, self.name = service, name
        self._stamp = (stat.st_mtime_ns, stat.st_size)
        self._tokens.clear()

    def _write(self) -> None:
        assert self._key is not None
        document = {
            "service": self.service,
            "name": self.name,
            "key": {
                "jwk": private_key_to_jwk(self._key),
                "created_at": self.created_at.isoformat(),
            },
            "pending": None
            if self._pending is None
            else {
                "jwk": private_key_to_jwk(self._pending[0]),
                "created_at": self._pending[1].isoformat(),
            },
        }
        try:
            write_private(self.path, json.dumps(document, indent=2).encode())
            stat = self.path.stat()
        except OSError as e:
            raise path_error(e, "write") from e
        self._stamp = (stat.st_mtime_ns, stat.st_size)

    def _refresh(self) -> None:
        try:
            stat = os.stat(self.path)
        except OSError as e:
            raise path_error(e, "read") from e
        if (stat.st_mtime_ns, stat.st_size) != self._stamp:
            self._read()

    @property
    def kid(self) -> str:
        """The signing key's id (its RFC 7638 thumbprint, as the platform names it)."""
        assert self._key is not None
        return thumbprint(self._key.public_key)

    @property
    def public_key(self) -> PublicKey:
        """The signing key's public half."""
        assert self._key is not None
        return self._key.public_key

    def public_jwk(self) -> dict[str, str]:
        """The signing key's public JWK, to register with the platform."""
        assert self._key is not None
        return public_key_to_jwk(self._key.public_key, kid=self.kid)

    def token(self, *, audience: str, scopes: Sequence[str], ttl: int) -> str:
        """A token for ``scopes`` at ``audience`` with more than ``margin`` seconds left
        (signed now, or one signed earlier by the same key)."""
        if not 1 < ttl <= MAX_TTL:
            raise ValueError(f"a service token lives 2..{MAX_TTL} seconds")
        margin = min(self.margin, ttl // 2)
        wanted = tuple(sorted(set(scopes)))
        with self._lock:
            now = self._clock.now().timestamp()
            cached = self._tokens.get((audience, wanted, ttl))
            if cached is not None and now < cached[1]:
                return cached[0]
            self._refresh()
            assert self._key is not None
            moment = int(now)
            payload: JsonObject = {
                "iss": self.service,
                "sub": self.name,
                "aud": audience,
                "scope": " ".join(wanted),
                "iat": moment,
                "exp": moment + ttl,
                "jti": secrets.token_urlsafe(16),
            }
            token = sign_compact({"typ": SERVICE_TYP, "kid": self.kid}, payload, self._key)
            self._tokens[(audience, wanted, ttl)] = (token, now + ttl - margin)
            return token

    def rotation_proof(self, *, audience: str) -> str:
        """The proof for :func:`rotate_registered_key`: a successor key is made and kept in
        the file (the same one again if an earlier rotation did not finish), then the proof
        is signed by it.  Call :meth:`commit_rotation` once the platform has registered it."""
        with self._lock:
            self._refresh()
            if self._pending is None:
                self._pending = (PrivateKey.generate(), self._clock.now())
                self._write()
            key = self._pending[0]
            moment = int(self._clock.now().timestamp())
            payload: JsonObject = {
                "iss": self.service,
                "sub": self.name,
                "aud": audience,
                "iat": moment,
                "exp": moment + 120,
                "jti": secrets.token_urlsafe(16),
            }
            header = {"typ": KEY_PROOF_TYP, "jwk": public_key_to_jwk(key.public_key)}
            return sign_compact(header, payload, key)

    def commit_rotation(self) -> str:
        """The successor becomes the signing key (the old private key is forgotten); its
        kid.  Raises ``ValidationError`` when no rotation is under way."""
        with self._lock:
            self._refresh()
            if self._pending is None:
                raise ValidationError("no key rotation is under way")
            self._key, self.created_at = self._pending
            self._pending = None
            self._write()
            self._tokens.clear()
            return thumbprint(self._key.public_key)
