"""DCQL (OpenID4VP 1.0 §6, §7): every parse rule refused with its reason, claims path
pointer semantics, claim_sets preference, value matching, credential_sets, trusted
authorities, and the verifier's check of what was presented."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_commons.formats.dcql import (
    DcqlInvalid,
    DcqlPresentationMismatch,
    DcqlUnsatisfiable,
    HeldFacts,
    check_presented,
    parse_dcql,
    resolve_path,
    select,
)

VCT = "https://credentials.example.com/identity_credential"


def _query(**credential: Any) -> dict[str, Any]:
    base = {"id": "pid", "format": "dc+sd-jwt", "meta": {"vct_values": [VCT]}}
    return {"credentials": [{**base, **credential}]}


def _held(ref: str = "c1", **facts: Any) -> HeldFacts:
    claims = {
        "given_name": "Ada",
        "family_name": "Lovelace",
        "age_over_18": True,
        "address": {"locality": "London", "postal_code": "90210"},
        "degrees": [{"type": "BSc"}, {"type": "MSc"}],
        "nationalities": ["British", "Betelgeusian"],
    }
    base: dict[str, Any] = {
        "ref": ref,
        "format": "dc+sd-jwt",
        "issuer": "did:web:issuer.example",
        "claims": claims,
        "vct": VCT,
    }
    return HeldFacts(**{**base, **facts})


# --- Parsing -----------------------------------------------------------------------------


def test_defaults_and_unknown_members_ignored() -> None:
    query = parse_dcql({**_query(claims=[{"path": ["given_name"]}]), "future": 1})
    credential = query.credentials[0]
    assert credential.multiple is False
    assert credential.require_cryptographic_holder_binding is True
    assert query.credential_sets is None
    assert query.to_json() == _query(claims=[{"path": ["given_name"]}])


def test_credential_set_required_defaults_true() -> None:
    query = parse_dcql({**_query(), "credential_sets": [{"options": [["pid"]]}]})
    assert query.credential_sets is not None
    assert query.credential_sets[0].required is True


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ([], "JSON object"),
        ({}, "credentials"),
        ({"credentials": []}, "credentials"),
        (_query(id=""), "credentials[0].id"),
        (_query(id="a b"), "credentials[0].id"),
        (_query(id="pid/1"), "credentials[0].id"),
        (_query(id=7), "credentials[0].id"),
        (_query(format="vc+sd-jwt"), "credentials[0].format"),
        (_query(meta={}), "meta.vct_values is required"),
        (_query(meta={"vct_values": []}), "vct_values"),
        (_query(meta=None), "meta"),
        (_query(format="mso_mdoc", meta={}), "meta.doctype_value is required"),
        (_query(format="jwt_vc_json", meta={"type_values": []}), "type_values"),
        (_query(format="ldp_vc", meta={"type_values": [[]]}), "type_values"),
        (_query(multiple="yes"), "multiple"),
        (_query(require_cryptographic_holder_binding=1), "require_cryptographic"),
        (_query(claims=[]), "claims"),
        (_query(claims=[{"path": []}]), "path"),
        (_query(claims=[{"path": ["a", -1]}]), "non-negative integer"),
        (_query(claims=[{"path": ["a", True]}]), "non-negative integer"),
        (_query(claims=[{"path": ["a", 1.0]}]), "non-negative integer"),
        (_query(claims=[{"path": [{"a": 1}]}]), "non-negative integer"),
        (_query(claims=[{"path": ["a"], "values": []}]), "values"),
        (_query(claims=[{"path": ["a"], "values": [1.5]}]), "a value is"),
        (_query(claims=[{"path": ["a"], "values": [None]}]), "a value is"),
        (_query(claims=[{"path": ["a"], "id": "x y"}]), "claims[0].id"),
        (
            _query(claims=[{"id": "a", "path": ["a"]}, {"id": "a", "path": ["b"]}]),
            "claims ids must be unique",
        ),
        (_query(claim_sets=[["a"]]), "claim_sets must not be present without claims"),
        (
            _query(claims=[{"id": "a", "path": ["a"]}, {"path": ["b"]}], claim_sets=[["a"]]),
            "every claim needs an id",
        ),
        (
            _query(claims=[{"id": "a", "path": ["a"]}], claim_sets=[["a", "b"]]),
            "unknown claim ids ['b']",
        ),
        (_query(claims=[{"id": "a", "path": ["a"]}], claim_sets=[]), "claim_sets"),
        (_query(claims=[{"id": "a", "path": ["a"]}], claim_sets=[[]]), "claim_sets"),
        (
            _query(format="mso_mdoc", meta={"doctype_value": "d"}, claims=[{"path": ["ns"]}]),
            "two strings for mso_mdoc",
        ),
        (_query(trusted_authorities=[]), "trusted_authorities"),
        (_query(trusted_authorities=[{"type": "aki", "values": []}]), "values"),
        (_query(trusted_authorities=[{"type": "", "values": ["x"]}]), "type"),
        (_query(trusted_authorities=[{"values": ["x"]}]), "type"),
        ({**_query(), "credential_sets": []}, "credential_sets"),
        ({**_query(), "credential_sets": [{"options": []}]}, "options"),
        ({**_query(), "credential_sets": [{"options": [[]]}]}, "options"),
        ({**_query(), "credential_sets": [{"options": [["other"]]}]}, "unknown credential ids"),
        ({**_query(), "credential_sets": [{"options": [["pid"]], "required": "no"}]}, "required"),
        ({"credentials": _query()["credentials"] * 2}, "ids must be unique"),
    ],
)
def test_refused_with_reason(query: Any, reason: str) -> None:
    with pytest.raises(DcqlInvalid) as e:
        parse_dcql(query)
    assert reason in e.value.detail


def test_unknown_trusted_authority_type_parses() -> None:
    query = parse_dcql(_query(trusted_authorities=[{"type": "ebsi_tir", "values": ["x"]}]))
    authorities = query.credentials[0].trusted_authorities
    assert authorities is not None
    assert authorities[0].type == "ebsi_tir"


def test_duplicate_claim_paths_are_tolerated() -> None:
    # §6.1: Verifiers MUST NOT point to the same claim twice; "Wallets SHOULD ignore such
    # duplicate claim queries" -- so a wallet parses and answers it.
    query = parse_dcql(_query(claims=[{"path": ["given_name"]}, {"path": ["given_name"]}]))
    assert select(query, [_held()]).plan()["pid"][0].paths == (("given_name",),) * 2


# --- Claims path pointers (§7) -----------------------------------------------------------

EXAMPLE = {
    "name": "Arthur Dent",
    "address": {"street_address": "42 Market Street", "locality": "Milliways"},
    "degrees": [
        {"type": "Bachelor of Science", "university": "University of Betelgeuse"},
        {"type": "Master of Science", "university": "University of Betelgeuse"},
    ],
    "nationalities": ["British", "Betelgeusian"],
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [  # §7.3's examples
        (["name"], ["Arthur Dent"]),
        (["address"], [EXAMPLE["address"]]),
        (["address", "street_address"], ["42 Market Street"]),
        (["degrees", None, "type"], ["Bachelor of Science", "Master of Science"]),
        (["nationalities", 1], ["Betelgeusian"]),
        (["nationalities", None], ["British", "Betelgeusian"]),
    ],
)
def test_path_semantics(path: list[Any], expected: list[Any]) -> None:
    assert resolve_path(EXAMPLE, path) == expected


@pytest.mark.parametrize(
    "path",
    [
        ["missing"],
        ["name", "first"],  # a string step into a string
        ["address", 0],  # an index into an object
        ["address", None],  # null over an object
        ["nationalities", 2],  # no such index
        ["nationalities", True],  # a boolean is no index
        ["degrees", None, "grade"],  # nothing left selected
        ["nationalities", -1],
        ["name", 1.5],
    ],
)
def test_path_errors(path: list[Any]) -> None:
    assert resolve_path(EXAMPLE, path) is None


def _reference_resolve(value: Any, path: list[Any]) -> list[Any] | None:
    # A recursive reading of §7.1.1, to hold the iterative one to.
    def walk(items: list[Any], rest: list[Any]) -> list[Any] | None:
        if not rest:
            return items
        head, tail = rest[0], rest[1:]
        if isinstance(head, str):
            if any(not isinstance(i, dict) for i in items):
                return None
            return walk([i[head] for i in items if head in i], tail)
        if any(not isinstance(i, list) for i in items):
            return None
        if head is None:
            return walk([x for i in items for x in i], tail)
        return walk([i[head] for i in items if head < len(i)], tail)

    found = walk([value], path)
    return found or None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=10,
)
paths = st.lists(st.sampled_from(["a", "b"]) | st.integers(0, 2) | st.none(), max_size=4)


@given(json_values, paths)
def test_path_against_reference(value: Any, path: list[Any]) -> None:
    assert resolve_path(value, path) == _reference_resolve(value, path)


# --- Selection (§6.4) --------------------------------------------------------------------


def test_select_all_claims_without_claim_sets() -> None:
    query = parse_dcql(_query(claims=[{"path": ["given_name"]}, {"path": ["address", "locality"]}]))
    plan = select(query, [_held()]).plan()
    assert plan["pid"][0].held.ref == "c1"
    assert plan["pid"][0].paths == (("given_name",), ("address", "locality"))


def test_select_without_claims_discloses_nothing() -> None:
    assert select(parse_dcql(_query()), [_held()]).plan()["pid"][0].paths == ()


def test_a_missing_claim_excludes_the_credential() -> None:
    query = parse_dcql(_query(claims=[{"path": ["given_name"]}, {"path": ["region"]}]))
    with pytest.raises(DcqlUnsatisfiable):
        select(query, [_held()])


def test_claim_sets_first_satisfiable_option() -> None:
    claims = [
        {"id": "over18", "path": ["age_over_18"]},
        {"id": "dob", "path": ["birthdate"]},
        {"id": "name", "path": ["family_name"]},
    ]
    query = parse_dcql(_query(claims=claims, claim_sets=[["dob", "name"], ["over18"], ["name"]]))
    # The first option needs birthdate, which is missing; the second is returned, not the
    # third (the Verifier's order of preference, §6.4.1).
    assert select(query, [_held()]).plan()["pid"][0].paths == (("age_over_18",),)
    held = _held(claims={"birthdate": "1815-12-10", "family_name": "L", "age_over_18": True})
    assert select(query, [held]).plan()["pid"][0].paths == (("birthdate",), ("family_name",))


def test_value_matching_is_exact_in_type_and_value() -> None:
    def answers(values: list[Any], path: list[Any]) -> bool:
        query = parse_dcql(_query(claims=[{"path": path, "values": values}]))
        try:
            select(query, [_held()])
        except DcqlUnsatisfiable:
            return False
        return True

    assert answers(["90210", "90211"], ["address", "postal_code"])
    assert not answers([90210], ["address", "postal_code"])  # an integer is not the string
    assert answers([True], ["age_over_18"])
    assert not answers([1], ["age_over_18"])  # 1 is not true
    assert answers(["MSc"], ["degrees", None, "type"])  # any selected element
    assert not answers(["PhD"], ["degrees", None, "type"])


def test_format_meta_and_holder_binding() -> None:
    query = parse_dcql(_query())
    with pytest.raises(DcqlUnsatisfiable):
        select(query, [_held(vct="https://other.example/vct")])
    with pytest.raises(DcqlUnsatisfiable):
        select(query, [_held(format="jwt_vc_json")])
    with pytest.raises(DcqlUnsatisfiable):
        select(query, [_held(holder_binding=False)])
    lenient = parse_dcql(_query(require_cryptographic_holder_binding=False))
    assert select(lenient, [_held(holder_binding=False)]).plan()["pid"]


def test_type_values_need_every_type_of_one_option() -> None:
    query = parse_dcql(
        _query(
            format="jwt_vc_json",
            meta={"type_values": [["VerifiableCredential", "IDCredential"], ["Other"]]},
        )
    )
    held = _held(format="jwt_vc_json", vct=None, types=("VerifiableCredential", "IDCredential"))
    assert select(query, [held]).plan()["pid"]
    with pytest.raises(DcqlUnsatisfiable):
        select(query, [_held(format="jwt_vc_json", vct=None, types=("IDCredential",))])


def test_trusted_authorities() -> None:
    def selectable(authorities: list[dict[str, Any]], held: HeldFacts) -> bool:
        try:
            select(parse_dcql(_query(trusted_authorities=authorities)), [held])
        except DcqlUnsatisfiable:
            return False
        return True

    did = [{"type": "did", "values": ["did:web:issuer.example"]}]
    assert selectable(did, _held())
    assert not selectable(did, _held(issuer="did:web:evil.example"))
    aki = [{"type": "aki", "values": ["s9tIpPmhxdiuNkHMEWNpYim8S8Y"]}]
    assert selectable(aki, _held(issuer_aki="s9tIpPmhxdiuNkHMEWNpYim8S8Y"))
    assert not selectable(aki, _held())
    # Types this module cannot evaluate, and unknown types, match nothing...
    assert not selectable([{"type": "etsi_tl", "values": ["https://lotl.example"]}], _held())
    assert not selectable([{"type": "ebsi", "values": ["did:web:issuer.example"]}], _held())
    # ...but one evaluable match among them is enough.
    assert selectable([{"type": "ebsi", "values": ["x"]}, *did], _held())


def test_multiple() -> None:
    held = [_held("c1"), _held("c2")]
    assert [m.held.ref for m in select(parse_dcql(_query()), held).plan()["pid"]] == ["c1"]
    many = parse_dcql(_query(multiple=True))
    assert [m.held.ref for m in select(many, held).plan()["pid"]] == ["c1", "c2"]


def _two_queries(credential_sets: list[dict[str, Any]] | None) -> dict[str, Any]:
    query = {
        "credentials": [
            {"id": "pid", "format": "dc+sd-jwt", "meta": {"vct_values": [VCT]}},
            {"id": "other", "format": "dc+sd-jwt", "meta": {"vct_values": ["urn:other"]}},
        ]
    }
    if credential_sets is not None:
        query["credential_sets"] = credential_sets
    return query


def test_without_credential_sets_every_query_is_required() -> None:
    with pytest.raises(DcqlUnsatisfiable, match="other"):
        select(parse_dcql(_two_queries(None)), [_held()])


def test_credential_sets() -> None:
    optional = parse_dcql(
        _two_queries([{"options": [["pid"]]}, {"options": [["other"]], "required": False}])
    )
    selection = select(optional, [_held()])
    assert list(selection.plan()) == ["pid"]
    assert selection.sets[1].satisfiable == ()
    alternatives = parse_dcql(_two_queries([{"options": [["other"], ["pid"]]}]))
    assert list(select(alternatives, [_held()]).plan()) == ["pid"]
    required = parse_dcql(_two_queries([{"options": [["pid", "other"]]}]))
    with pytest.raises(DcqlUnsatisfiable, match=r"credential_sets\[0\]"):
        select(required, [_held()])


# --- The verifier's check (§8.6) ---------------------------------------------------------


def test_check_presented_accepts_an_answer() -> None:
    query = parse_dcql(_query(claims=[{"path": ["given_name"]}]))
    check_presented(query, {"pid": [_held(claims={"given_name": "Ada"})]})


@pytest.mark.parametrize(
    ("presented", "reason"),
    [
        ({"pid": [_held()], "extra": [_held()]}, "not a Credential Query id"),
        ({"pid": []}, "empty list"),
        ({"pid": [_held("a"), _held("b")]}, "one presentation allowed"),
        ({"pid": [_held(claims={"family_name": "L"})]}, "does not match"),
        ({"pid": [_held(vct="urn:x")]}, "does not match"),
        ({"pid": [_held(holder_binding=False)]}, "does not match"),
        ({}, "no presentation for ['pid']"),
    ],
)
def test_check_presented_refusals(presented: dict[str, list[HeldFacts]], reason: str) -> None:
    query = parse_dcql(_query(claims=[{"path": ["given_name"]}]))
    with pytest.raises(DcqlPresentationMismatch) as e:
        check_presented(query, presented)
    assert reason in e.value.detail


def test_check_presented_value_and_sets() -> None:
    query = parse_dcql(_query(claims=[{"path": ["address", "postal_code"], "values": ["1"]}]))
    with pytest.raises(DcqlPresentationMismatch):
        check_presented(query, {"pid": [_held()]})
    sets = parse_dcql(_two_queries([{"options": [["pid"], ["other"]]}]))
    check_presented(sets, {"other": [_held(vct="urn:other")]})
    with pytest.raises(DcqlPresentationMismatch, match="required and not met"):
        check_presented(sets, {})
    optional = parse_dcql(
        _two_queries([{"options": [["pid"]]}, {"options": [["other"]], "required": False}])
    )
    check_presented(optional, {"pid": [_held()]})


def test_parsed_query_is_frozen() -> None:
    query = parse_dcql(_query())
    with pytest.raises(ValueError, match="frozen"):
        query.credentials[0].id = "x"  # type: ignore[misc]
    # And the input is not retained: changing it changes nothing.
    raw = _query(claims=[{"path": ["a"]}])
    parsed = parse_dcql(copy.deepcopy(raw))
    raw["credentials"][0]["claims"][0]["path"][0] = "b"
    assert parsed.credentials[0].claims is not None
    assert parsed.credentials[0].claims[0].path == ("a",)


# --- The wallet's plan answers the verifier's check -------------------------------------

_values = st.sampled_from([1, "1", True, "a"])
_claims_queries = st.lists(
    st.fixed_dictionaries(
        {"path": st.sampled_from([["x"], ["y"], ["z", None], ["z", 0]])},
        optional={"values": st.lists(_values, min_size=1, max_size=2)},
    ),
    min_size=1,
    max_size=2,
)
_credential_queries = st.lists(
    st.fixed_dictionaries(
        {
            "format": st.just("dc+sd-jwt"),
            "meta": st.fixed_dictionaries(
                {"vct_values": st.lists(st.sampled_from(["A", "B"]), min_size=1, max_size=2)}
            ),
        },
        optional={"claims": _claims_queries, "multiple": st.booleans()},
    ),
    min_size=1,
    max_size=3,
)
_held_sets = st.lists(
    st.builds(
        lambda i, vct, claims: HeldFacts(
            ref=f"c{i}", format="dc+sd-jwt", issuer="i", claims=claims, vct=vct
        ),
        st.integers(0, 99),
        st.sampled_from(["A", "B"]),
        st.fixed_dictionaries(
            {},
            optional={"x": _values, "y": _values, "z": st.lists(_values, max_size=2)},
        ),
    ),
    max_size=4,
)


@given(_credential_queries, _held_sets, st.booleans())
def test_a_planned_answer_passes_the_check(
    credentials: list[dict[str, Any]], held: list[HeldFacts], with_sets: bool
) -> None:
    raw: dict[str, Any] = {"credentials": [{**c, "id": f"q{i}"} for i, c in enumerate(credentials)]}
    if with_sets:
        ids = [c["id"] for c in raw["credentials"]]
        raw["credential_sets"] = [
            {"options": [[i] for i in ids]},
            {"options": [ids], "required": False},
        ]
    query = parse_dcql(raw)
    try:
        selection = select(query, held)
    except DcqlUnsatisfiable:
        # Nothing can be presented, and presenting nothing does not answer the query.
        with pytest.raises(DcqlPresentationMismatch):
            check_presented(query, {})
        return
    plan = selection.plan()
    check_presented(query, {q: [m.held for m in ms] for q, ms in plan.items()})
