"""The rule-set registry (issue 19 "Rules"; seed 004 rules-registry): signed, time-locked,
versioned rule sets in a table.

:func:`register_rule_set` parses a rule set (every guard of ``reputation/rules.py``), refuses
one whose ``validFrom`` is earlier than now plus its ``timeLockDays`` and one whose version is
not above every version registered under its id, signs it with the platform's
``reputation-rules`` key (Ed25519, made on first use) and writes a new row with a
``rules.changed`` event in the same transaction.  A development registration (``dev``) skips
the time lock and is refused in production, as the ZK registry refuses a ``dev`` setup; a rule
set registered that way is refused when read in production too.

Every read (:func:`active_rule_set`, :func:`get_rule_set`, :func:`list_rule_sets`) verifies
the stored token's signature under the registry key and that the row says what was signed.
The rule set in effect at ``t`` is the highest version of the default id whose ``validFrom``
≤ ``t``.  :func:`register_dev_rule_set` registers the package's example (``dev_rules.json``)
in effect from now, trusting the platform itself as KYC issuer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Final

from sqlalchemy.orm import Session

from credit_commons.core.attached import Attached
from credit_commons.core.clock import utc
from credit_commons.core.encoding import JsonObject
from credit_commons.events import Digest, EventDetails, Token, record_event
from credit_commons.keys import KeyType, KeyVersion
from credit_commons.keys import service as key_service
from credit_commons.reputation import rules_store
from credit_commons.reputation.rules import (
    RuleSet,
    check_time_lock,
    parse_rule_set,
    rule_set_kid,
    sign_rule_set,
    verify_rule_set,
)
from credit_commons.reputation.rules_errors import (
    DevRuleSetNotAllowed,
    RuleSetNotFound,
    RuleSetSignatureInvalid,
    RuleSetVersionConflict,
)
from credit_commons.reputation.rules_schemas import RuleSetView
from credit_commons.reputation.rules_store import RuleSetRow
from credit_commons.runtime import Runtime

__all__ = [
    "DEFAULT_RULE_SET_ID",
    "RULES_KEY",
    "RulesChanged",
    "StoredRuleSet",
    "active_rule_set",
    "dev_rule_set_document",
    "get_rule_set",
    "list_rule_sets",
    "register_dev_rule_set",
    "register_rule_set",
    "rule_set_keys",
]

RULES_KEY: Final = "reputation-rules"
_PLATFORM_KEY: Final = key_service.PlatformKey(RULES_KEY, KeyType.ED25519, "reputation")
#: The id whose versions are "the" rule set: the one scores are computed under.
DEFAULT_RULE_SET_ID: Final = "shg-rules"
_INSTANT: Final = "%Y-%m-%dT%H:%M:%SZ"


class RulesChanged(EventDetails, event_type="rules.changed"):
    """A rule set was registered: its id, version, hash, from when it is in effect and
    whether it was a development registration (rule sets are public; nothing personal)."""

    rule_set: Token
    version: int
    hash: Digest
    valid_from: datetime
    dev: bool


@dataclass(frozen=True, slots=True)
class StoredRuleSet:
    """A registered rule set whose signature verified: its view (with the token and hash a
    client pins) and the parsed rule set."""

    view: RuleSetView
    rule_set: RuleSet


def _view(row: RuleSetRow, rule_set: RuleSet) -> RuleSetView:
    return RuleSetView(
        id=row.id,
        version=row.version,
        hash=row.hash,
        published_at=utc(row.published_at).strftime(_INSTANT),
        valid_from=utc(row.valid_from).strftime(_INSTANT),
        dev=row.dev,
        rule_set=rule_set.document(),
        token=row.token,
    )


def _refuse_dev(rt: Runtime, dev: bool) -> None:
    if dev and rt.settings.is_production:
        raise DevRuleSetNotAllowed("production enforces every rule set's time lock")


def register_rule_set(
    session: Session, rt: Runtime, document: object, *, actor: str, dev: bool = False
) -> RuleSetView:
    """Register ``document`` (a rule set's JSON) as a new version of its id, signed by the
    registry key, with its ``rules.changed`` event; ``actor`` is the operator's pseudonym.
    ``dev`` skips the time lock (outside production only).

    Raises ``RuleSetInvalid`` (or the subclass of the guard it breaks),
    :class:`DevRuleSetNotAllowed`, ``RuleSetTimeLocked`` and :class:`RuleSetVersionConflict`.
    """
    rule_set = parse_rule_set(document)
    _refuse_dev(rt, dev)
    now = rt.clock.now()
    if not dev:
        in_effect = rules_store.active_row(session, rule_set.id, now)
        promised = 0
        if in_effect is not None:
            promised = parse_rule_set(json.loads(in_effect.document)).time_lock_days
        check_time_lock(rule_set, now, promised)
    latest = rules_store.latest_version(session, rule_set.id)
    if latest is not None and latest >= rule_set.version:
        raise RuleSetVersionConflict(
            f"{rule_set.id} is registered at version {latest}; register a higher one"
        )
    signer = key_service.platform_signer(session, rt, _PLATFORM_KEY)
    token = sign_rule_set(
        rule_set, iss=rt.settings.public_url, iat=int(now.timestamp()), signer=signer,
        kid=signer.kid,
    )  # fmt: skip
    row = RuleSetRow(
        id=rule_set.id,
        version=rule_set.version,
        document=rule_set.canonical,
        hash=rule_set.hash,
        token=token,
        published_at=now,
        valid_from=rule_set.valid_from,
        dev=dev,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        RulesChanged(
            rule_set=rule_set.id,
            version=rule_set.version,
            hash=rule_set.hash,
            valid_from=rule_set.valid_from,
            dev=dev,
        ),
        actor=actor,
        at=now,
        object=rt.objects.digest("rule_set", f"{rule_set.id}/{rule_set.version}"),
    )
    return _view(row, rule_set)


_VerifiedKey = tuple[str, int, str, bytes, str, datetime, bool]
_VERIFIED_MAX: Final = 64


def _verified(session: Session, rt: Runtime, row: RuleSetRow) -> StoredRuleSet:
    # A row this runtime verified before, byte for byte (every column the check reads: the
    # token, the document, the hash, id, version, validFrom, dev), is the same rule set; any
    # change to the row is another key, verified afresh.  Dev in production is refused
    # every time.
    key: _VerifiedKey = (
        row.id, row.version, row.token, bytes(row.document), row.hash, utc(row.valid_from),
        row.dev,
    )  # fmt: skip
    cache = _VERIFIED(rt)
    hit = cache.get(key)
    if hit is not None:
        _refuse_dev(rt, row.dev)
        return hit
    verified = _verify_row(session, rt, row)
    if len(cache) >= _VERIFIED_MAX:
        cache.clear()
    cache[key] = verified
    return verified


#: Per runtime: the rule-set rows whose signature verified (see :func:`_verified`).
_VERIFIED = Attached[Runtime, dict[_VerifiedKey, StoredRuleSet]](lambda _rt: {})


def _verify_row(session: Session, rt: Runtime, row: RuleSetRow) -> StoredRuleSet:
    # 1 the key the token names is a version of the registry key, 2 the signature, 3 the
    # row says what was signed (id, version, bytes, hash, validFrom), 4 dev in production.
    kid = rule_set_kid(row.token)
    versions = key_service.platform_key_versions(session, rt, _PLATFORM_KEY)
    key = next((v.public_key for v in versions if v.kid == kid), None)
    if key is None:
        raise RuleSetSignatureInvalid("the rule set's key is not the registry's")
    rule_set = verify_rule_set(row.token, key).rule_set
    if (
        (rule_set.id, rule_set.version) != (row.id, row.version)
        or rule_set.canonical != row.document
        or rule_set.hash != row.hash
        or rule_set.valid_from != utc(row.valid_from)
    ):
        raise RuleSetSignatureInvalid("the stored rule set is not the one signed")
    _refuse_dev(rt, row.dev)
    return StoredRuleSet(_view(row, rule_set), rule_set)


def active_rule_set(
    session: Session, rt: Runtime, at: datetime, *, rule_set_id: str = DEFAULT_RULE_SET_ID
) -> StoredRuleSet:
    """The rule set in effect at ``at``: the highest version of ``rule_set_id`` whose
    ``validFrom`` ≤ ``at``, its signature verified.

    Raises :class:`RuleSetNotFound`, :class:`RuleSetSignatureInvalid` and
    :class:`DevRuleSetNotAllowed` (a development rule set read in production).
    """
    row = rules_store.active_row(session, rule_set_id, utc(at))
    if row is None:
        raise RuleSetNotFound(f"no rule set {rule_set_id} is in effect yet")
    return _verified(session, rt, row)


def get_rule_set(
    session: Session, rt: Runtime, rule_set_id: str, version: int | None = None
) -> StoredRuleSet:
    """One version of ``rule_set_id`` (the highest registered when ``version`` is
    ``None``, even if not in effect yet), its signature verified.

    Raises :class:`RuleSetNotFound`, :class:`RuleSetSignatureInvalid` and
    :class:`DevRuleSetNotAllowed`.
    """
    if version is None:
        version = rules_store.latest_version(session, rule_set_id)
    row = rules_store.version_row(session, rule_set_id, version) if version else None
    if row is None:
        raise RuleSetNotFound("no such rule set")
    return _verified(session, rt, row)


def list_rule_sets(session: Session, rt: Runtime) -> list[RuleSetView]:
    """Every registered rule set (every version), by id then version, each verified.

    Raises :class:`RuleSetSignatureInvalid` and :class:`DevRuleSetNotAllowed`.
    """
    return [_verified(session, rt, row).view for row in rules_store.list_rows(session)]


def rule_set_keys(session: Session, rt: Runtime) -> list[KeyVersion]:
    """Every version of the registry key (made on first use): what verifies the tokens.
    Raises what the key store raises."""
    return key_service.platform_key_versions(session, rt, _PLATFORM_KEY)


def dev_rule_set_document(*, valid_from: datetime, trusted_issuer: str) -> JsonObject:
    """The package's example rule set (``dev_rules.json``, the contract's example) in effect
    from ``valid_from``, with ``trusted_issuer`` as its one KYC issuer."""
    text = resources.files(__package__ or "").joinpath("dev_rules.json").read_text("utf-8")
    document: JsonObject = json.loads(text)
    document["validFrom"] = utc(valid_from).strftime(_INSTANT)
    document["kyc"] = {**document["kyc"], "trustedIssuers": [trusted_issuer]}
    return document


def register_dev_rule_set(session: Session, rt: Runtime, *, actor: str) -> RuleSetView | None:
    """Register the package's example rule set as the next version of its id, in effect
    from now (a development registration: no time lock; refused in production), unless the
    newest version already is that document.  Returns the view registered, or ``None``.

    Raises what :func:`register_rule_set` raises.
    """
    _refuse_dev(rt, True)
    now = rt.clock.now()
    document = dev_rule_set_document(valid_from=now, trusted_issuer=rt.settings.public_url)
    latest = rules_store.latest_version(session, str(document["id"]))
    if latest is not None:
        stored = get_rule_set(session, rt, str(document["id"]), latest).rule_set.document()
        if {**stored, "version": 0, "validFrom": ""} == {**document, "version": 0, "validFrom": ""}:
            return None
    document["version"] = (latest or 0) + 1
    return register_rule_set(session, rt, document, actor=actor, dev=True)
