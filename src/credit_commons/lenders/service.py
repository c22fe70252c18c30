"""The lender registry: registration by an administrator, look-up, key replacement,
deactivation, and the client-assertion ids already used.

A lender is an OAuth 2.0 client that authenticates with ``private_key_jwt`` (RFC 7523 §2.2):
the platform stores only its public keys (a JWK Set of Ed25519 or P-256 keys), the purposes
it may ask consent for, and an optional https webhook.  Each change records ``lender.registered``
or ``lender.updated`` in the caller's transaction.  Only administrators may register or read
clients; anyone else is told the resource does not exist.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.db import HotQuery
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, NotFoundError, ValidationError
from credit_commons.events import EventDetails, record_event
from credit_commons.identity import Principal, actor_of
from credit_commons.keys import (
    PublicKey,
    check_alg,
    public_key_from_jwk,
    public_key_to_jwk,
    thumbprint,
)
from credit_commons.lenders.certificates import certificate_thumbprint, validate_thumbprint
from credit_commons.lenders.models import ClientAssertionRow, LenderClientRow
from credit_commons.lenders.schemas import LenderClientView
from credit_commons.runtime import Runtime

__all__ = [
    "CLIENT_ID_PATTERN",
    "ClientStatus",
    "LenderCertificateChanged",
    "LenderClient",
    "LenderRegistered",
    "LenderUpdated",
    "client_names",
    "client_status",
    "consume_assertion_id",
    "get_client",
    "read_client",
    "register_client",
    "update_client",
    "validate_jwks",
    "validate_purposes",
    "validate_webhook_url",
]

CLIENT_ID_PATTERN = r"^lnd_[A-Za-z0-9]{22}$"
_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)
_ALPHABET = string.ascii_letters + string.digits
# ReBIT AA purpose codes 101-105, and platform purpose codes.
_AA_PURPOSES = frozenset({"101", "102", "103", "104", "105"})
_PLATFORM_PURPOSE = re.compile(r"[a-z][a-z0-9_.-]{2,40}")
_KID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MAX_KEYS = 10
_MAX_PURPOSES = 32
_MAX_URL = 2048


class LenderRegistered(EventDetails, event_type="lender.registered"):
    """A lender client was registered (its id is the event's ``object`` digest)."""

    key_count: int
    purpose_count: int
    webhook: bool


class LenderUpdated(EventDetails, event_type="lender.updated"):
    """A lender client's keys, purposes, webhook or active flag changed."""

    keys_replaced: bool
    purposes_changed: bool
    webhook_changed: bool
    active: bool


class LenderCertificateChanged(EventDetails, event_type="lender.certificate_changed"):
    """A lender's tokens were bound to a TLS client certificate (``bound``), to another
    one, or no longer (RFC 8705 §3; the thumbprint itself is not recorded)."""

    bound: bool


@dataclass(frozen=True)
class LenderClient:
    """A registered lender client, as the rest of the platform sees it."""

    client_id: str
    name: str
    jwks: JsonObject
    allowed_purposes: tuple[str, ...]
    webhook_url: str | None
    active: bool
    certificate_thumbprint: str | None = None
    """The ``x5t#S256`` its tokens must be bound to (RFC 8705 §3), if any."""

    def key(self, kid: object) -> PublicKey | None:
        """The public key the client signs with under ``kid`` (``None``: its only key, when
        it has exactly one); ``None`` when there is no such key."""
        keys: list[dict[str, str]] = self.jwks["keys"]
        if kid is None:
            chosen = keys[0] if len(keys) == 1 else None
        else:
            chosen = next((k for k in keys if k.get("kid") == kid), None)
        return public_key_from_jwk(_public_members(chosen)) if chosen is not None else None


def _public_members(jwk: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in jwk.items() if k in {"kty", "crv", "x", "y"}}


def _client(row: LenderClientRow) -> LenderClient:
    return LenderClient(
        client_id=row.client_id,
        name=row.name,
        jwks=json.loads(row.jwks),
        allowed_purposes=tuple(json.loads(row.allowed_purposes)),
        webhook_url=row.webhook_url,
        active=row.active,
        certificate_thumbprint=row.certificate_thumbprint,
    )


def _view(row: LenderClientRow) -> LenderClientView:
    client = _client(row)
    return LenderClientView(
        client_id=client.client_id,
        name=client.name,
        jwks=client.jwks,
        allowed_purposes=list(client.allowed_purposes),
        webhook_url=client.webhook_url,
        tls_client_thumbprint=client.certificate_thumbprint,
        active=client.active,
        created_at=utc(row.created_at).isoformat(),
        updated_at=utc(row.updated_at).isoformat(),
    )


def validate_jwks(jwks: object) -> JsonObject:
    """The normalised JWK Set: public Ed25519/P-256 keys only, each with a unique ``kid``
    (the RFC 7638 thumbprint when none was given), ``use`` ``sig`` and a matching ``alg``.

    Raises :class:`ValidationError` (``field``: ``jwks``).
    """
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= _MAX_KEYS:
        raise ValidationError(
            f"jwks must be a JWK Set with 1 to {_MAX_KEYS} keys", extra={"field": "jwks"}
        )
    normalised: list[dict[str, str]] = []
    for jwk in keys:
        try:
            if not isinstance(jwk, dict) or "d" in jwk:
                raise ValidationError("a JWK Set of a client holds public JWK objects only")
            key = public_key_from_jwk(_public_members(jwk))
            kid = jwk.get("kid") or thumbprint(key)
            alg = jwk.get("alg") or key.key_type.jose_alg
            if not isinstance(kid, str) or not _KID.fullmatch(kid):
                raise ValidationError("kid must be 1-128 characters from [A-Za-z0-9._:-]")
            check_alg(alg, key.key_type)
            if jwk.get("use", "sig") != "sig":
                raise ValidationError("client keys are for signatures (use=sig)")
        except CommonsError as e:
            raise ValidationError(f"jwks: {e.detail}", extra={"field": "jwks"}, hint=e.hint) from e
        normalised.append(public_key_to_jwk(key, kid=kid, alg=str(alg), use="sig"))
    kids = [k["kid"] for k in normalised]
    if len(set(kids)) != len(kids):
        raise ValidationError("jwks: every key needs its own kid", extra={"field": "jwks"})
    return {"keys": normalised}


def validate_purposes(purposes: Sequence[str]) -> tuple[str, ...]:
    """AA purpose codes (``101``-``105``) and platform codes (``^[a-z][a-z0-9_.-]{2,40}$``),
    sorted and without duplicates.  Raises :class:`ValidationError`."""
    if isinstance(purposes, str) or not 1 <= len(purposes) <= _MAX_PURPOSES:
        raise ValidationError(
            f"allowed_purposes must list 1 to {_MAX_PURPOSES} purpose codes",
            extra={"field": "allowed_purposes"},
        )
    for purpose in purposes:
        if not isinstance(purpose, str) or not (
            purpose in _AA_PURPOSES or _PLATFORM_PURPOSE.fullmatch(purpose)
        ):
            raise ValidationError(
                "a purpose is an AA code 101-105 or a platform code like loan.underwriting",
                extra={"field": "allowed_purposes"},
            )
    return tuple(sorted(set(purposes)))


def validate_webhook_url(url: str | None, *, allow_private: bool = False) -> str | None:
    """An https URL without credentials or fragment; an IP-literal host must be a public
    address (unless ``allow_private``).  Raises :class:`ValidationError`.

    Host names are not resolved here: whoever delivers webhooks checks the address again
    through :class:`~credit_commons.core.net.OutboundFetcher`'s guard at send time.
    """
    if url is None:
        return None
    parts = urlsplit(url) if isinstance(url, str) and len(url) <= _MAX_URL else None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise ValidationError("webhook_url must be an https URL", extra={"field": "webhook_url"})
    if parts.username or parts.password or parts.fragment:
        raise ValidationError(
            "webhook_url may not carry credentials or a fragment", extra={"field": "webhook_url"}
        )
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url
    if not allow_private and (not address.is_global or address.is_multicast):
        raise ValidationError(
            "webhook_url points to a non-public address", extra={"field": "webhook_url"}
        )
    return url


def certificate_binding(
    certificate: str | None, thumbprint: str | None, *, now: datetime
) -> str | None:
    """The ``x5t#S256`` a lender's tokens are to be bound to: taken from ``certificate``
    (PEM, valid at ``now``) or ``thumbprint`` as given; ``None`` when neither is.  Raises
    :class:`ValidationError` for a bad one, or both at once."""
    if certificate is not None and thumbprint is not None:
        raise ValidationError(
            "give tls_client_certificate or tls_client_thumbprint, not both",
            extra={"field": "tls_client_certificate"},
        )
    if certificate is not None:
        return certificate_thumbprint(certificate, field="tls_client_certificate", now=now)
    if thumbprint is not None:
        return validate_thumbprint(thumbprint, field="tls_client_thumbprint")
    return None


def _record_binding(
    session: Session, rt: Runtime, principal: Principal, row: LenderClientRow
) -> None:
    record_event(
        session,
        LenderCertificateChanged(bound=row.certificate_thumbprint is not None),
        actor=actor_of(rt, principal),
        at=row.updated_at,
        object=rt.objects.digest("lender_client", row.client_id),
    )


def _validate_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        raise ValidationError("name must be 1-200 characters", extra={"field": "name"})
    return name.strip()


def register_client(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    name: str,
    jwks: JsonObject,
    allowed_purposes: Sequence[str],
    webhook_url: str | None = None,
    tls_client_certificate: str | None = None,
    tls_client_thumbprint: str | None = None,
) -> LenderClientView:
    """Register a lender client (administrators; others get :class:`NotFoundError`) and
    record ``lender.registered``; returns the client's public view with its new id.

    With a TLS client certificate (PEM) or its thumbprint, the lender's tokens are bound
    to that certificate (RFC 8705 §3) and ``lender.certificate_changed`` is recorded too.

    Raises :class:`ValidationError` for a bad name, JWK Set, purpose, webhook URL or
    certificate.
    """
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    now = rt.clock.now()
    row = LenderClientRow(
        client_id="lnd_" + "".join(secrets.choice(_ALPHABET) for _ in range(22)),
        name=_validate_name(name),
        jwks=json.dumps(validate_jwks(jwks)),
        allowed_purposes=json.dumps(list(validate_purposes(allowed_purposes))),
        webhook_url=validate_webhook_url(
            webhook_url, allow_private=rt.settings.insecure_allow_private_network
        ),
        active=True,
        created_at=now,
        updated_at=now,
        certificate_thumbprint=certificate_binding(
            tls_client_certificate, tls_client_thumbprint, now=now
        ),
    )
    session.add(row)
    record_event(
        session,
        LenderRegistered(
            key_count=len(json.loads(row.jwks)["keys"]),
            purpose_count=len(json.loads(row.allowed_purposes)),
            webhook=row.webhook_url is not None,
        ),
        actor=actor_of(rt, principal),
        at=now,
        object=rt.objects.digest("lender_client", row.client_id),
    )
    if row.certificate_thumbprint is not None:
        _record_binding(session, rt, principal, row)
    return _view(row)


def update_client(
    session: Session,
    rt: Runtime,
    principal: Principal,
    client_id: str,
    *,
    jwks: JsonObject | None = None,
    allowed_purposes: Sequence[str] | None = None,
    webhook_url: str | None = None,
    clear_webhook: bool = False,
    active: bool | None = None,
    tls_client_certificate: str | None = None,
    tls_client_thumbprint: str | None = None,
    clear_certificate: bool = False,
) -> LenderClientView:
    """Replace a client's keys, purposes or webhook, or (de)activate it (administrators;
    others, and unknown ids, get :class:`NotFoundError`); records ``lender.updated``.

    A deactivated client can no longer get tokens, and its unexpired tokens stop working.
    A new certificate (or thumbprint) binds the client's tokens to it at once — tokens bound
    to the previous one stop working — and ``clear_certificate`` removes the binding; either
    records ``lender.certificate_changed``.
    Raises :class:`ValidationError` like :func:`register_client`.
    """
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    row = session.get(LenderClientRow, client_id, with_for_update=True)
    if row is None:
        raise NotFoundError("no such lender client")
    keys_replaced = jwks is not None
    if jwks is not None:
        row.jwks = json.dumps(validate_jwks(jwks))
    purposes_changed = allowed_purposes is not None
    if allowed_purposes is not None:
        row.allowed_purposes = json.dumps(list(validate_purposes(allowed_purposes)))
    webhook_changed = webhook_url is not None or clear_webhook
    if webhook_changed:
        row.webhook_url = validate_webhook_url(
            None if clear_webhook else webhook_url,
            allow_private=rt.settings.insecure_allow_private_network,
        )
    if active is not None:
        row.active = active
    row.updated_at = rt.clock.now()
    binding = certificate_binding(tls_client_certificate, tls_client_thumbprint, now=row.updated_at)
    if clear_certificate and binding is not None:
        raise ValidationError(
            "tls_client_thumbprint: null removes the binding; give no certificate with it",
            extra={"field": "tls_client_thumbprint"},
        )
    certificate_changed = (binding is not None or clear_certificate) and (
        binding != row.certificate_thumbprint
    )
    if certificate_changed:
        row.certificate_thumbprint = binding
    record_event(
        session,
        LenderUpdated(
            keys_replaced=keys_replaced,
            purposes_changed=purposes_changed,
            webhook_changed=webhook_changed,
            active=row.active,
        ),
        actor=actor_of(rt, principal),
        at=row.updated_at,
        object=rt.objects.digest("lender_client", row.client_id),
    )
    if certificate_changed:
        _record_binding(session, rt, principal, row)
    return _view(row)


def read_client(session: Session, principal: Principal, client_id: str) -> LenderClientView:
    """A client's public view (administrators; others, and unknown ids, get
    :class:`NotFoundError`)."""
    row = session.get(LenderClientRow, client_id) if principal.is_admin else None
    if row is None:
        raise NotFoundError("no such lender client")
    return _view(row)


class ClientStatus(NamedTuple):
    """What every lender request checks: whether the client is active, its allowed
    purposes, and the thumbprint its tokens must be bound to (``None``: not bound)."""

    active: bool
    purposes: tuple[str, ...]
    certificate_thumbprint: str | None


_STATUS = HotQuery(
    select(
        LenderClientRow.__table__.c.active,
        LenderClientRow.__table__.c.allowed_purposes,
        LenderClientRow.__table__.c.certificate_thumbprint,
    ).where(LenderClientRow.__table__.c.client_id == bindparam("client_id")),
    ("client_id",),
)


def client_status(session: Session, client_id: str) -> ClientStatus | None:
    """Whether the client is active, its allowed purposes and its certificate binding
    (``None`` if unknown): what every lender request checks, read without the ORM."""
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        return None
    rows = _STATUS.rows(session, client_id=client_id)
    if not rows:
        return None
    active, purposes, thumbprint = rows[0]
    return ClientStatus(bool(active), tuple(json.loads(purposes)), thumbprint)


def get_client(session: Session, client_id: str) -> LenderClient | None:
    """The client ``client_id`` (active or not), or ``None``; never raises for a bad id."""
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        return None
    row = session.get(LenderClientRow, client_id)
    return _client(row) if row is not None else None


def client_names(session: Session, client_ids: Iterable[str]) -> dict[str, str]:
    """The name each of ``client_ids`` is shown by, read at once: the registered name of a
    lender client that exists (active or not), the client id itself for one that is no
    longer registered (or a malformed id)."""
    names = {c: c for c in client_ids}
    wanted = sorted(c for c in names if isinstance(c, str) and _CLIENT_ID.fullmatch(c))
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(LenderClientRow.client_id, LenderClientRow.name).where(
                LenderClientRow.client_id.in_(wanted[start : start + 500])
            )
        )
        names.update((str(client_id), str(name)) for client_id, name in rows)
    return names


def consume_assertion_id(
    session: Session, *, jti_hash: str, client_id: str, expires_at: datetime, now: datetime
) -> bool:
    """Record that the assertion ``jti_hash`` (a SHA-256 hex digest of its ``jti``, never
    the ``jti`` itself) of ``client_id`` was used, kept until ``expires_at``; ids already
    expired at ``now`` are purged on the way.  Returns False when it was used already: a
    replay (RFC 7523 §3 item 7).

    The primary key refuses a second insert: atomic on both backends (PostgreSQL makes a
    racing insert wait for the first one's commit, then fail).
    """
    session.execute(delete(ClientAssertionRow).where(ClientAssertionRow.expires_at < now))
    try:
        with session.begin_nested():
            session.execute(
                insert(ClientAssertionRow).values(
                    jti_hash=jti_hash, client_id=client_id, expires_at=expires_at
                )
            )
    except DbIntegrityError:
        return False
    return True
