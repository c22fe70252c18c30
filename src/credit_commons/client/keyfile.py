"""The lender's client key: one Ed25519 or P-256 private key in a file only its owner reads.

The file is JSON, ``{"format": "credit-commons-lender-key/v1", "kid": …, "jwk": …}``, where
``jwk`` is the private JWK (RFC 7517) and ``kid`` its RFC 7638 thumbprint — the name the
platform gives a registered key without ``kid``, and the ``kid`` every client assertion
carries.  It is created with mode 0600 and never overwritten; a file that others may read is
refused when loaded (as ``ssh`` refuses such a key).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from credit_commons.client.errors import KeyFileExists, KeyFileInvalid, KeyFileUnprotected
from credit_commons.core.errors import CommonsError
from credit_commons.core.files import create_private, path_error
from credit_commons.keys import (
    KeyType,
    PrivateKey,
    private_key_from_jwk,
    private_key_to_jwk,
    public_key_to_jwk,
    thumbprint,
)

__all__ = ["KEY_FORMAT", "LenderKey"]

KEY_FORMAT = "credit-commons-lender-key/v1"


@dataclass(frozen=True)
class LenderKey:
    """A lender's private signing key and its ``kid`` (never printed: see ``__repr__``)."""

    key: PrivateKey
    kid: str

    def __repr__(self) -> str:
        return f"LenderKey(kid={self.kid!r}, type={self.key.key_type.value})"

    @classmethod
    def generate(cls, key_type: KeyType = KeyType.ED25519) -> LenderKey:
        """A new key; its ``kid`` is its RFC 7638 thumbprint."""
        key = PrivateKey.generate(key_type)
        return cls(key, thumbprint(key.public_key))

    @classmethod
    def create(cls, path: Path, key_type: KeyType = KeyType.ED25519) -> LenderKey:
        """Generate a key and store it at ``path`` with mode 0600.

        Raises :class:`KeyFileExists` when ``path`` exists (it is never replaced) and a
        ``file.*`` error when it cannot be written.
        """
        made = cls.generate(key_type)
        document = {"format": KEY_FORMAT, "kid": made.kid, "jwk": private_key_to_jwk(made.key)}
        try:
            create_private(path, json.dumps(document, indent=2).encode() + b"\n")
        except FileExistsError as e:
            raise KeyFileExists(
                f"{path} exists; a client key is never overwritten",
                hint="choose another --key-file, or remove the old key deliberately",
            ) from e
        except OSError as e:
            raise path_error(e, "write") from e
        return made

    @classmethod
    def load(cls, path: Path) -> LenderKey:
        """The key stored at ``path``.

        Raises :class:`KeyFileUnprotected` when group or others may read or write it,
        :class:`KeyFileInvalid` for anything but a key this client wrote, and a ``file.*``
        error when it cannot be read.
        """
        try:
            fd = os.open(path, os.O_RDONLY)
            with os.fdopen(fd, "rb") as handle:
                mode = os.fstat(handle.fileno()).st_mode
                if stat.S_IMODE(mode) & 0o077:
                    raise KeyFileUnprotected(
                        f"{path} may be read by other users",
                        hint=f"chmod 600 {path}",
                    )
                raw = handle.read(64 * 1024)
        except OSError as e:
            raise path_error(e, "read") from e
        return cls._parse(raw)

    @classmethod
    def _parse(cls, raw: bytes) -> LenderKey:
        try:
            document: Any = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as e:
            raise KeyFileInvalid("the key file is not JSON") from e
        if not isinstance(document, dict) or document.get("format") != KEY_FORMAT:
            raise KeyFileInvalid(f"the key file is not a {KEY_FORMAT} document")
        try:
            key = private_key_from_jwk(document.get("jwk"))
        except CommonsError as e:
            raise KeyFileInvalid("the key file holds no usable private key") from e
        kid = document.get("kid")
        if not isinstance(kid, str) or kid != thumbprint(key.public_key):
            raise KeyFileInvalid("the key file's kid is not its key's thumbprint")
        return cls(key, kid)

    def public_jwk(self) -> dict[str, str]:
        """The public JWK to register, with ``kid``, ``use: sig`` and ``alg``."""
        return public_key_to_jwk(self.key.public_key, kid=self.kid, use="sig", alg=self.key.alg)
