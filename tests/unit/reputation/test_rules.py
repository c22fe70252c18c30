"""Reputation rule sets, pure: the contract's example parses to exact micro-units; every
missing or unknown key is refused; each seed 002 guard is refused with its own code, beside a
sibling one step over the boundary that is accepted; the time lock to the second; the signed
token's negative cases (another key, another ``typ``, a flipped bit, an edited payload)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

from credit_commons.core.encoding import b64url_decode, b64url_encode, canonical_json, sha256_hex
from credit_commons.formats.jws import sign_compact
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.reputation.rules import (
    MICRO,
    RuleSet,
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
    check_time_lock,
    domain_matches,
    parse_rule_set,
    rule_set_hash,
    rule_set_kid,
    select_active,
    sign_rule_set,
    verify_rule_set,
)


def document() -> dict[str, Any]:
    """The contract's example (the package's dev rule set)."""
    text = resources.files("credit_commons.reputation").joinpath("dev_rules.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def changed(path: str, value: Any) -> dict[str, Any]:
    """The example with the member at ``path`` (``a/b/0/c``) set to ``value``, or removed
    when ``value`` is :data:`REMOVE`."""
    doc = copy.deepcopy(document())
    *parents, last = path.split("/")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is REMOVE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


REMOVE = object()


def test_the_example_parses_to_micro_units() -> None:
    rules = parse_rule_set(document())
    assert (rules.id, rules.version, rules.iterations) == ("shg-rules", 1, 3)
    assert rules.valid_from == datetime(2026, 12, 14, tzinfo=UTC)
    assert rules.weights.alpha == 10 * MICRO
    assert rules.weights.tau == 4 * MICRO
    assert rules.caps.voucher_score == 100 * MICRO
    assert (rules.caps.attestations, rules.caps.tenure_days) == (5, 365)
    assert rules.aura.per_counterparty_decay_exponent == 500_000
    assert rules.aura.collusion.top2_threshold == 800_000
    assert rules.aura.collusion.multiplier == 500_000
    assert [(t.name, t.min_score) for t in rules.aura.tiers] == [
        ("bronze", 0), ("silver", 25 * MICRO), ("gold", 60 * MICRO)
    ]  # fmt: skip
    assert rules.aura.diversity_minimum("gold") == 5
    assert rules.aura.diversity_minimum("bronze") == 0
    assert rules.contexts == ("general", "commerce", "shg:savings")
    assert rules.document() == document()
    assert rules.ref() == {"id": "shg-rules", "version": 1, "hash": rules.hash}


def test_the_hash_is_sha256_of_the_jcs_bytes_and_ignores_key_order() -> None:
    rules = parse_rule_set(document())
    assert rule_set_hash(rules) == rules.hash == sha256_hex(canonical_json(document()))
    shuffled = dict(reversed(list(document().items())))
    assert parse_rule_set(shuffled).hash == rules.hash
    assert parse_rule_set(changed("weights/alpha", "10.5")).hash != rules.hash


@pytest.mark.parametrize(
    ("text", "micro"),
    [("0", 0), ("1", MICRO), ("0.000001", 1), ("2.5", 2_500_000), ("999999999999.999999",
     999_999_999_999_999_999)],
)  # fmt: skip
def test_decimals_become_exact_micro_units(text: str, micro: int) -> None:
    assert parse_rule_set(changed("weights/beta", text)).weights.beta == micro


@pytest.mark.parametrize(
    "text",
    ["0.0000001", "1e3", "-1", "+1", "01", ".5", "5.", " 5", "1_000", "1000000000000", "NaN"],
)
def test_decimals_beyond_six_places_or_not_plain_are_refused(text: str) -> None:
    with pytest.raises(RuleSetInvalid) as e:
        parse_rule_set(changed("weights/beta", text))
    assert e.value.extra == {"field": "/weights/beta"}
    assert e.value.code == "reputation.rules_invalid"


@pytest.mark.parametrize("value", [5, 5.0, None, ["5"]])
def test_a_decimal_must_be_a_string(value: Any) -> None:
    with pytest.raises(RuleSetInvalid):
        parse_rule_set(changed("weights/gamma", value))


@pytest.mark.parametrize("value", ["5", 5.0, True, -1, None])
def test_a_count_must_be_a_non_negative_integer(value: Any) -> None:
    with pytest.raises(RuleSetInvalid) as e:
        parse_rule_set(changed("budgets/vouchesPerEpoch", value))
    assert e.value.extra == {"field": "/budgets/vouchesPerEpoch"}


MEMBERS = [
    "id", "version", "validFrom", "timeLockDays", "contexts", "weights", "weights/alpha",
    "weights/tau", "caps/voucherScore", "caps/attestations", "caps/tenureDays",
    "budgets/vouchesPerEpoch", "budgets/reportsPerEpoch", "decay/halfLifeDays",
    "epoch/maxEventAgeSeconds", "epoch/maxFutureSkewSeconds", "iterations",
    "kyc/credentialTypes", "kyc/trustedIssuers", "adjudication/reportQuorum",
    "adjudication/reportWindowDays", "aura", "aura/perCounterpartyCap",
    "aura/perCounterpartyDecayExponent", "aura/collusion/top2Threshold",
    "aura/collusion/multiplier", "aura/tiers", "aura/tiers/1/minScore", "aura/diversity",
    "aura/outputCredentialType", "aura/minTierForCredential", "aura/domain", "aura/purpose",
]  # fmt: skip


@pytest.mark.parametrize("path", MEMBERS)
def test_every_member_is_required(path: str) -> None:
    with pytest.raises(RuleSetInvalid) as e:
        parse_rule_set(changed(path, REMOVE))
    assert e.value.extra == {"field": "/" + path}
    assert type(e.value) is RuleSetInvalid


@pytest.mark.parametrize(
    "path", ["extra", "weights/epsilon", "aura/collusion/floor", "aura/tiers/0/label", "kyc/x"]
)
def test_unknown_members_are_refused(path: str) -> None:
    with pytest.raises(RuleSetInvalid) as e:
        parse_rule_set(changed(path, 1))
    assert e.value.extra == {"field": "/" + path}


@pytest.mark.parametrize("value", [None, [], "rules", 1])
def test_a_rule_set_is_an_object(value: Any) -> None:
    with pytest.raises(RuleSetInvalid):
        parse_rule_set(value)


# -- seed 002 guards, each with a sibling one step over the boundary --------------------


@pytest.mark.parametrize("domain", ["*", "abc*", "shg*", "ab:*", "a:*", ":*", "", " ", "shg:*x",
                                    "Shg:*", "shg:a:b:*", "sh g"])  # fmt: skip
def test_broad_or_malformed_domains_are_refused(domain: str) -> None:
    with pytest.raises(RuleSetDomainTooBroad) as e:
        parse_rule_set(changed("aura/domain", domain))
    assert e.value.code == "reputation.rules_domain_too_broad"
    assert e.value.extra == {"field": "/aura/domain"}


@pytest.mark.parametrize("domain", ["abc:*", "shg:savings:*", "shg:savings", "general", "ab"])
def test_namespaced_domains_with_three_character_prefixes_are_accepted(domain: str) -> None:
    assert parse_rule_set(changed("aura/domain", domain)).aura.domain == domain


def test_domain_matching() -> None:
    assert domain_matches("shg:*", "shg:savings")
    assert domain_matches("shg:*", "shg:savings:weekly")
    assert not domain_matches("shg:*", "shg")
    assert not domain_matches("shg:*", "shgx:savings")
    assert domain_matches("general", "general")
    assert not domain_matches("general", "general:x")


@pytest.mark.parametrize("purpose", ["", "   ", "\n\t"])
def test_a_purpose_must_be_stated(purpose: str) -> None:
    with pytest.raises(RuleSetPurposeMissing) as e:
        parse_rule_set(changed("aura/purpose", purpose))
    assert e.value.code == "reputation.rules_purpose_missing"


def test_a_one_character_purpose_is_stated() -> None:
    assert parse_rule_set(changed("aura/purpose", "x")).aura.purpose == "x"


@pytest.mark.parametrize(
    "vct", ["", "https://", "http://credit-commons.dev/vct/x", "urn:", "urn:x", "ftp://a/b",
            "https://a b", "community-tier", 7]
)  # fmt: skip
def test_an_output_type_must_be_https_or_urn(vct: Any) -> None:
    with pytest.raises(RuleSetOutputTypeInvalid) as e:
        parse_rule_set(changed("aura/outputCredentialType", vct))
    assert e.value.code == "reputation.rules_output_type_invalid"


@pytest.mark.parametrize("vct", ["https://a", "urn:x:y", "urn:example:community-tier:v1"])
def test_the_smallest_https_and_urn_output_types_are_accepted(vct: str) -> None:
    assert parse_rule_set(changed("aura/outputCredentialType", vct)).aura.output_credential_type


@pytest.mark.parametrize(("silver", "index"), [("0", 1), ("60", 2), ("61", 2)])
def test_tiers_must_strictly_increase(silver: str, index: int) -> None:
    with pytest.raises(RuleSetTiersNotIncreasing) as e:
        parse_rule_set(changed("aura/tiers/1/minScore", silver))
    assert e.value.code == "reputation.rules_tiers_not_increasing"
    assert e.value.extra == {"field": f"/aura/tiers/{index}/minScore"}


@pytest.mark.parametrize("silver", ["0.000001", "59.999999"])
def test_tiers_one_micro_unit_apart_are_increasing(silver: str) -> None:
    parse_rule_set(changed("aura/tiers/1/minScore", silver))


def test_a_repeated_tier_name_is_refused() -> None:
    with pytest.raises(RuleSetTiersNotIncreasing):
        parse_rule_set(changed("aura/tiers/2/name", "bronze"))


def test_diversity_must_name_tiers() -> None:
    with pytest.raises(RuleSetDiversityUnknownTier) as e:
        parse_rule_set(changed("aura/diversity", {"silver": 2, "platinum": 5}))
    assert e.value.code == "reputation.rules_diversity_unknown_tier"
    assert parse_rule_set(changed("aura/diversity", {"silver": 2, "bronze": 0}))
    assert parse_rule_set(changed("aura/diversity", {})).aura.diversity == ()


def test_the_credential_tier_must_be_a_tier() -> None:
    with pytest.raises(RuleSetDiversityUnknownTier):
        parse_rule_set(changed("aura/minTierForCredential", "platinum"))
    assert parse_rule_set(changed("aura/minTierForCredential", "gold"))


def test_the_time_lock_is_at_least_one_day() -> None:
    with pytest.raises(RuleSetTimeLockInvalid) as e:
        parse_rule_set(changed("timeLockDays", 0))
    assert e.value.code == "reputation.rules_time_lock_invalid"
    assert parse_rule_set(changed("timeLockDays", 1)).time_lock_days == 1


@pytest.mark.parametrize("iterations", [0, 6, -1])
def test_iterations_lie_in_one_to_five(iterations: int) -> None:
    with pytest.raises(RuleSetIterationsOutOfRange) as e:
        parse_rule_set(changed("iterations", iterations))
    assert e.value.code == "reputation.rules_iterations_out_of_range"


@pytest.mark.parametrize("iterations", [1, 5])
def test_iterations_at_the_bounds_are_accepted(iterations: int) -> None:
    assert parse_rule_set(changed("iterations", iterations)).iterations == iterations


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("aura/collusion/top2Threshold", "0"),
        ("aura/collusion/top2Threshold", "1.000001"),
        ("aura/collusion/multiplier", "1.000001"),
        ("aura/perCounterpartyDecayExponent", "1.000001"),
        ("aura/perCounterpartyCap", 0),
        ("caps/tenureDays", 0),
        ("decay/halfLifeDays", 0),
        ("adjudication/reportQuorum", 0),
        ("version", 0),
        ("contexts", []),
        ("contexts", ["general", "general"]),
        ("contexts", ["General"]),
        ("contexts", ["a:b:c:d"]),
        ("kyc/credentialTypes", []),
        ("kyc/trustedIssuers", [""]),
        ("id", "ab"),
        ("id", "Shg-rules"),
        ("id", "active"),
        ("id", "jwks"),
        ("validFrom", "2026-12-14T00:00:00+00:00"),
        ("validFrom", "2026-02-30T00:00:00Z"),
        ("validFrom", "2026-12-14T00:00:00.5Z"),
    ],
)
def test_out_of_range_values_are_refused(path: str, value: Any) -> None:
    with pytest.raises(RuleSetInvalid) as e:
        parse_rule_set(changed(path, value))
    assert e.value.extra == {"field": "/" + path} or e.value.extra["field"].startswith("/" + path)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("aura/collusion/top2Threshold", "0.000001"),
        ("aura/collusion/top2Threshold", "1"),
        ("aura/collusion/multiplier", "1"),
        ("aura/collusion/multiplier", "0"),
        ("aura/perCounterpartyDecayExponent", "1"),
        ("aura/perCounterpartyCap", 1),
        ("caps/tenureDays", 1),
        ("decay/halfLifeDays", 1),
        ("adjudication/reportQuorum", 1),
        ("version", 1),
        ("contexts", ["a:b:c"]),
        ("id", "abc"),
    ],
)
def test_values_at_the_bounds_are_accepted(path: str, value: Any) -> None:
    parse_rule_set(changed(path, value))


# -- the time lock (at registration) ------------------------------------------------------


def test_valid_from_at_the_time_lock_is_accepted_and_one_second_before_refused() -> None:
    rules = parse_rule_set(document())  # validFrom 2026-12-14T00:00:00Z, 7 days
    published = datetime(2026, 12, 7, tzinfo=UTC)
    check_time_lock(rules, published)
    check_time_lock(rules, published - timedelta(days=30))
    with pytest.raises(RuleSetTimeLocked) as e:
        check_time_lock(rules, published + timedelta(seconds=1))
    assert e.value.code == "reputation.rules_time_locked"
    assert e.value.extra == {"field": "/validFrom"}


def _version(version: int, valid_from: str) -> RuleSet:
    doc = document()
    doc.update(version=version, validFrom=valid_from)
    return parse_rule_set(doc)


def test_the_active_rule_set_is_the_highest_version_in_effect() -> None:
    v1 = _version(1, "2026-12-14T00:00:00Z")
    v2 = _version(2, "2027-01-01T00:00:00Z")
    at = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert select_active([v2, v1], at) is v1
    assert select_active([v1, v2], at + timedelta(seconds=1)) is v2
    with pytest.raises(RuleSetNotFound):
        select_active([v1, v2], datetime(2026, 12, 13, 23, 59, 59, tzinfo=UTC))


# -- the signed token ------------------------------------------------------------------------


KEY = PrivateKey.generate(KeyType.ED25519)
OTHER = PrivateKey.generate(KeyType.ED25519)
ISS = "https://commons.example"


def token(key: PrivateKey = KEY) -> str:
    return sign_rule_set(parse_rule_set(document()), iss=ISS, iat=1_800_000_000, signer=key,
                         kid="rules-1")  # fmt: skip


def test_a_signed_rule_set_verifies_and_round_trips() -> None:
    signed = verify_rule_set(token(), KEY.public_key, iss=ISS)
    assert signed.rule_set == parse_rule_set(document())
    assert (signed.iss, signed.iat) == (ISS, 1_800_000_000)
    assert rule_set_kid(token()) == "rules-1"
    header = json.loads(b64url_decode(token().split(".")[0]))
    assert header["typ"] == "reputation-rules+jwt"


def _resigned(header: dict[str, Any] | None = None, payload: dict[str, Any] | None = None) -> str:
    h, p, s = token().split(".")
    if header is not None:
        h = b64url_encode(json.dumps(header).encode())
    if payload is not None:
        p = b64url_encode(json.dumps(payload).encode())
    return f"{h}.{p}.{s}"


def test_tampered_tokens_are_refused() -> None:
    good = token()
    h, p, s = good.split(".")
    sig = bytearray(b64url_decode(s))
    sig[0] ^= 1
    flipped = f"{h}.{p}.{b64url_encode(bytes(sig))}"
    payload = json.loads(b64url_decode(p))
    payload["ruleSet"]["weights"]["alpha"] = "1000"
    header = json.loads(b64url_decode(h))
    bad = [
        flipped,
        _resigned(payload=payload),
        _resigned(header={**header, "typ": "zk-statement+jwt"}),
        _resigned(header={**header, "alg": "none"}),
        good[:-2],
        "not.a.jws",
    ]
    for candidate in bad:
        with pytest.raises(RuleSetSignatureInvalid):
            verify_rule_set(candidate, KEY.public_key)
    with pytest.raises(RuleSetSignatureInvalid):
        verify_rule_set(token(OTHER), KEY.public_key)
    with pytest.raises(RuleSetSignatureInvalid):
        verify_rule_set(good, KEY.public_key, iss="https://other.example")


def test_a_signed_document_that_breaks_a_guard_is_refused_after_the_signature() -> None:
    doc = changed("aura/domain", "*")
    # Signed by the right key, but the registry never signs such a document: sign by hand.
    bad = sign_compact(
        {"typ": "reputation-rules+jwt", "kid": "rules-1"},
        {"iss": ISS, "iat": 1, "ruleSet": doc},
        KEY,
    )
    with pytest.raises(RuleSetDomainTooBroad):
        verify_rule_set(bad, KEY.public_key)
