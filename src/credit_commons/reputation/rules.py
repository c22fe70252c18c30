"""Reputation rule sets: the signed, time-locked JSON that fixes how scores are computed, pure.

A rule set (seed 004 "rules-registry"; seed 002 §7 "Aura" rule logic) is one JSON object,
every key required and no other key accepted (docs/reputation.md, "Rule set")::

    {"id": "shg-rules", "version": 1, "validFrom": "2026-12-14T00:00:00Z", "timeLockDays": 7,
     "contexts": [...], "weights": {"alpha": "10", ...}, "caps": {...}, "budgets": {...},
     "decay": {...}, "epoch": {...}, "iterations": 3, "kyc": {...}, "adjudication": {...},
     "aura": {...}}

Decimal quantities are JSON strings with at most six decimals and become integer
micro-units (``"0.5"`` is ``500_000``), so every score computed from them is exact integer
arithmetic; counts are JSON integers.  Seed 002's guards are checked when a rule set is
parsed, each refused with its own error code: the Aura ``domain`` is not a bare ``*``, a
trailing-``*`` pattern is ``prefix:*`` with a prefix of at least three characters, the
purpose is stated, the output credential type is an ``https:`` or ``urn:`` identifier, tier
thresholds strictly increase, the diversity minimums name tiers, ``timeLockDays`` is at least
1 and ``iterations`` lies in 1..5.  The time lock itself (``validFrom`` at least
``timeLockDays`` after publication) needs the publication time: :func:`check_time_lock`.

The hash of a rule set is the SHA-256 (hex) of the RFC 8785 bytes of its JSON
(:func:`rule_set_hash`); every score names ``{"id", "version", "hash"}`` (:meth:`RuleSet.ref`).
The registry signs a rule set as a compact JWS, ``typ: reputation-rules+jwt``, whose payload is
``{"iss", "iat", "ruleSet": {...}}``, as the ZK registry signs its statements
(:func:`sign_rule_set`, :func:`verify_rule_set`; JWS is ``formats/jws.py`` over the keys
domain's Ed25519).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from credit_commons.core.encoding import JsonObject, canonical_json, sha256_hex
from credit_commons.core.errors import CommonsError
from credit_commons.formats.jws import (
    CompactJws,
    JwsInvalid,
    JwsSigner,
    SignatureVerifier,
    parse_compact,
    sign_compact,
)
from credit_commons.keys import ACCEPTED_ALGS
from credit_commons.reputation.rules_errors import (
    RuleSetDiversityUnknownTier,
    RuleSetDomainTooBroad,
    RuleSetInvalid,
    RuleSetIterationsOutOfRange,
    RuleSetNotFound,
    RuleSetOutputTypeInvalid,
    RuleSetPurposeMissing,
    RuleSetSignatureInvalid,
    RuleSetTiersNotIncreasing,
    RuleSetTimeLocked,
    RuleSetTimeLockInvalid,
)

__all__ = [
    "CTX_PATTERN",
    "MAX_RULE_SET_BYTES",
    "MICRO",
    "RULES_TYP",
    "Adjudication",
    "Aura",
    "Budgets",
    "Caps",
    "Collusion",
    "Decay",
    "EpochWindow",
    "Kyc",
    "RuleSet",
    "RuleSetDiversityUnknownTier",
    "RuleSetDomainTooBroad",
    "RuleSetInvalid",
    "RuleSetIterationsOutOfRange",
    "RuleSetNotFound",
    "RuleSetOutputTypeInvalid",
    "RuleSetPurposeMissing",
    "RuleSetSignatureInvalid",
    "RuleSetTiersNotIncreasing",
    "RuleSetTimeLockInvalid",
    "RuleSetTimeLocked",
    "SignedRuleSet",
    "Tier",
    "Weights",
    "check_time_lock",
    "domain_matches",
    "parse_rule_set",
    "rule_set_hash",
    "rule_set_kid",
    "select_active",
    "sign_rule_set",
    "verify_rule_set",
]

RULES_TYP: Final = "reputation-rules+jwt"
#: One unit in micro-units: decimal quantities are integers of millionths.
MICRO: Final = 1_000_000
#: A rule set's JSON (RFC 8785 bytes) is at most this large; its token a little more.
MAX_RULE_SET_BYTES: Final = 32 * 1024
_MAX_TOKEN_CHARS: Final = 64 * 1024
#: An event's ``ctx`` (docs/reputation.md): a name and up to two ``:``-separated segments.
CTX_PATTERN: Final = r"^[a-z][a-z0-9_-]{0,31}(:[a-z0-9_-]{1,32}){0,2}$"
_CTX = re.compile(CTX_PATTERN).fullmatch
_ID = re.compile(r"[a-z][a-z0-9_-]{2,63}").fullmatch
_TIER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}").fullmatch
# At most twelve integer digits and six decimals: every value fits a 64-bit micro integer.
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,6}))?").fullmatch
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z").fullmatch
_OUTPUT_TYPE = re.compile(r"(https://[^\s/?#]+[^\s]*|urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+)")
_MAX_COUNT: Final = 10**9
_MAX_TEXT: Final = 512
_MAX_LIST: Final = 64
_MIN_DOMAIN_PREFIX: Final = 3
_MAX_ITERATIONS: Final = 5
_RESERVED_IDS: Final = frozenset({"active", "jwks"})


@dataclass(frozen=True, slots=True)
class Weights:
    """Seed 004's α β γ δ τ, in micro-units."""

    alpha: int
    beta: int
    gamma: int
    delta: int
    tau: int


@dataclass(frozen=True, slots=True)
class Caps:
    """The clip of a voucher's score (micro), of attestations and of tenure (days)."""

    voucher_score: int
    attestations: int
    tenure_days: int


@dataclass(frozen=True, slots=True)
class Budgets:
    """Accepted events per sender, context and epoch (non-rollover)."""

    vouches_per_epoch: int
    reports_per_epoch: int


@dataclass(frozen=True, slots=True)
class Decay:
    """An event's weight halves every ``half_life_days``."""

    half_life_days: int


@dataclass(frozen=True, slots=True)
class EpochWindow:
    """How old, and how far in the future, an event's ``issuedAt`` may be (seconds)."""

    max_event_age_seconds: int
    max_future_skew_seconds: int


@dataclass(frozen=True, slots=True)
class Kyc:
    """The credential types and issuers that unlock outbound vouching."""

    credential_types: tuple[str, ...]
    trusted_issuers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Adjudication:
    """Reports count once ``report_quorum`` distinct reporters made one in the window."""

    report_quorum: int
    report_window_days: int


@dataclass(frozen=True, slots=True)
class Collusion:
    """Seed 002's top-2 concentration penalty: threshold and multiplier, in micro-units."""

    top2_threshold: int
    multiplier: int


@dataclass(frozen=True, slots=True)
class Tier:
    """A named tier reached at ``min_score`` (micro-units)."""

    name: str
    min_score: int


@dataclass(frozen=True, slots=True)
class Aura:
    """Seed 002 §7's rule logic: per-counterparty cap and decay exponent (micro), collusion
    penalty, tiers (strictly increasing), diversity minimums per tier name (sorted pairs),
    the output credential type, the tier that earns it, the domain pattern and purpose."""

    per_counterparty_cap: int
    per_counterparty_decay_exponent: int
    collusion: Collusion
    tiers: tuple[Tier, ...]
    diversity: tuple[tuple[str, int], ...]
    output_credential_type: str
    min_tier_for_credential: str
    domain: str
    purpose: str

    def diversity_minimum(self, tier: str) -> int:
        """The distinct vouchers ``tier`` needs (0 when the rule set names no minimum)."""
        return dict(self.diversity).get(tier, 0)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A parsed rule set; ``canonical`` is the RFC 8785 bytes of its JSON, ``hash`` their
    SHA-256 (hex).  Build one with :func:`parse_rule_set`."""

    id: str
    version: int
    valid_from: datetime
    time_lock_days: int
    contexts: tuple[str, ...]
    weights: Weights
    caps: Caps
    budgets: Budgets
    decay: Decay
    epoch: EpochWindow
    iterations: int
    kyc: Kyc
    adjudication: Adjudication
    aura: Aura
    canonical: bytes
    hash: str

    def document(self) -> JsonObject:
        """The rule set's JSON, as it was given (and hashed)."""
        loaded: JsonObject = json.loads(self.canonical)
        return loaded

    def ref(self) -> JsonObject:
        """What a score names its rule set by: ``{"id", "version", "hash"}``."""
        return {"id": self.id, "version": self.version, "hash": self.hash}


# -- parsing ---------------------------------------------------------------------------


def _object(value: Any, field: str, keys: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RuleSetInvalid(field or "/", "must be a JSON object")
    wanted = set(keys)
    unknown = sorted(set(value) - wanted)
    if unknown:
        raise RuleSetInvalid(f"{field}/{unknown[0]}", "unknown key")
    missing = sorted(wanted - set(value))
    if missing:
        raise RuleSetInvalid(f"{field}/{missing[0]}", "required")
    return value


def _count(value: Any, field: str, minimum: int = 0, maximum: int = _MAX_COUNT) -> int:
    if type(value) is not int:
        raise RuleSetInvalid(field, "must be an integer")
    if not minimum <= value <= maximum:
        raise RuleSetInvalid(field, f"must lie in {minimum}..{maximum}")
    return value


def _micro(value: Any, field: str, maximum: int | None = None) -> int:
    """A decimal string with at most six decimals, as integer micro-units."""
    matched = _DECIMAL(value) if isinstance(value, str) else None
    if matched is None:
        raise RuleSetInvalid(field, "must be a decimal string with at most 6 decimals")
    whole, fraction = matched.group(1), matched.group(2) or ""
    micro = int(whole) * MICRO + int(fraction.ljust(6, "0"))
    if maximum is not None and micro > maximum:
        raise RuleSetInvalid(field, f"must be at most {maximum / MICRO:g}")
    return micro


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise RuleSetInvalid(field, f"must be a string of at most {_MAX_TEXT} characters")
    return value


def _texts(value: Any, field: str, check: Callable[[str], object] | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= _MAX_LIST:
        raise RuleSetInvalid(field, f"must be a list of 1..{_MAX_LIST} strings")
    items = tuple(_text(v, f"{field}/{i}") for i, v in enumerate(value))
    for i, item in enumerate(items):
        if not item.strip() or (check is not None and not check(item)):
            raise RuleSetInvalid(f"{field}/{i}", "not an acceptable value")
    if len(set(items)) != len(items):
        raise RuleSetInvalid(field, "repeats a value")
    return items


def _instant(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not _INSTANT(value):
        raise RuleSetInvalid(field, "must be a UTC time YYYY-MM-DDThh:mm:ssZ")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as e:
        raise RuleSetInvalid(field, "is not a calendar time") from e


def _check_domain(domain: str) -> None:
    """Seed 002 §7 ``isDomainPatternValid``, with the contract's stricter prefix rule: the
    namespace before the first ``:`` has at least three characters."""
    field = "/aura/domain"
    if not domain.strip():
        raise RuleSetDomainTooBroad(field, "is empty")
    if domain == "*":
        raise RuleSetDomainTooBroad(field, "a bare * is forbidden")
    if domain.endswith("*"):
        prefix = domain[:-1]
        if not prefix.endswith(":"):
            raise RuleSetDomainTooBroad(field, "a * pattern must be namespaced: prefix:*")
        namespace = prefix.split(":", 1)[0]
        if len(namespace) < _MIN_DOMAIN_PREFIX:
            raise RuleSetDomainTooBroad(
                field, f"the prefix must have at least {_MIN_DOMAIN_PREFIX} characters"
            )
        # The prefix is a context name with room for one more segment (contexts have three).
        if not _CTX(prefix[:-1]) or prefix.count(":") > 2:
            raise RuleSetDomainTooBroad(field, "the prefix is not a context name")
    elif not _CTX(domain):
        raise RuleSetDomainTooBroad(field, "is neither a context name nor prefix:*")


def domain_matches(pattern: str, ctx: str) -> bool:
    """Whether ``ctx`` lies in a (valid) domain ``pattern``: equal to it, or below its
    ``prefix:`` when it ends in ``*``."""
    if pattern.endswith(":*"):
        return ctx.startswith(pattern[:-1]) and len(ctx) > len(pattern) - 1
    return ctx == pattern


_TOP_KEYS: Final = (
    "id", "version", "validFrom", "timeLockDays", "contexts", "weights", "caps", "budgets",
    "decay", "epoch", "iterations", "kyc", "adjudication", "aura",
)  # fmt: skip
_AURA_KEYS: Final = (
    "perCounterpartyCap", "perCounterpartyDecayExponent", "collusion", "tiers", "diversity",
    "outputCredentialType", "minTierForCredential", "domain", "purpose",
)  # fmt: skip


def _tiers(value: Any) -> tuple[Tier, ...]:
    field = "/aura/tiers"
    if not isinstance(value, list) or not 1 <= len(value) <= _MAX_LIST:
        raise RuleSetInvalid(field, f"must be a list of 1..{_MAX_LIST} tiers")
    tiers = []
    for i, item in enumerate(value):
        tier = _object(item, f"{field}/{i}", ("name", "minScore"))
        name = tier["name"]
        if not isinstance(name, str) or not _TIER_NAME(name):
            raise RuleSetInvalid(f"{field}/{i}/name", "must match [a-z][a-z0-9_-]{0,31}")
        tiers.append(Tier(name, _micro(tier["minScore"], f"{field}/{i}/minScore")))
    for i in range(1, len(tiers)):
        if tiers[i].min_score <= tiers[i - 1].min_score:
            raise RuleSetTiersNotIncreasing(f"{field}/{i}/minScore", "must exceed the previous")
    if len({t.name for t in tiers}) != len(tiers):
        raise RuleSetTiersNotIncreasing(field, "a tier name repeats")
    return tuple(tiers)


def _aura(value: Any) -> Aura:
    aura = _object(value, "/aura", _AURA_KEYS)
    collusion = _object(aura["collusion"], "/aura/collusion", ("top2Threshold", "multiplier"))
    tiers = _tiers(aura["tiers"])
    names = {t.name for t in tiers}
    diversity_doc = aura["diversity"]
    if not isinstance(diversity_doc, Mapping):
        raise RuleSetInvalid("/aura/diversity", "must be a JSON object")
    diversity = []
    for name, minimum in sorted(diversity_doc.items()):
        if name not in names:
            raise RuleSetDiversityUnknownTier(f"/aura/diversity/{name}", "names no tier")
        diversity.append((name, _count(minimum, f"/aura/diversity/{name}")))
    min_tier = _text(aura["minTierForCredential"], "/aura/minTierForCredential")
    if min_tier not in names:
        raise RuleSetDiversityUnknownTier("/aura/minTierForCredential", "names no tier")
    output = aura["outputCredentialType"]
    if not isinstance(output, str) or len(output) > _MAX_TEXT or not _OUTPUT_TYPE.fullmatch(output):
        raise RuleSetOutputTypeInvalid(
            "/aura/outputCredentialType", "must be a non-empty https: or urn: identifier"
        )
    domain = _text(aura["domain"], "/aura/domain")
    _check_domain(domain)
    purpose = _text(aura["purpose"], "/aura/purpose")
    if not purpose.strip():
        raise RuleSetPurposeMissing("/aura/purpose", "must state the rule's purpose")
    return Aura(
        per_counterparty_cap=_count(aura["perCounterpartyCap"], "/aura/perCounterpartyCap", 1),
        # q = avg·n^(1−e): an exponent above 1 would make more vouches from one voucher count less.
        per_counterparty_decay_exponent=_micro(
            aura["perCounterpartyDecayExponent"], "/aura/perCounterpartyDecayExponent", MICRO
        ),
        collusion=Collusion(
            # top2 ≤ Σq always: a threshold above 1 could never apply, and 0 always would.
            top2_threshold=_positive_fraction(collusion["top2Threshold"]),
            multiplier=_micro(collusion["multiplier"], "/aura/collusion/multiplier", MICRO),
        ),
        tiers=tiers,
        diversity=tuple(diversity),
        output_credential_type=output,
        min_tier_for_credential=min_tier,
        domain=domain,
        purpose=purpose,
    )


def _positive_fraction(value: Any) -> int:
    field = "/aura/collusion/top2Threshold"
    micro = _micro(value, field, MICRO)
    if micro == 0:
        raise RuleSetInvalid(field, "must be above 0")
    return micro


def parse_rule_set(document: Any) -> RuleSet:
    """Parse and check a rule-set document (every guard but the time lock, which needs the
    publication time: :func:`check_time_lock`).

    Raises :class:`RuleSetInvalid` (``extra["field"]`` names the field), or one of its
    subclasses for a seed 002 guard: :class:`RuleSetDomainTooBroad`,
    :class:`RuleSetPurposeMissing`, :class:`RuleSetOutputTypeInvalid`,
    :class:`RuleSetTiersNotIncreasing`, :class:`RuleSetDiversityUnknownTier`,
    :class:`RuleSetTimeLockInvalid`, :class:`RuleSetIterationsOutOfRange`.
    """
    doc = _object(document, "", _TOP_KEYS)
    rule_id = doc["id"]
    # The registry's URLs name these (GET /v1/rules/active, GET /v1/rules/jwks).
    if not isinstance(rule_id, str) or not _ID(rule_id) or rule_id in _RESERVED_IDS:
        raise RuleSetInvalid("/id", "must match [a-z][a-z0-9_-]{2,63}, not active or jwks")
    time_lock = doc["timeLockDays"]
    if type(time_lock) is int and time_lock < 1:
        raise RuleSetTimeLockInvalid("/timeLockDays", "must be at least 1 day")
    iterations = doc["iterations"]
    if type(iterations) is int and not 1 <= iterations <= _MAX_ITERATIONS:
        raise RuleSetIterationsOutOfRange("/iterations", f"must lie in 1..{_MAX_ITERATIONS}")
    weights = _object(doc["weights"], "/weights", ("alpha", "beta", "gamma", "delta", "tau"))
    caps = _object(doc["caps"], "/caps", ("voucherScore", "attestations", "tenureDays"))
    budgets = _object(doc["budgets"], "/budgets", ("vouchesPerEpoch", "reportsPerEpoch"))
    decay = _object(doc["decay"], "/decay", ("halfLifeDays",))
    epoch = _object(doc["epoch"], "/epoch", ("maxEventAgeSeconds", "maxFutureSkewSeconds"))
    kyc = _object(doc["kyc"], "/kyc", ("credentialTypes", "trustedIssuers"))
    adjudication = _object(
        doc["adjudication"], "/adjudication", ("reportQuorum", "reportWindowDays")
    )
    aura = _aura(doc["aura"])
    canonical = canonical_json(dict(doc))
    if len(canonical) > MAX_RULE_SET_BYTES:
        raise RuleSetInvalid("/", f"a rule set is at most {MAX_RULE_SET_BYTES} bytes")
    return RuleSet(
        id=rule_id,
        version=_count(doc["version"], "/version", 1),
        valid_from=_instant(doc["validFrom"], "/validFrom"),
        time_lock_days=_count(time_lock, "/timeLockDays", 1, 3650),
        contexts=_texts(doc["contexts"], "/contexts", _CTX),
        weights=Weights(*(_micro(weights[k], f"/weights/{k}") for k in Weights.__slots__)),
        caps=Caps(
            voucher_score=_micro(caps["voucherScore"], "/caps/voucherScore"),
            attestations=_count(caps["attestations"], "/caps/attestations"),
            # T divides by tenureDays: zero would be a division by zero in every scorer.
            tenure_days=_count(caps["tenureDays"], "/caps/tenureDays", 1, 36500),
        ),
        budgets=Budgets(
            _count(budgets["vouchesPerEpoch"], "/budgets/vouchesPerEpoch"),
            _count(budgets["reportsPerEpoch"], "/budgets/reportsPerEpoch"),
        ),
        decay=Decay(_count(decay["halfLifeDays"], "/decay/halfLifeDays", 1, 36500)),
        epoch=EpochWindow(
            _count(epoch["maxEventAgeSeconds"], "/epoch/maxEventAgeSeconds", 1),
            _count(epoch["maxFutureSkewSeconds"], "/epoch/maxFutureSkewSeconds"),
        ),
        iterations=_count(iterations, "/iterations", 1, _MAX_ITERATIONS),
        kyc=Kyc(
            _texts(kyc["credentialTypes"], "/kyc/credentialTypes"),
            _texts(kyc["trustedIssuers"], "/kyc/trustedIssuers"),
        ),
        adjudication=Adjudication(
            _count(adjudication["reportQuorum"], "/adjudication/reportQuorum", 1),
            _count(adjudication["reportWindowDays"], "/adjudication/reportWindowDays", 1, 36500),
        ),
        aura=aura,
        canonical=canonical,
        hash=sha256_hex(canonical),
    )


def rule_set_hash(rule_set: RuleSet) -> str:
    """SHA-256 (hex) of the RFC 8785 bytes of the rule set's JSON: what scores name."""
    return sha256_hex(rule_set.canonical)


def check_time_lock(rule_set: RuleSet, published_at: datetime, promised_days: int = 0) -> None:
    """Refuse a rule set that would take effect before its time lock: ``validFrom`` must be
    at least ``timeLockDays`` after ``published_at`` — or ``promised_days`` after it, when
    that is longer: the notice the rule set in effect promises (a new version cannot shorten
    the notice of its own coming into force).  Raises :class:`RuleSetTimeLocked`."""
    days = max(rule_set.time_lock_days, promised_days)
    earliest = published_at + timedelta(days=days)
    if rule_set.valid_from < earliest:
        raise RuleSetTimeLocked(
            f"validFrom must be at or after {earliest.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
            f" ({days} days of notice)",
            extra={"field": "/validFrom"},
        )


def select_active(rule_sets: Iterable[RuleSet], at: datetime) -> RuleSet:
    """Of ``rule_sets`` (one id), the highest version whose ``validFrom`` ≤ ``at``.

    Raises :class:`RuleSetNotFound` when none is in effect yet.
    """
    effective = [r for r in rule_sets if r.valid_from <= at]
    if not effective:
        raise RuleSetNotFound("no rule set is in effect at that time")
    return max(effective, key=lambda r: r.version)


# -- signing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedRuleSet:
    """A rule set with its registry signature's issuer and time."""

    rule_set: RuleSet
    iss: str
    iat: int


def sign_rule_set(rule_set: RuleSet, *, iss: str, iat: int, signer: JwsSigner, kid: str) -> str:
    """The compact JWS of ``rule_set`` (``typ: reputation-rules+jwt``) signed by ``signer``."""
    payload = {"iss": iss, "iat": iat, "ruleSet": rule_set.document()}
    return sign_compact({"typ": RULES_TYP, "kid": kid}, payload, signer)


def _parsed_token(token: str) -> CompactJws:
    try:
        return parse_compact(
            token, algs=ACCEPTED_ALGS, max_chars=_MAX_TOKEN_CHARS, decode_payload=False
        )
    except JwsInvalid as e:
        raise RuleSetSignatureInvalid("the rule set is not an acceptable JWS") from e


def rule_set_kid(token: str) -> str:
    """The ``kid`` a rule-set token names (to find the registry key's version).

    Raises :class:`RuleSetSignatureInvalid` for a token that is not a JWS with one.
    """
    kid = _parsed_token(token).header.get("kid")
    if not isinstance(kid, str):
        raise RuleSetSignatureInvalid("the rule set names no key")
    return kid


def verify_rule_set(token: str, key: SignatureVerifier, *, iss: str | None = None) -> SignedRuleSet:
    """Verify a rule-set token under the registry ``key``: 1 a compact JWS with an allowed
    ``alg`` and no embedded key, 2 ``typ``, 3 the signature, 4 ``iss``, 5 the rule set.

    Raises :class:`RuleSetSignatureInvalid` (steps 1-4) or :class:`RuleSetInvalid`.
    """
    jws = _parsed_token(token)
    if jws.header.get("typ") != RULES_TYP:
        raise RuleSetSignatureInvalid(f"the JWS typ is not {RULES_TYP}")
    try:
        jws.verify(key)
        payload = jws.payload
    except (CommonsError, JwsInvalid) as e:
        raise RuleSetSignatureInvalid("the rule set signature does not verify") from e
    if iss is not None and payload.get("iss") != iss:
        raise RuleSetSignatureInvalid("the rule set was not signed by this registry")
    iat = payload.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise RuleSetSignatureInvalid("the rule set has no signing time")
    issuer = payload.get("iss")
    if not isinstance(issuer, str):
        raise RuleSetSignatureInvalid("the rule set names no issuer")
    return SignedRuleSet(parse_rule_set(payload.get("ruleSet")), issuer, iat)
