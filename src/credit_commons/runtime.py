"""The platform's runtime: everything built once from :class:`Settings` and handed down.

``Runtime.build(settings)`` runs the start-up checks (production refusals), opens the
database engine, loads (or, in development, creates) the master key file, sets up the
pseudonymiser and the key store.  ``create_app`` and the CLI both start here, so the HTTP
API and the CLI run the same service functions over the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from credit_commons.core.clock import Clock, SystemClock
from credit_commons.core.db import dispose_engine, make_engine, make_sessionmaker
from credit_commons.core.db_tracing import trace_engine
from credit_commons.core.encoding import b64url_decode
from credit_commons.core.errors import CommonsError, ConfigurationError
from credit_commons.core.pseudonym import Pseudonymizer
from credit_commons.core.settings import Settings, Violation, refuse
from credit_commons.events import OBJECT_KEY_LABEL, ObjectDigests
from credit_commons.formats.tlog_tiles import TileCache
from credit_commons.keys import EmbeddedKeyStore, KeyStore, MasterKeyring
from credit_commons.vault import Kms, LocalKms, Pkcs11Kms, Vault

__all__ = ["Runtime", "build_kms"]


def build_kms(settings: Settings, master: MasterKeyring, *, create_missing: bool = False) -> Kms:
    """The KMS the settings name: the local key file, or a PKCS#11 token."""
    if settings.kms == "pkcs11":
        if not (settings.pkcs11_lib and settings.pkcs11_token and settings.pkcs11_pin):
            raise ConfigurationError(
                "COMMONS_KMS=pkcs11 needs the module, token and PIN",
                hint="set COMMONS_PKCS11_LIB, COMMONS_PKCS11_TOKEN and COMMONS_PKCS11_PIN",
            )
        return Pkcs11Kms(
            settings.pkcs11_lib,
            settings.pkcs11_token,
            settings.pkcs11_pin.get_secret_value(),
            key_label_prefix=settings.pkcs11_key_prefix,
            create_missing=create_missing,
        )
    pepper = _pepper(settings, master) if settings.pseudonym_pepper is not None else None
    return LocalKms(master, pepper=pepper)


def _pepper(settings: Settings, master: MasterKeyring) -> bytes:
    if settings.pseudonym_pepper is None:
        # Development only (production refuses this in Settings.check_production): a pepper
        # derived from the master key, stable for the life of the key file.
        return master.derive("pseudonym-pepper/dev", version=1)
    try:
        pepper = b64url_decode(settings.pseudonym_pepper.get_secret_value())
    except CommonsError as e:
        raise ConfigurationError(
            "COMMONS_PSEUDONYM_PEPPER is not base64url",
            hint='generate one with python -c "import secrets; print(secrets.token_urlsafe(32))"',
        ) from e
    return pepper


def _production_master(settings: Settings) -> MasterKeyring:
    """The production master key, after every refusal of the settings and the key file.

    Raises one :class:`ConfigurationError` naming every violation at once: the settings'
    (:meth:`Settings.production_violations`), a missing, exposed or malformed key file, a
    development key.
    """
    key_file = settings.resolved_master_key_file
    violations = settings.production_violations()
    master: MasterKeyring | None = None
    try:
        master = MasterKeyring.load(key_file)
    except ConfigurationError as e:
        violations.append(Violation(e.detail, e.hint or "see docs/configuration.md"))
    if master is not None and master.development:
        violations.append(
            Violation(
                f"production refuses the development master key {key_file}",
                "create a production key with `commons keys init-master --production` "
                "and point COMMONS_MASTER_KEY_FILE at it",
            )
        )
    refuse(violations)
    assert master is not None  # refuse() raised when the key did not load
    return master


@dataclass(eq=False)
class Runtime:
    """The shared objects of one running instance.

    Compared and hashed by identity: the layers above keep what they cache per runtime in
    their own :class:`~credit_commons.core.attached.Attached` (the log's identity, the
    catalogue's types, the gateway's rate limiter), since this layer cannot name their types.
    """

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    clock: Clock
    master: MasterKeyring
    pseudonymizer: Pseudonymizer
    key_store: KeyStore
    tile_cache: TileCache = field(default_factory=TileCache)
    """The process-wide cache of full log tiles."""
    _vault: Vault | None = field(default=None, init=False, repr=False)
    _objects: ObjectDigests | None = field(default=None, init=False, repr=False)

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        """Check the settings and build the runtime.

        Raises :class:`ConfigurationError` for settings production refuses, a missing or
        development master key in production (all of them named in one error), or a
        malformed pepper.
        """
        clock = clock or SystemClock()
        if settings.is_production:
            master = _production_master(settings)
        # Local state (database, key file) is for this user only.
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not settings.is_production:
            master = MasterKeyring.load_or_create(
                settings.resolved_master_key_file, now=clock.now()
            )
        pseudonymizer = Pseudonymizer(_pepper(settings, master))
        engine = make_engine(
            settings.resolved_database_url,
            pool_size=settings.db_pool_size,
            pool_timeout=settings.db_pool_timeout,
        )
        if settings.tracing.enabled:
            trace_engine(engine)  # spans once the process starts tracing (core/tracing.py)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            read_sessions=make_sessionmaker(engine, read_only=True),
            clock=clock,
            master=master,
            pseudonymizer=pseudonymizer,
            key_store=EmbeddedKeyStore(master),
        )

    @property
    def vault(self) -> Vault:
        """The vault, built on first use (so commands that never seal never open the HSM).

        Raises :class:`ConfigurationError` or ``KmsUnavailable`` when the KMS cannot be
        opened.
        """
        if self._vault is None:
            self._vault = Vault(
                build_kms(self.settings, self.master), self.clock, ttl=self.settings.vault_cache_ttl
            )
        return self._vault

    @property
    def objects(self) -> ObjectDigests:
        """The keyed digests of event objects, their key derived once by the KMS from its
        pepper (``events/spine.py``).

        Raises what :attr:`vault` raises when the KMS cannot be opened.
        """
        if self._objects is None:
            key = self.vault.kms.hmac(ObjectDigests.key_message(1), label=OBJECT_KEY_LABEL)
            self._objects = ObjectDigests(key, version=1)
        return self._objects

    def operator_actor(self, name: str = "local") -> str:
        """The pseudonym that stands for an operator acting through the CLI."""
        return self.pseudonymizer.pseudonym("operator", name)

    def close(self) -> None:
        """Release the database connections and the KMS session (an HSM's, if open)."""
        close_kms = getattr(self._vault.kms, "close", None) if self._vault is not None else None
        if callable(close_kms):
            close_kms()
        dispose_engine(self.engine)
