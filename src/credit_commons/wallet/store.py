"""The wallet file: holder keys and credentials, encrypted under a passphrase.

``wallet.json`` (mode 0600, written atomically) is ``{"format": "commons-wallet/v1",
"kdf": {"name": "scrypt", "salt", "n", "r", "p"}, "nonce", "ciphertext"}``: AES-256-GCM
over the JSON contents with a key derived from the passphrase by scrypt (RFC 7914;
n=2^15, r=8, p=1).  A wrong passphrase and a tampered file give the same error.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from credit_commons.core.encoding import JsonObject, b64url_decode, b64url_encode
from credit_commons.core.errors import CommonsError, ConflictError, IntegrityError, NotFoundError
from credit_commons.core.files import write_private
from credit_commons.keys import (
    KeyType,
    PrivateKey,
    encode_did_key,
    private_key_from_jwk,
    private_key_to_jwk,
    public_key_to_jwk,
)

__all__ = ["KeptReceipt", "PlatformMemory", "StoredCredential", "Wallet", "WalletLocked"]

_FORMAT = "commons-wallet/v1"
_N, _R, _P = 2**15, 8, 1


class WalletLocked(IntegrityError):
    """The wallet does not open: a wrong passphrase or a damaged file (one error)."""

    code = "wallet.locked"
    title = "Wallet cannot be opened"


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """A credential kept in the wallet, under its local id (``c1``, ``c2``, …)."""

    id: str
    issuer: str
    configuration: str
    credential: str
    received_at: str


@dataclass(frozen=True, slots=True)
class KeptReceipt:
    """A receipt kept in the wallet: the event it proves, what it is about, when it was
    kept, and the receipt document itself (``credit-commons-receipt/v1``)."""

    event_id: str
    type: str | None
    about: str
    kept_at: str
    receipt: JsonObject


_Kept = TypeVar("_Kept", StoredCredential, KeptReceipt)


def _from_item(kind: type[_Kept], item: JsonObject) -> _Kept:
    # An entry as the wallet file keeps it: its members named as the dataclass's fields.
    return kind(**{f.name: item[f.name] for f in fields(kind)})


@dataclass(frozen=True, slots=True)
class PlatformMemory:
    """What the wallet remembers of its platform (each may be unknown): its URL, the
    holder's identity token there, and the pinned log verifier key."""

    url: str | None
    identity: str | None
    log_key: str | None


def _kdf(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=_N, r=_R, p=_P).derive(passphrase.encode())


@dataclass
class Wallet:
    """An opened wallet; :meth:`save` writes it back encrypted."""

    path: Path
    passphrase: str = field(repr=False)
    contents: JsonObject = field(repr=False)  # the decrypted wallet document
    # The scrypt salt and the key derived from it, once known (opened or saved).
    _sealing: tuple[bytes, bytes] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def create(cls, path: Path, passphrase: str, key_type: KeyType = KeyType.ED25519) -> Wallet:
        """A new wallet with one holder key.  Raises :class:`ConflictError` if it exists."""
        if path.exists():
            raise ConflictError(f"a wallet already exists at {path}")
        key = PrivateKey.generate(key_type)
        wallet = cls(path, passphrase, {"keys": [private_key_to_jwk(key)], "credentials": []})
        wallet.save()
        return wallet

    @classmethod
    def open(cls, path: Path, passphrase: str) -> Wallet:
        """Open a wallet file; raises :class:`NotFoundError` or :class:`WalletLocked`."""
        wallet = cls(path, passphrase, {})
        wallet.reload()
        return wallet

    def reload(self) -> None:
        """Read the wallet file again (another process may have changed it), reusing the
        derived key while the file's salt is the one it was derived for.

        Raises :class:`NotFoundError` or :class:`WalletLocked`.
        """
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise NotFoundError(
                f"no wallet at {self.path}", hint="run `commons wallet init`"
            ) from e
        except ValueError as e:
            raise WalletLocked() from e
        try:
            if document.get("format") != _FORMAT:
                raise ValueError("format")
            salt = b64url_decode(document["kdf"]["salt"])
            cached = self._sealing
            key = cached[1] if cached and cached[0] == salt else _kdf(self.passphrase, salt)
            plaintext = AESGCM(key).decrypt(
                b64url_decode(document["nonce"]),
                b64url_decode(document["ciphertext"]),
                _FORMAT.encode(),
            )
            contents = json.loads(plaintext)
        except (KeyError, TypeError, ValueError, InvalidTag, CommonsError) as e:
            raise WalletLocked() from e
        self.contents, self._sealing = contents, (salt, key)

    def save(self) -> None:
        """Encrypt and write the wallet atomically with mode 0600.

        The key derived when the wallet was opened (or first saved) is reused with a fresh
        96-bit nonce: a save costs no scrypt run, and a random nonce per message keeps
        AES-GCM safe far beyond any wallet's number of saves (NIST SP 800-38D §8.3).
        """
        if self._sealing is None:
            salt = secrets.token_bytes(16)
            self._sealing = (salt, _kdf(self.passphrase, salt))
        salt, key = self._sealing
        nonce = secrets.token_bytes(12)
        ciphertext = AESGCM(key).encrypt(
            nonce, json.dumps(self.contents).encode(), _FORMAT.encode()
        )
        document = {
            "format": _FORMAT,
            "kdf": {"name": "scrypt", "salt": b64url_encode(salt), "n": _N, "r": _R, "p": _P},
            "nonce": b64url_encode(nonce),
            "ciphertext": b64url_encode(ciphertext),
        }
        write_private(self.path, json.dumps(document).encode())

    @property
    def holder_key(self) -> PrivateKey:
        """The wallet's holder key (the first)."""
        return private_key_from_jwk(self.contents["keys"][0])

    def add_credential(
        self, credential: str, *, issuer: str, configuration: str, received_at: str
    ) -> str:
        """Store a credential; returns its local id."""
        local_id = f"c{len(self.contents['credentials']) + 1}"
        self.contents["credentials"].append(
            {
                "id": local_id,
                "issuer": issuer,
                "configuration": configuration,
                "credential": credential,
                "received_at": received_at,
            }
        )
        return local_id

    def _keys(self) -> list[PrivateKey]:
        # Every holder key kept, the current one first.
        return [private_key_from_jwk(jwk) for jwk in self.contents["keys"]]

    def key_matching(self, holder_jwk: JsonObject) -> PrivateKey | None:
        """The wallet key whose public JWK is ``holder_jwk`` (a credential's ``cnf.jwk``),
        current or rotated away, or None when the wallet holds none."""
        wanted = {k: holder_jwk.get(k) for k in ("kty", "crv", "x", "y")}
        for key in self._keys():
            public = public_key_to_jwk(key.public_key)
            if {k: public.get(k) for k in ("kty", "crv", "x", "y")} == wanted:
                return key
        return None

    def key_for_did(self, did: str) -> PrivateKey | None:
        """The wallet key whose ``did:key`` is ``did`` (a credential's subject), current or
        rotated away, or None when the wallet holds none."""
        for key in self._keys():
            if encode_did_key(key.public_key) == did:
                return key
        return None

    def key_for(self, holder_jwk: JsonObject | None) -> PrivateKey:
        """The wallet key whose public JWK is ``holder_jwk`` (a credential's ``cnf.jwk``):
        a credential bound to a key rotated away stays presentable.  The holder key when
        none matches or none is given."""
        found = self.key_matching(holder_jwk) if holder_jwk is not None else None
        return found or self.holder_key

    @property
    def pending_key(self) -> PrivateKey | None:
        """A new holder key whose rotation was started and not yet finished."""
        jwk = self.contents.get("pending_key")
        return private_key_from_jwk(jwk) if jwk else None

    def begin_rotation(self, key: PrivateKey) -> None:
        """Keep ``key`` as the pending holder key (saved before the platform is told)."""
        self.contents["pending_key"] = private_key_to_jwk(key)

    def finish_rotation(self) -> None:
        """The pending key becomes the holder key; the previous ones stay, after it, for
        the credentials bound to them."""
        jwk = self.contents.pop("pending_key")
        self.contents["keys"].insert(0, jwk)

    def abandon_rotation(self) -> None:
        """Forget the pending key (the platform refused it)."""
        self.contents.pop("pending_key", None)

    @property
    def credentials(self) -> list[StoredCredential]:
        """The credentials kept, in the order received."""
        return [_from_item(StoredCredential, item) for item in self.contents["credentials"]]

    def _receipts(self) -> list[JsonObject]:
        # The kept receipts as the wallet file holds them.
        found: list[JsonObject] = self.contents.setdefault("receipts", [])
        return found

    @property
    def receipts(self) -> list[KeptReceipt]:
        """The receipts kept, oldest first."""
        return [_from_item(KeptReceipt, item) for item in self._receipts()]

    def keep_receipt(self, receipt: JsonObject, *, about: str, kept_at: str) -> None:
        """Keep (or replace, by event id) a receipt document."""
        event = receipt.get("event") or {}
        entry_id = str(event.get("id"))
        item = {
            "event_id": entry_id,
            "type": event.get("type"),
            "about": about,
            "kept_at": kept_at,
            "receipt": receipt,
        }
        kept_receipts = self._receipts()
        for i, kept in enumerate(kept_receipts):
            if kept["event_id"] == entry_id:
                kept_receipts[i] = {**item, "kept_at": kept["kept_at"]}
                return
        kept_receipts.append(item)

    def receipt(self, event_id: str) -> KeptReceipt:
        """A kept receipt by event id; raises :class:`NotFoundError`."""
        for kept in self.receipts:
            if kept.event_id == event_id:
                return kept
        raise NotFoundError(f"no receipt for {event_id} in the wallet")

    @property
    def proof_history(self) -> list[JsonObject]:
        """The threshold proofs asked of the wallet's local server, oldest first (each: when,
        the statement, context, threshold, audience, nonce, credential and outcome)."""
        return list(self.contents.get("proofs", []))

    def record_proof(self, entry: JsonObject, *, keep: int) -> None:
        """Add ``entry`` to the proof history, keeping the newest ``keep`` (the caller saves)."""
        history: list[JsonObject] = self.contents.setdefault("proofs", [])
        history.append(entry)
        del history[:-keep]

    @property
    def holder_did(self) -> str:
        """The holder key's ``did:key``."""
        return encode_did_key(self.holder_key.public_key)

    def _platform(self) -> JsonObject:
        # What the wallet file holds of its platform.
        found: JsonObject = self.contents.setdefault("platform", {})
        return found

    @property
    def platform(self) -> PlatformMemory:
        """What the wallet remembers of its platform."""
        found = self._platform()
        return PlatformMemory(
            url=found.get("url"), identity=found.get("identity"), log_key=found.get("log_key")
        )

    def remember(
        self, *, url: str | None = None, identity: str | None = None, log_key: str | None = None
    ) -> bool:
        """Remember the platform's URL, the holder's identity token there and the log's
        verifier key; whether anything changed (the caller saves)."""
        changed = False
        remembered = self._platform()
        for name, value in (("url", url), ("identity", identity), ("log_key", log_key)):
            if value is not None and remembered.get(name) != value:
                remembered[name] = value
                changed = True
        return changed

    def forget_identity(self) -> None:
        """Forget the holder's identity token on the platform (after an erasure)."""
        self._platform().pop("identity", None)

    def credential(self, local_id: str) -> StoredCredential:
        """A stored credential by local id; raises :class:`NotFoundError`."""
        for item in self.contents["credentials"]:
            if item["id"] == local_id:
                return _from_item(StoredCredential, item)
        raise NotFoundError(f"no credential {local_id} in the wallet")
