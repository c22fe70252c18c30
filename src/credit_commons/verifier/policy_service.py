"""Verifier policies, stored: each verifier's policy versions, profiles and version floors.

A verifier (``owner``) is the platform's own (``platform``) or a lender's client id.  Each
policy (``policy_id``) has versions, each a JSON document (``verifier/policy_json.py``) with
the compliance profile it runs under; versions only grow, and a floor — which only
rises — names the oldest version a request may still be made under (seed 002 §5 step 10).
Administrators manage them (``/v1/verifier/policies``, ``commons verify policy``); each
change records ``verifier.policy_versioned`` or ``verifier.policy_floor_set``.  The
pipeline reads them with :func:`load_policy` (:func:`pinned_policy` for a transaction's
pinned version, parsed once per runtime) and :func:`check_policy_version`.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from credit_commons.core.attached import Attached
from credit_commons.core.clock import utc
from credit_commons.core.encoding import JsonObject, canonical_json
from credit_commons.core.errors import ConflictError, NotFoundError, ValidationError
from credit_commons.core.ids import new_id
from credit_commons.events import EventDetails, record_event
from credit_commons.identity import Principal, actor_of
from credit_commons.lenders import get_client
from credit_commons.runtime import Runtime
from credit_commons.verifier.models import PolicyFloorRow, PolicyVersionRow
from credit_commons.verifier.policy import Policy, check_version_floor
from credit_commons.verifier.policy_json import parse_policy, policy_document
from credit_commons.verifier.profiles import PROFILES, apply_profile
from credit_commons.verifier.schemas import PolicyView

__all__ = [
    "PLATFORM_VERIFIER",
    "LoadedPolicy",
    "PolicyFloorSet",
    "PolicyNotFound",
    "PolicyVersioned",
    "ProfileName",
    "add_policy_version",
    "check_policy_version",
    "create_policy",
    "get_policy",
    "list_policies",
    "load_policy",
    "pinned_policy",
    "set_policy_floor",
]

#: The owner name of the platform's own verifier.
PLATFORM_VERIFIER: Final = "platform"
ProfileName = Literal["default", "india-dpdp", "eu"]
_OWNER = re.compile(r"[A-Za-z0-9._-]{1,64}")


class PolicyNotFound(NotFoundError):
    """No such policy (or version) for this verifier."""

    code = "verifier.policy_not_found"
    title = "Policy not found"


class PolicyVersioned(EventDetails, event_type="verifier.policy_versioned"):
    """A verifier's policy gained a version (the owner and policy id behind the object)."""

    version: int
    profile: ProfileName


class PolicyFloorSet(EventDetails, event_type="verifier.policy_floor_set"):
    """A verifier's policy floor rose."""

    floor: int
    previous: int


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A stored policy version ready to evaluate: ``policy`` with its profile applied,
    the profile's name, and the policy's current floor."""

    policy: Policy
    profile: str
    floor: int


def _admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise NotFoundError("no such resource")


def _check_owner(session: Session, owner: str) -> None:
    if owner == PLATFORM_VERIFIER:
        return
    if (
        not isinstance(owner, str)
        or not _OWNER.fullmatch(owner)
        or get_client(session, owner) is None
    ):
        raise ValidationError("a policy's verifier is 'platform' or a lender's client id")


def _profile(name: str) -> ProfileName:
    if name not in PROFILES:
        raise ValidationError(f"no compliance profile {name!r} (known: {', '.join(PROFILES)})")
    return name  # type: ignore[return-value]


def _floor(session: Session, owner: str, policy_id: str) -> int:
    row = session.get(PolicyFloorRow, (owner, policy_id))
    return row.floor if row is not None else 1


def _view(session: Session, row: PolicyVersionRow) -> PolicyView:
    policy = parse_policy(row.document)
    effective = apply_profile(policy, row.profile)
    return PolicyView(
        owner=row.owner,
        policy_id=row.policy_id,
        version=row.version,
        profile=row.profile,
        document=policy_document(policy),
        effective=policy_document(effective),
        floor=_floor(session, row.owner, row.policy_id),
        created_at=utc(row.created_at).isoformat(),
    )


def _latest(session: Session, owner: str, policy_id: str) -> int:
    return (
        session.scalar(
            select(func.max(PolicyVersionRow.version)).where(
                PolicyVersionRow.owner == owner, PolicyVersionRow.policy_id == policy_id
            )
        )
        or 0
    )


def _store(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    owner: str,
    policy: Policy,
    profile: ProfileName,
) -> PolicyView:
    now = rt.clock.now()
    row = PolicyVersionRow(
        id=new_id("pol"),
        owner=owner,
        policy_id=policy.id,
        version=policy.version,
        profile=profile,
        document=canonical_json(policy_document(policy)).decode(),
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except DbIntegrityError as e:
        raise ConflictError("this policy version exists already") from e
    record_event(
        session,
        PolicyVersioned(version=policy.version, profile=profile),
        actor=actor_of(rt, principal),
        at=now,
        object=rt.objects.digest("verifier_policy", f"{owner}/{policy.id}"),
    )
    return _view(session, row)


def create_policy(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    owner: str,
    document: JsonObject | str,
    profile: str = "default",
) -> PolicyView:
    """Store a new policy for verifier ``owner`` (administrators): its first version is
    the document's.  Raises :class:`ValidationError` (``PolicyInvalid`` for the document)
    and :class:`ConflictError` when the policy exists already."""
    _admin(principal)
    _check_owner(session, owner)
    policy = parse_policy(document if isinstance(document, str) else json.dumps(document))
    if _latest(session, owner, policy.id):
        raise ConflictError("this policy exists already; add a version instead")
    return _store(session, rt, principal, owner=owner, policy=policy, profile=_profile(profile))


def add_policy_version(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    owner: str,
    policy_id: str,
    document: JsonObject | str,
    profile: str | None = None,
) -> PolicyView:
    """Add a version to a policy (administrators): the document names the same id and a
    higher version; the profile stays the previous version's unless given.

    Raises :class:`PolicyNotFound`, :class:`ValidationError` and :class:`ConflictError`
    (a version not above the latest).
    """
    _admin(principal)
    latest = _latest(session, owner, policy_id)
    if not latest:
        raise PolicyNotFound("no such policy")
    policy = parse_policy(document if isinstance(document, str) else json.dumps(document))
    if policy.id != policy_id:
        raise ValidationError("the document names another policy id")
    if policy.version <= latest:
        raise ConflictError(f"a new version must be above {latest}")
    previous = _row(session, owner, policy_id, latest)
    profile_ = _profile(profile or previous.profile)
    return _store(session, rt, principal, owner=owner, policy=policy, profile=profile_)


def _row(session: Session, owner: str, policy_id: str, version: int | None) -> PolicyVersionRow:
    wanted = version if version is not None else _latest(session, owner, policy_id)
    row = session.scalar(
        select(PolicyVersionRow).where(
            PolicyVersionRow.owner == owner,
            PolicyVersionRow.policy_id == policy_id,
            PolicyVersionRow.version == wanted,
        )
    )
    if row is None:
        raise PolicyNotFound("no such policy version")
    return row


def get_policy(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    owner: str,
    policy_id: str,
    version: int | None = None,
) -> PolicyView:
    """A policy version (the latest when ``version`` is not given), administrators only.
    Raises :class:`PolicyNotFound`."""
    del rt
    _admin(principal)
    return _view(session, _row(session, owner, policy_id, version))


def list_policies(
    session: Session, rt: Runtime, principal: Principal, *, owner: str | None = None
) -> list[PolicyView]:
    """The latest version of every policy (of ``owner`` when given), administrators only."""
    del rt
    _admin(principal)
    latest = select(
        PolicyVersionRow.owner,
        PolicyVersionRow.policy_id,
        func.max(PolicyVersionRow.version).label("version"),
    ).group_by(PolicyVersionRow.owner, PolicyVersionRow.policy_id)
    if owner is not None:
        latest = latest.where(PolicyVersionRow.owner == owner)
    heads = session.execute(latest.order_by(PolicyVersionRow.owner, PolicyVersionRow.policy_id))
    return [_view(session, _row(session, o, p, v)) for o, p, v in heads.all()]


def set_policy_floor(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    owner: str,
    policy_id: str,
    floor: int,
) -> PolicyView:
    """Raise a policy's version floor (administrators): requests made under an older
    version are denied from now on.  Raises :class:`PolicyNotFound`, and
    :class:`ConflictError` for a floor above the latest version or below the current one."""
    _admin(principal)
    latest = _latest(session, owner, policy_id)
    if not latest:
        raise PolicyNotFound("no such policy")
    current = _floor(session, owner, policy_id)
    if not current <= floor <= latest:
        raise ConflictError(f"the floor only rises, from {current} up to the latest {latest}")
    now = rt.clock.now()
    # The floor only rises, also against a concurrent change made after ``current`` was
    # read: the write is conditional on the stored floor (a compare-and-set), and a first
    # floor is an insert that the primary key lets only one writer make.
    try:
        with session.begin_nested():
            if session.get(PolicyFloorRow, (owner, policy_id)) is None:
                session.add(
                    PolicyFloorRow(owner=owner, policy_id=policy_id, floor=floor, updated_at=now)
                )
                session.flush()
            else:
                raised = session.execute(
                    update(PolicyFloorRow)
                    .where(
                        PolicyFloorRow.owner == owner,
                        PolicyFloorRow.policy_id == policy_id,
                        PolicyFloorRow.floor <= floor,
                    )
                    .values(floor=floor, updated_at=now)
                    .execution_options(synchronize_session="fetch")
                )
                if raised.rowcount != 1:  # type: ignore[attr-defined]
                    raise ConflictError("the floor rose concurrently above the one asked")
    except DbIntegrityError as e:
        raise ConflictError("the floor changed concurrently; try again") from e
    record_event(
        session,
        PolicyFloorSet(floor=floor, previous=current),
        actor=actor_of(rt, principal),
        at=now,
        object=rt.objects.digest("verifier_policy", f"{owner}/{policy_id}"),
    )
    return _view(session, _row(session, owner, policy_id, latest))


def load_policy(
    session: Session, owner: str, policy_id: str, version: int | None = None
) -> LoadedPolicy:
    """The stored policy version (latest when not given) with its profile applied, and
    the floor, for the pipeline.  Raises :class:`PolicyNotFound`."""
    row = _row(session, owner, policy_id, version)
    policy = apply_profile(parse_policy(row.document), row.profile)
    return LoadedPolicy(policy, row.profile, _floor(session, owner, policy_id))


class _Pinned:
    """This runtime's policy versions already parsed, with their profile applied."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.versions: dict[tuple[str, str, int], tuple[Policy, str]] = {}


_PINNED = Attached[Runtime, _Pinned](lambda rt: _Pinned())
_PINNED_MAX = 256


def pinned_policy(
    session: Session, rt: Runtime, owner: str, policy_id: str, version: int
) -> LoadedPolicy:
    """:func:`load_policy` for the version a transaction pinned: the version's parsed
    policy with its profile applied is kept per runtime — a stored version never changes
    (versions are only added: :func:`add_policy_version` refuses an existing one) — and
    the floor, which does, is read every time.  Raises :class:`PolicyNotFound`."""
    pinned = _PINNED(rt)
    key = (owner, policy_id, version)
    known = pinned.versions.get(key)
    if known is None:
        row = _row(session, owner, policy_id, version)
        known = (apply_profile(parse_policy(row.document), row.profile), row.profile)
        with pinned.lock:
            if len(pinned.versions) >= _PINNED_MAX:
                pinned.versions.clear()
            pinned.versions[key] = known
    policy, profile = known
    return LoadedPolicy(policy, profile, _floor(session, owner, policy_id))


def check_policy_version(session: Session, owner: str, policy_id: str, version: int) -> None:
    """Step 10 of the pipeline: refuse a request made under a policy version below the
    policy's floor.  Raises :class:`~credit_commons.verifier.policy.PolicyDenied`
    (``policy_version_downgrade``)."""
    check_version_floor(version, _floor(session, owner, policy_id))
