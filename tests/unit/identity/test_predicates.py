"""Unit tests for credit_commons.identity.predicates (seed 003 §4.3 predicate attestations):
the request rules, the evaluation and the signed token.  Their verification is tested in
tests/unit/verifier/test_predicates.py.

Attribute values here are synthetic.
"""

import hashlib
import hmac
import json
import math
import operator
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey
from tests.unit.predicate_support import (
    AUDIENCE,
    HELD,
    ISSUER,
    KEYS,
    NONCE,
    NOW,
    SEED_CLAIMS,
    SEED_TEXTS,
    SUBJECT,
    TODAY,
    answers,
    claim,
    decode,
    issue,
    make_request,
    verify,
)

from credit_commons.core.encoding import b64url_decode, canonical_json
from credit_commons.core.errors import ValidationError
from credit_commons.identity.predicates import (
    ATTESTATION_TYP,
    Attribute,
    Claim,
    ClaimResult,
    Operator,
    PredicateInvalid,
    PredicateRequest,
    evaluate,
    sign_attestation,
)
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.errors import AlgorithmNotAllowed
from credit_commons.keys.jwk import public_key_to_jwk


@pytest.fixture(params=list(KeyType), ids=str)
def key(request: pytest.FixtureRequest) -> PrivateKey:
    return KEYS[request.param]


# --- round trips --------------------------------------------------------------------------


def test_round_trip(key: PrivateKey) -> None:
    token = issue(key)
    attestation = verify(token, key)
    assert [(r.claim, r.satisfied) for r in attestation.results] == [(t, True) for t in SEED_TEXTS]
    assert attestation.all_satisfied is True
    assert (attestation.sub, attestation.aud, attestation.nonce) == (SUBJECT, AUDIENCE, NONCE)
    assert attestation.iss == ISSUER
    assert attestation.iat == int(NOW.timestamp())
    assert attestation.exp == attestation.iat + 300
    header, payload = decode(token)
    assert header == {"alg": key.alg, "typ": ATTESTATION_TYP, "kid": "key-1"}
    assert set(payload) == {
        "iss", "sub", "aud", "nonce", "iat", "exp", "jti", "results", "all_satisfied"
    }  # fmt: skip
    assert payload["results"] == [{"claim": t, "satisfied": True} for t in SEED_TEXTS]


def test_parts_are_canonical_json(key: PrivateKey) -> None:
    for part in issue(key).split(".")[:2]:
        raw = b64url_decode(part)
        assert canonical_json(json.loads(raw)) == raw


def test_an_independent_jose_implementation_accepts_the_token(key: PrivateKey) -> None:
    token = issue(key)
    jwk = public_key_to_jwk(key.public_key)
    public = OKPKey.import_key(jwk) if key.key_type is KeyType.ED25519 else ECKey.import_key(jwk)
    with warnings.catch_warnings():
        # joserfc flags "EdDSA" as deprecated by RFC 9864; the platform still emits it.
        warnings.simplefilter("ignore", SecurityWarning)
        parsed = jws.deserialize_compact(token, public, algorithms=[key.alg])
    assert json.loads(parsed.payload) == decode(token)[1]


def test_jti_is_random_unless_given() -> None:
    key = KEYS[KeyType.ED25519]
    assert decode(issue(key))[1]["jti"] != decode(issue(key))[1]["jti"]
    # Ed25519 is deterministic, so a fixed jti reproduces the token byte for byte.
    assert issue(key, jti="fixed-jti") == issue(key, jti="fixed-jti")


def test_ttl_sets_expiry(key: PrivateKey) -> None:
    token = issue(key, ttl=timedelta(seconds=42))
    assert verify(token, key).exp == int(NOW.timestamp()) + 42


def test_naive_now_is_utc(key: PrivateKey) -> None:
    token = issue(key, now=NOW.replace(tzinfo=None))
    assert verify(token, key).iat == int(NOW.timestamp())


# --- evaluation ---------------------------------------------------------------------------


def test_seed_example_texts_and_answers() -> None:
    results = evaluate(make_request(), HELD, today=TODAY)
    assert results == [ClaimResult(claim=t, satisfied=True) for t in SEED_TEXTS]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"birth_date": "1970-01-01"}, [False, True, True]),
        ({"income_annual": 500001}, [True, False, True]),
        ({"income_annual": 500000}, [True, True, True]),
        ({"state": "MH"}, [True, True, False]),
    ],
)
def test_seed_example_failing_claims(change: dict[str, object], expected: list[bool]) -> None:
    assert answers(HELD | change) == expected


@pytest.mark.parametrize(
    ("today", "age"),
    [
        (date(2026, 2, 25), 59),  # the day before the 60th birthday
        (date(2026, 2, 26), 60),  # the birthday itself
        (date(2026, 2, 27), 60),
    ],
)
def test_age_turns_on_the_birthday(today: date, age: int) -> None:
    born = {"birth_date": "1966-02-26"}
    assert answers(born, claim("age", "==", age), today=today) == [True]


@pytest.mark.parametrize(
    ("today", "age"),
    [
        (date(2027, 2, 28), 58),  # common year: 29 February has not come
        (date(2027, 3, 1), 59),  # so the birthday is taken to be 1 March
        (date(2028, 2, 28), 59),
        (date(2028, 2, 29), 60),  # leap year: the real birthday
    ],
)
def test_age_of_a_leap_day_birth(today: date, age: int) -> None:
    born = {"birth_date": "1968-02-29"}
    assert answers(born, claim("age", "==", age), today=today) == [True]


def test_birth_date_may_be_a_date_object() -> None:
    assert answers({"birth_date": date(1960, 1, 1)}, claim("age", ">=", 60)) == [True]


@pytest.mark.parametrize(
    "born",
    [
        "1960-1-1",
        "19600101",
        "1960-02-30",
        "1960-01-01T00:00:00",
        "sixty",
        datetime(1960, 1, 1, tzinfo=UTC),
        "2030-01-01",  # in the future
        "2026-02-27",  # tomorrow
        19600101,
        None,
    ],
)
def test_unusable_birth_date_is_unsatisfied(born: object) -> None:
    assert answers({"birth_date": born}, claim("age", ">=", 0), claim("age", "<", 200)) == [
        False,
        False,
    ]


def test_a_stored_age_is_not_trusted() -> None:
    assert answers({"age": 99}, claim("age", ">=", 60)) == [False]


ALL_KINDS = [
    claim("age", ">=", 60),
    claim("income_annual", "<", 10),
    claim("state", "!=", "UP"),
    claim("gender", "!=", "female"),
    claim("bpl_status", "!=", True),
    claim("land_holding", ">", -1),
    claim("marital_status", "!=", "married"),
    claim("dependents_count", ">=", 0),
]


def test_missing_attributes_are_unsatisfied_even_for_not_equal() -> None:
    results = evaluate(make_request(*ALL_KINDS), {}, today=TODAY)
    assert [r.satisfied for r in results] == [False] * len(ALL_KINDS)
    # The same shape as when every attribute is held: nothing says "not on file".
    held = {
        "birth_date": "1950-01-01", "income_annual": 1, "state": "MH", "gender": "male",
        "bpl_status": False, "land_holding": 0.5, "marital_status": "single",
        "dependents_count": 2,
    }  # fmt: skip
    full = evaluate(make_request(*ALL_KINDS), held, today=TODAY)
    assert [r.claim for r in full] == [r.claim for r in results]
    assert all(r.satisfied for r in full)


@pytest.mark.parametrize(
    ("attributes", "item"),
    [
        ({"income_annual": "400000"}, claim("income_annual", "<=", 500000)),
        ({"income_annual": True}, claim("income_annual", "==", 1)),
        ({"income_annual": math.nan}, claim("income_annual", "!=", 5)),
        ({"land_holding": math.inf}, claim("land_holding", ">", 5)),
        ({"bpl_status": 1}, claim("bpl_status", "==", True)),
        ({"bpl_status": "true"}, claim("bpl_status", "==", True)),
        ({"gender": 5}, claim("gender", "!=", "female")),
        ({"state": ["UP"]}, claim("state", "!=", "MH")),
    ],
)
def test_ill_typed_attributes_are_unsatisfied(
    attributes: dict[str, object], item: dict[str, Any]
) -> None:
    assert answers(attributes, item) == [False]


def test_string_subclasses_are_strings() -> None:
    class Gender(StrEnum):
        FEMALE = "female"

    assert answers({"gender": Gender.FEMALE}, claim("gender", "==", "female")) == [True]


def test_categorical_and_boolean_claims() -> None:
    held = {"gender": "female", "marital_status": "widowed", "bpl_status": True, "state": "UP"}
    items = [
        claim("gender", "==", "female"),
        claim("gender", "==", "Female"),  # compared exactly
        claim("marital_status", "!=", "married"),
        claim("bpl_status", "==", True),
        claim("bpl_status", "==", False),
        claim("bpl_status", "!=", False),
        claim("state", "!=", "UP"),
    ]
    assert answers(held, *items) == [True, False, True, True, False, True, False]


def test_claim_texts() -> None:
    request = make_request(
        claim("land_holding", ">=", 2.5),
        claim("income_annual", "<", 1e5),
        claim("bpl_status", "==", False),
        claim("marital_status", "==", "never married"),
        claim("dependents_count", ">", -1),
    )
    assert [c.text for c in request.claims] == [
        "land_holding >= 2.5",
        "income_annual < 100000",
        "bpl_status == false",
        "marital_status == never married",
        "dependents_count > -1",
    ]


def test_results_never_contain_attribute_values(key: PrivateKey) -> None:
    held = {"birth_date": "1961-07-15", "income_annual": 412345, "state": "UP"}
    token = issue(key, held, jti="fixed-jti")  # a random jti could contain "64" by chance
    header, payload = decode(token)
    text = json.dumps([header, payload])
    for secret in ("1961", "07-15", "412345", "64"):  # 64 would be the derived age
        assert secret not in text
    assert all(set(r) == {"claim", "satisfied"} for r in payload["results"])


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">=": operator.ge,
    "<=": operator.le, ">": operator.gt, "<": operator.lt,
}  # fmt: skip
NUMBERS = st.one_of(
    st.integers(-(2**53 - 1), 2**53 - 1),
    st.floats(-(2**53 - 1), 2**53 - 1, allow_nan=False, allow_infinity=False),
)


@given(
    attribute=st.sampled_from(["income_annual", "land_holding", "dependents_count"]),
    op=st.sampled_from(sorted(COMPARISONS)),
    held=NUMBERS,
    value=NUMBERS | st.sampled_from([0, 1, -1, 0.5]),
)
def test_numeric_claims_agree_with_python(
    attribute: str, op: str, held: float, value: float
) -> None:
    assert answers({attribute: held}, claim(attribute, op, value)) == [COMPARISONS[op](held, value)]


def reference_age(born: date, today: date) -> int:
    """Naive: count anniversaries passed, a 29 February birthday falling on 1 March."""
    years = 0
    while True:
        year = born.year + years + 1
        try:
            anniversary = born.replace(year=year)
        except ValueError:
            anniversary = date(year, 3, 1)
        if anniversary > today:
            return years
        years += 1


@given(
    born=st.dates(date(1900, 1, 1), date(2025, 12, 31)),
    today=st.dates(date(2026, 1, 1), date(2200, 12, 31)),
)
def test_age_agrees_with_a_reference(born: date, today: date) -> None:
    age = reference_age(born, today)
    held = {"birth_date": born.isoformat()}
    items = [claim("age", "==", age), claim("age", ">=", age + 1), claim("age", ">", age - 1)]
    assert answers(held, *items, today=today) == [True, False, True]


# --- request validation -------------------------------------------------------------------


def rejected(*claims: dict[str, Any], **members: Any) -> PredicateInvalid:
    with pytest.raises(PredicateInvalid) as info:
        make_request(*claims, **members)
    error = info.value
    assert isinstance(error, ValidationError)
    assert (error.code, error.status) == ("identity.predicate_invalid", 422)
    # No chained pydantic error (whose text echoes the input) rides along.
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None
    return error


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (claim("religion", "==", "x"), "attribute"),  # unknown attribute
        (claim("age", "=~", 60), "operator"),  # unknown operator
        (claim("age", "in", 60), "operator"),
        (claim("age", ">=", "60"), "value"),  # type mismatches
        (claim("age", ">=", True), "value"),
        (claim("income_annual", "<=", None), "value"),
        (claim("state", "==", 5), "value"),
        (claim("state", "==", "up"), "value"),
        (claim("state", "==", "UPP"), "value"),
        (claim("gender", "==", False), "value"),
        (claim("gender", "==", ""), "value"),
        (claim("gender", "==", "fe\nmale"), "value"),
        (claim("gender", "==", "x" * 65), "value"),  # longer than 64
        (claim("bpl_status", "==", "true"), "value"),
        (claim("bpl_status", "==", 1), "value"),
        (claim("state", ">=", "UP"), "operator"),  # order on a string attribute
        (claim("marital_status", "<", "married"), "operator"),
        (claim("bpl_status", ">", False), "operator"),
        (claim("age", ">=", math.nan), "value"),
        (claim("age", ">=", math.inf), "value"),
        (claim("income_annual", "<", 2**53), "value"),
        (claim("land_holding", ">", -(2.0**53)), "value"),
        ({"attribute": "age", "operator": ">="}, "value"),  # missing member
        (claim("age", ">=", [60]), "value"),
        (claim("age", ">=", {"$gt": 1}), "value"),
    ],
)
def test_claim_rules(bad: dict[str, Any], field: str) -> None:
    error = rejected(claim("age", ">=", 18), claim("state", "==", "UP"), bad)
    assert (error.index, error.field) == (2, field)
    assert error.extra == {"claim_index": 2, "field": field}


def test_boundaries_accepted() -> None:
    request = make_request(
        claim("gender", "==", "x" * 64),
        claim("income_annual", "<", 2**53 - 1),
        claim("land_holding", ">", -(2**53 - 1)),
        *[claim("age", ">", n) for n in range(7)],
    )
    assert len(request.claims) == 10


def test_extra_claim_property() -> None:
    error = rejected(claim("age", ">=", 60) | {"proof": "x"})
    assert (error.index, error.field) == (0, None)


@pytest.mark.parametrize("count", [0, 11, 1000])
def test_claim_count(count: int) -> None:
    with pytest.raises(PredicateInvalid) as info:
        PredicateRequest.model_validate(
            {"claims": [claim("age", ">", 1)] * count, "nonce": NONCE, "audience": AUDIENCE}
        )
    assert info.value.field == "claims"


@pytest.mark.parametrize(
    "members",
    [
        {"nonce": "short"},
        {"nonce": "n" * 129},
        {"nonce": "has spaces in it ok"},
        {"nonce": "n0nce+0123456789/=="},  # base64, not base64url
        {"nonce": 1234567890123456},
        {"audience": ""},
        {"audience": "a" * 256},
        {"audience": "lender one"},
        {"identity_token": SUBJECT},  # extra property
        {"claims": "age >= 60"},
    ],
)
def test_request_rules(members: dict[str, Any]) -> None:
    assert rejected(**members).index is None


def test_request_members_are_required() -> None:
    with pytest.raises(PredicateInvalid):
        PredicateRequest.model_validate({"claims": SEED_CLAIMS, "nonce": NONCE})


def test_json_input_and_direct_construction_raise_the_same_error() -> None:
    body = {"claims": [claim("state", ">", "UP")], "nonce": NONCE, "audience": AUDIENCE}
    with pytest.raises(PredicateInvalid):
        PredicateRequest.model_validate_json(json.dumps(body))
    with pytest.raises(PredicateInvalid):
        Claim(attribute=Attribute.STATE, operator=Operator.GT, value="UP")
    ok = PredicateRequest.model_validate_json(json.dumps({**body, "claims": SEED_CLAIMS}))
    assert [c.text for c in ok.claims] == SEED_TEXTS


def test_errors_never_echo_values() -> None:
    marker = "S3CR3T-MARKER"
    for bad in (
        claim("state", "==", marker),
        claim("age", ">=", marker),
        claim("gender", "==", marker * 10),
        claim(marker, "==", "x"),
        claim("age", marker, 1),
        claim("age", ">", 1) | {marker: marker},
    ):
        error = rejected(bad)
        shown = " ".join([str(error), error.diagnostics(), json.dumps(error.problem())])
        assert marker not in shown


def test_request_is_immutable() -> None:
    request = make_request()
    with pytest.raises(Exception, match="frozen"):
        request.nonce = "x" * 20  # type: ignore[misc]


# --- signing preconditions ----------------------------------------------------------------


class HmacSigner:
    """A signer that must never be usable: HMAC is not on the allow-list."""

    key_type = KeyType.ED25519
    alg = "HS256"
    public_key = KEYS[KeyType.ED25519].public_key

    def sign(self, data: bytes) -> bytes:
        return hmac.new(b"k", data, hashlib.sha256).digest()


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "alice"},
        {"subject": "idt_short"},
        {"issuer": ""},
        {"issuer": "has space"},
        {"kid": ""},
        {"ttl": timedelta(0)},
        {"ttl": timedelta(seconds=-5)},
        {"jti": ""},
    ],
)
def test_sign_preconditions(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        issue(KEYS[KeyType.ED25519], **change)


def test_results_must_answer_the_request() -> None:
    request = make_request()
    results = evaluate(make_request(claim("age", ">=", 18)), HELD, today=TODAY)
    with pytest.raises(ValidationError, match="do not answer"):
        sign_attestation(
            results, subject=SUBJECT, request=request, issuer=ISSUER,
            signer=KEYS[KeyType.ED25519], kid="k", now=NOW,
        )  # fmt: skip


def test_hmac_signer_is_refused() -> None:
    with pytest.raises(AlgorithmNotAllowed):
        issue(HmacSigner())  # type: ignore[arg-type]
