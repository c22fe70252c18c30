"""``Pkcs11Token``: one shared, logged-in session on a PKCS#11 token (an HSM; SoftHSM2 in
tests), via python-pkcs11.  The signing-key store (:mod:`credit_commons.keys.pkcs11_store`)
and the vault's KMS (:mod:`credit_commons.vault.pkcs11`) both reach the token through it.

Thread safety: python-pkcs11 calls C_Initialize with NULL arguments, which tells the library
that it will not be called from several threads at once (PKCS#11 v2.40 base §5.4).  So every
call into one library goes through one lock, on one logged-in session per token, shared by
every user in the process.  A second C_Login would fail anyway: login state belongs to the
application, not the session, and closing a logged-in session logs out all of them.  A lost
session (token removed, HSM restarted) is reopened once per call.

Errors are translated where they enter: token, session and device problems are
:class:`~credit_commons.keys.errors.KmsUnavailable`; a missing library or token, a wrong PIN
or an unsupported mechanism is :class:`~credit_commons.keys.errors.KmsConfigInvalid`.  The
PIN is never logged or put in an error.

python-pkcs11 is imported where a token is used, not when this module loads: a deployment
without an HSM never pays for it.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from credit_commons.keys.errors import KmsConfigInvalid, KmsUnavailable

if TYPE_CHECKING:
    from pkcs11.constants import ObjectClass
    from pkcs11.types import Object, Session, Token

__all__ = ["Pkcs11Token"]

T = TypeVar("T")


class Pkcs11Token:
    """One logged-in read/write session on one token, shared in the process, used under the
    library's lock.  Get it with :meth:`connect`; release it with :meth:`close`."""

    _lib_locks: ClassVar[dict[str, threading.RLock]] = {}
    _shared: ClassVar[dict[tuple[str, str], Pkcs11Token]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, lib_path: str, token_label: str, pin: str, lock: threading.RLock) -> None:
        self.lib_path = lib_path
        self.token_label = token_label
        self._pin = pin
        self._lock = lock
        self._session: Session | None = None
        self._objects: dict[tuple[ObjectClass, str | None, bytes | None], Object] = {}
        self._users = 0

    def __repr__(self) -> str:  # never show the PIN
        return f"Pkcs11Token({self.lib_path!r}, {self.token_label!r})"

    @classmethod
    def connect(cls, lib_path: str | Path, token_label: str, pin: str) -> Pkcs11Token:
        """The shared connection to ``token_label`` through the library at ``lib_path``.

        Raises :class:`KmsConfigInvalid` for a library that does not load, an unknown token or
        a wrong PIN, and :class:`KmsUnavailable` when the token cannot be reached.
        """
        path = str(Path(lib_path).resolve())
        with cls._registry_lock:
            token = cls._shared.get((path, token_label))
            if token is None:
                lock = cls._lib_locks.setdefault(path, threading.RLock())
                token = cls(path, token_label, pin, lock)
                with token._lock:
                    token._open()
                cls._shared[(path, token_label)] = token
            elif not hmac.compare_digest(pin.encode(), token._pin.encode()):
                raise KmsConfigInvalid(
                    f"token {token_label!r} is already open in this process with another PIN"
                )
            token._users += 1
            return token

    def close(self) -> None:
        """Release this user's share; the last one closes the session (and logs out)."""
        from pkcs11 import exceptions as p11e  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        with self._registry_lock, self._lock:
            self._users -= 1
            if self._users > 0:
                return
            self._shared.pop((self.lib_path, self.token_label), None)
            session, self._session = self._session, None
            self._objects.clear()
            if session is not None:
                # A session that is gone already has nothing left to release.
                with suppress(p11e.PKCS11Error):
                    session.close()

    def _open(self) -> Session:
        import pkcs11  # noqa: PLC0415  # deferred: python-pkcs11 (its C module), only with an HSM
        from pkcs11 import exceptions as p11e  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        try:
            lib = pkcs11.lib(self.lib_path)
            token: Token = lib.get_token(token_label=self.token_label)
        except p11e.NoSuchToken as e:
            raise KmsConfigInvalid(f"no PKCS#11 token labelled {self.token_label!r}") from e
        except p11e.PKCS11Error as e:
            raise KmsConfigInvalid(
                f"the PKCS#11 library {self.lib_path} cannot be used ({type(e).__name__})"
            ) from e
        try:
            try:
                session = token.open(rw=True, user_pin=self._pin)
            except p11e.UserAlreadyLoggedIn:
                # Something else in this process logged in; the login is shared by sessions.
                session = token.open(rw=True)
        except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange, p11e.PinLocked) as e:
            raise KmsConfigInvalid(
                f"the PIN of PKCS#11 token {self.token_label!r} was refused ({type(e).__name__})"
            ) from e
        except p11e.PKCS11Error as e:
            raise KmsUnavailable(
                f"cannot open a session on token {self.token_label!r} ({type(e).__name__})"
            ) from e
        self._session = session
        self._objects.clear()
        return session

    def run(
        self, op: Callable[[Session], T], *, failure: Callable[[], Exception] | None = None
    ) -> T:
        """Run ``op`` on the session under the library lock, translating PKCS#11 errors.

        With ``failure``, any PKCS#11 failure other than a lost session raises ``failure()``
        instead (the vault passes its one opaque ``DecryptionFailed``).  Raises
        :class:`KmsUnavailable` (token or session lost twice, device errors) or
        :class:`KmsConfigInvalid` (unsupported mechanism or template).
        """
        from pkcs11 import exceptions as p11e  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        # Errors after which the session is reopened and the call retried once.
        session_lost = (
            p11e.SessionHandleInvalid,
            p11e.SessionClosed,
            p11e.UserNotLoggedIn,
            p11e.ObjectHandleInvalid,
            p11e.KeyHandleInvalid,
            p11e.DeviceRemoved,
            p11e.TokenNotPresent,
        )
        # Errors that mean the token cannot do what we ask: a configuration problem, not an
        # outage.
        unsupported = (
            p11e.MechanismInvalid,
            p11e.MechanismParamInvalid,
            p11e.FunctionNotSupported,
            p11e.KeyTypeInconsistent,
            p11e.TemplateInconsistent,
            p11e.TemplateIncomplete,
            p11e.AttributeValueInvalid,
            p11e.AttributeTypeInvalid,
        )
        with self._lock:
            for attempt in (1, 2):
                session = self._session or self._open()
                try:
                    return op(session)
                except session_lost as e:
                    self._session = None
                    self._objects.clear()
                    if attempt == 2:
                        raise KmsUnavailable(
                            f"lost the session on token {self.token_label!r} ({type(e).__name__})"
                        ) from e
                except unsupported as e:
                    if failure is not None:
                        raise failure() from e
                    raise KmsConfigInvalid(
                        f"token {self.token_label!r} refused the operation ({type(e).__name__})",
                        hint="the token must support CKM_AES_GCM, CKM_SHA256_HMAC, "
                        "CKM_EDDSA and CKM_ECDSA",
                    ) from e
                except p11e.PKCS11Error as e:
                    if failure is not None:
                        raise failure() from e
                    raise KmsUnavailable(
                        f"token {self.token_label!r} failed ({type(e).__name__})"
                    ) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def objects(
        self,
        session: Session,
        object_class: ObjectClass,
        *,
        label: str | None = None,
        key_id: bytes | None = None,
    ) -> list[Object]:
        """Every object of ``object_class`` with this label and/or id (not cached)."""
        from pkcs11.constants import Attribute  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        attrs: dict[Attribute, Any] = {Attribute.CLASS: object_class}
        if label is not None:
            attrs[Attribute.LABEL] = label
        if key_id is not None:
            attrs[Attribute.ID] = key_id
        return list(session.get_objects(attrs))

    def find(
        self,
        session: Session,
        object_class: ObjectClass,
        *,
        label: str | None = None,
        key_id: bytes | None = None,
    ) -> Object | None:
        """The one object of ``object_class`` with this label and/or id (cached until the
        session is reopened), or None.  Raises :class:`KmsConfigInvalid` if several match."""
        cache_key = (object_class, label, key_id)
        cached = self._objects.get(cache_key)
        if cached is not None:
            return cached
        found = self.objects(session, object_class, label=label, key_id=key_id)
        if len(found) > 1:
            raise KmsConfigInvalid(f"the token holds {len(found)} objects labelled {label!r}")
        if found:
            self._objects[cache_key] = found[0]
            return found[0]
        return None

    def forget_objects(self) -> None:
        """Drop the cached object handles (after objects were destroyed)."""
        with self._lock:
            self._objects.clear()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the library lock across several :meth:`run` calls (for read-modify-write)."""
        with self._lock:
            yield
