"""The response endpoint and the request as OpenID4VP 1.0 shapes them, on SQLite and
PostgreSQL: §8.6 (a failing presentation is discarded, not the whole response; the shape is
checked before any signature), §8.2 without a ``redirect_uri`` (no response code, nothing
kept), §5.1 (``client_metadata`` with ``vp_formats_supported`` and the lender's name), the
queries refused when the request is made, and a bounded ``wallet_nonce``."""

from __future__ import annotations

import json
import threading
from typing import Any, cast

import pytest
from sqlalchemy import Table, event, select
from tests.integration.verifier_world import VpWorld, crc_query, vp

from credit_commons.core.db import READ_ONLY, transaction
from credit_commons.issuer.catalogue import CREDIT_READINESS
from credit_commons.verifier import responses
from credit_commons.verifier import service as verifier_service
from credit_commons.verifier import transactions as txn
from credit_commons.verifier.models import VpTransactionRow

__all__ = ["vp"]

DENIED = {"error": "not_allowed"}
_COLUMNS = [c.key for c in cast(Table, VpTransactionRow.__table__).columns]


def _forged(text: str) -> str:
    jwt, rest = text.split("~", 1)
    head, payload, signature = jwt.split(".")
    forged = ("A" if signature[5] != "A" else "B").join([signature[:5], signature[6:]])
    return f"{head}.{payload}.{forged}~{rest}"


def _query(**member: Any) -> dict[str, Any]:
    query = crc_query()
    query["credentials"][0].update(member)
    return query


def _row(vp: VpWorld, transaction_id: str) -> VpTransactionRow:
    with transaction(vp.rt.sessions) as session:
        row = session.scalar(select(VpTransactionRow).where(VpTransactionRow.id == transaction_id))
        assert row is not None
        session.expunge(row)
        return row


# -- §8.6: discard the presentation, not the response --------------------------------------


def test_a_failing_presentation_is_discarded_and_the_rest_decides(vp: VpWorld) -> None:
    holder = vp.holder()
    created = vp.request(dcql_query=_query(multiple=True))
    wallet = vp.wallet_request(created)
    good = vp.presentation(holder, wallet)
    answered = vp.respond(created, wallet, {"crc": [_forged(good), good]})
    assert answered.status_code == 200, answered.text
    status = vp.status(created["id"])
    assert (status["decision"], status["reason"]) == ("allow", None)
    assert status["discarded"] == [{"query_id": "crc", "reason": "signature_invalid"}]
    code = answered.json()["redirect_uri"].split("response_code=")[1]
    credentials = vp.decision(created["id"], code).json()["credentials"]
    assert ["income_bracket" in c["claims"] for c in credentials] == [True]


def test_an_alternative_answers_when_the_other_is_discarded(vp: VpWorld) -> None:
    holder = vp.holder()
    query = {
        "credentials": [
            {**crc_query()["credentials"][0], "id": "first"},
            {**crc_query()["credentials"][0], "id": "second"},
        ],
        "credential_sets": [{"options": [["first"], ["second"]]}],
    }
    created = vp.request(dcql_query=query)
    wallet = vp.wallet_request(created)
    good = vp.presentation(holder, wallet)
    answered = vp.respond(created, wallet, {"first": [_forged(good)], "second": [good]})
    assert answered.status_code == 200, answered.text
    status = vp.status(created["id"])
    assert status["decision"] == "allow"
    assert status["discarded"] == [{"query_id": "first", "reason": "signature_invalid"}]


def test_when_nothing_is_left_the_denial_keeps_each_reason(vp: VpWorld) -> None:
    holder = vp.holder()
    created = vp.request(dcql_query=_query(multiple=True))
    wallet = vp.wallet_request(created)
    good = vp.presentation(holder, wallet)
    answered = vp.respond(created, wallet, {"crc": [_forged(good), "not-a-presentation"]})
    assert answered.json() == DENIED
    status = vp.status(created["id"])
    assert (status["decision"], status["reason"]) == ("deny", "signature_invalid")
    assert status["discarded"] == [
        {"query_id": "crc", "reason": "signature_invalid"},
        {"query_id": "crc", "reason": "credential_invalid"},
    ]


def test_a_presentation_for_another_nonce_rejects_the_whole_response(vp: VpWorld) -> None:
    holder = vp.holder()
    created = vp.request(dcql_query=_query(multiple=True))
    wallet = vp.wallet_request(created)
    good = vp.presentation(holder, wallet)
    replayed = vp.presentation(holder, wallet, nonce="another-nonce-0123456789")
    answered = vp.respond(created, wallet, {"crc": [good, replayed]})
    assert answered.json() == DENIED
    status = vp.status(created["id"])
    assert (status["decision"], status["reason"]) == ("deny", "nonce_mismatch")


def test_the_shape_is_refused_before_any_signature_is_checked(vp: VpWorld) -> None:
    # Two presentations where one is allowed, and a key the query does not have: refused as
    # dcql_unsatisfied, with nothing discarded — no presentation was verified (the forged
    # one would have been signature_invalid).
    holder = vp.holder()
    for token in ({"crc": 2}, {"crc": 1, "other": 1}):
        created = vp.request()
        wallet = vp.wallet_request(created)
        forged = _forged(vp.presentation(holder, wallet))
        vp_token = {key: [forged] * count for key, count in token.items()}
        assert vp.respond(created, wallet, vp_token).json() == DENIED
        status = vp.status(created["id"])
        assert (status["reason"], status["discarded"]) == ("dcql_unsatisfied", [])


# -- §8.2 without a redirect_uri -----------------------------------------------------------


def test_without_a_redirect_uri_nothing_is_kept_for_a_response_code(vp: VpWorld) -> None:
    holder = vp.holder()
    created = vp.request(redirect_uri=None)
    wallet = vp.wallet_request(created)
    answered = vp.respond(created, wallet, {"crc": [vp.presentation(holder, wallet)]})
    assert answered.status_code == 200, answered.text
    assert answered.json() == {}
    assert vp.status(created["id"])["decision"] == "allow"
    row = _row(vp, created["id"])
    assert (row.claims, row.response_code_hash) == (None, None)


# -- §5.1: the request's client metadata ---------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "mode"),
    [("decentralized_identifier", "direct_post"), ("redirect_uri", "direct_post.jwt")],
)
def test_the_request_names_the_formats_and_the_lender(vp: VpWorld, prefix: str, mode: str) -> None:
    created = vp.request(client_id_prefix=prefix, response_mode=mode)
    wallet = vp.wallet_request(created)
    metadata = wallet.client_metadata
    assert metadata is not None
    assert metadata.client_name == "Verifier Bank"
    formats = metadata.vp_formats_supported
    assert formats is not None
    assert set(formats["dc+sd-jwt"]) == {"sd-jwt_alg_values", "kb-jwt_alg_values"}
    assert "ES256" in formats["dc+sd-jwt"]["kb-jwt_alg_values"]
    assert (metadata.jwks is not None) == (mode == "direct_post.jwt")


# -- what a request may ask ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "words"),
    [
        (
            {
                "credentials": [
                    {
                        "id": "m",
                        "format": "mso_mdoc",
                        "meta": {"doctype_value": "org.iso.18013.5.1.mDL"},
                    }
                ]
            },
            "mso_mdoc",
        ),
        (
            {"credentials": [{"id": "l", "format": "ldp_vc", "meta": {"type_values": [["X"]]}}]},
            "ldp_vc",
        ),
        (_query(require_cryptographic_holder_binding=False), "holder-bound"),
        (_query(trusted_authorities=[{"type": "aki", "values": ["s9tIpP"]}]), "aki"),
        (
            _query(trusted_authorities=[{"type": "etsi_tl", "values": ["https://t.example"]}]),
            "etsi_tl",
        ),
        (_query(unknown_member=1), "unknown_member"),
        ({**crc_query(), "extra": True}, "extra"),
    ],
)
def test_a_query_no_response_could_satisfy_is_refused(
    vp: VpWorld, query: dict[str, Any], words: str
) -> None:
    made = vp.http.post("/v1/verifier/requests", json={"dcql_query": query}, headers=vp.token())
    assert made.status_code == 422, made.text
    assert made.headers["content-type"] == "application/problem+json"
    assert made.json()["code"] == "request.invalid"
    assert words in made.json()["detail"]


def test_a_did_trusted_authority_is_asked(vp: VpWorld) -> None:
    query = _query(trusted_authorities=[{"type": "did", "values": ["did:web:commons.test"]}])
    made = vp.http.post("/v1/verifier/requests", json={"dcql_query": query}, headers=vp.token())
    assert made.status_code == 201, made.text


# -- §5.10.1: the wallet_nonce -------------------------------------------------------------


@pytest.mark.parametrize("nonce", ["n" * 257, "a b", "line\nbreak"])
def test_a_wallet_nonce_out_of_bounds_is_refused(vp: VpWorld, nonce: str) -> None:
    created = vp.request()
    path = created["request_uri"].removeprefix("https://commons.test")
    posted = vp.http.post(path, data={"wallet_nonce": nonce})
    assert posted.status_code == 422, posted.text
    accepted = vp.http.post(path, data={"wallet_nonce": "n" * 256})
    assert accepted.status_code == 200, accepted.text


def test_the_vct_of_the_credential_answered(vp: VpWorld) -> None:
    # The decision names the format and type of what was presented.
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    answered = vp.respond(created, wallet, {"crc": [vp.presentation(holder, wallet)]})
    code = answered.json()["redirect_uri"].split("response_code=")[1]
    (credential,) = vp.decision(created["id"], code).json()["credentials"]
    assert (credential["format"], credential["vct"]) == ("dc+sd-jwt", CREDIT_READINESS.vct)
    assert "income_bracket" in credential["claims"]


def _form(vp: VpWorld, holder: Any, wallet: Any) -> dict[str, str]:
    return {
        "vp_token": json.dumps({"crc": [vp.presentation(holder, wallet)]}),
        "state": str(wallet.state),
    }


def test_the_decision_is_written_once_and_consumes_the_challenge(vp: VpWorld) -> None:
    # accept_response reads and verifies in a read unit of work, then writes the decision,
    # which consumes the challenge, and its event in one short write: what is stored is the
    # decision, and a second answer with the same challenge changes nothing.
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    form = _form(vp, holder, wallet)
    verdict = verifier_service.accept_response(vp.rt, created["id"], form)
    assert verdict.allowed
    stored = _row(vp, created["id"])
    assert (stored.decision, stored.reason, stored.discarded) == ("allow", None, None)
    assert stored.consumed_at is not None
    assert stored.decided_at is not None
    assert stored.claims is not None
    assert stored.response_code_hash is not None
    again = verifier_service.accept_response(vp.rt, created["id"], form)
    assert not again.allowed
    after = _row(vp, created["id"])
    assert (after.response_code_hash, after.claims) == (stored.response_code_hash, stored.claims)
    assert [(e["decision"], e["reason"]) for e in vp.events()] == [
        ("allow", None),
        ("deny", "challenge_consumed"),
    ]


def test_the_write_holds_no_lock_while_the_claims_are_sealed_and_the_event_made(
    vp: VpWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The write's unit of work (on SQLite: the process's writer mutex and the database's
    # write lock, until the COMMIT has synced) runs only the statements: the claims are
    # sealed by the KMS and the verification.decided event checked with its log entry
    # before it begins.
    open_writes: list[object] = []
    seen: list[tuple[str, int]] = []

    def began(connection: Any) -> None:
        if not connection.get_execution_options().get(READ_ONLY):
            open_writes.append(connection)

    def ended(connection: Any) -> None:
        if connection in open_writes:
            open_writes.remove(connection)

    for name, listener in (("begin", began), ("commit", ended), ("rollback", ended)):
        event.listen(vp.rt.engine, name, listener)
    real_wrap, real_rows = vp.rt.vault.kms.wrap, responses.event_rows

    def wrap(*args: Any, **kwargs: Any) -> Any:
        seen.append(("wrap", len(open_writes)))
        return real_wrap(*args, **kwargs)

    def rows(*args: Any, **kwargs: Any) -> Any:
        seen.append(("event", len(open_writes)))
        return real_rows(*args, **kwargs)

    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    form = _form(vp, holder, wallet)
    monkeypatch.setattr(vp.rt.vault.kms, "wrap", wrap)
    monkeypatch.setattr(responses, "event_rows", rows)
    try:
        verdict = verifier_service.accept_response(vp.rt, created["id"], form)
    finally:
        for name, listener in (("begin", began), ("commit", ended), ("rollback", ended)):
            event.remove(vp.rt.engine, name, listener)
    assert verdict.allowed
    assert seen == [("wrap", 0), ("event", 0)]
    assert _row(vp, created["id"]).decision == "allow"
    assert [(e["decision"], e["reason"]) for e in vp.events()] == [("allow", None)]


def test_a_transaction_is_read_as_a_value(vp: VpWorld) -> None:
    # load_transaction reads the columns the response endpoint needs by one precompiled
    # SELECT: times as aware UTC datetimes, None for no such transaction.
    made = _row(vp, vp.request()["id"])
    with transaction(vp.rt.read_sessions) as session:
        loaded = txn.load_transaction(session, made.id)
        assert txn.load_transaction(session, "vpt_nothing_here") is None
    assert loaded is not None
    assert (loaded.nonce, loaded.state, loaded.request_hash) == (
        made.nonce,
        made.state,
        made.request_hash,
    )
    assert loaded.expires_at.utcoffset() is not None
    assert loaded.consumed_at is None
    assert txn.request_hash(loaded) == made.request_hash


# -- the one-time challenge under concurrency -----------------------------------------------


def test_a_challenge_consumed_after_the_checks_ran_decides_nothing(
    vp: VpWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Step 1's checks and steps 2-10 run in a read unit of work; the decision consumes the
    # challenge afterwards.  A second response that passes the same checks and is decided
    # first, in between, wins: the first then decides nothing (challenge_consumed, as a
    # replay), and the stored decision, response code and claims are the second's.
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    first, second = _form(vp, holder, wallet), _form(vp, holder, wallet)
    real_decide = responses._decide
    raced: list[verifier_service.Verdict] = []
    calls = []

    def decide_then_race(*args: Any, **kwargs: Any) -> Any:
        outcome = real_decide(*args, **kwargs)
        calls.append(outcome)
        if len(calls) == 1:  # the first response passed every check; the second overtakes it
            raced.append(verifier_service.accept_response(vp.rt, created["id"], second))
        return outcome

    monkeypatch.setattr(responses, "_decide", decide_then_race)
    late = verifier_service.accept_response(vp.rt, created["id"], first)
    (won,) = raced
    assert calls[0].checked is not None  # the late one had passed step 1 and steps 2-10
    assert calls[0].reason is None
    assert won.allowed
    assert won.answer is not None
    assert not late.allowed
    assert late.answer is None
    stored = _row(vp, created["id"])
    assert (stored.decision, stored.reason) == ("allow", None)
    code = str(won.answer.redirect_uri).split("response_code=")[1]
    assert stored.response_code_hash == txn.hash_secret(code)
    assert [(e["decision"], e["reason"]) for e in vp.events()] == [
        ("allow", None),
        ("deny", "challenge_consumed"),
    ]


def test_concurrent_responses_to_one_challenge_decide_once(vp: VpWorld) -> None:
    # Four threads post valid responses to one transaction at the same moment: exactly one
    # is allowed, the others are refused as replays, and one decision is stored.
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    forms = [_form(vp, holder, wallet) for _ in range(4)]
    start = threading.Barrier(len(forms))
    verdicts: list[verifier_service.Verdict] = []

    def respond(form: dict[str, str]) -> None:
        start.wait()
        verdicts.append(verifier_service.accept_response(vp.rt, created["id"], form))

    threads = [threading.Thread(target=respond, args=(form,)) for form in forms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(v.allowed for v in verdicts) == [False, False, False, True]
    assert _row(vp, created["id"]).decision == "allow"
    events = [(e["decision"], e["reason"]) for e in vp.events()]
    assert sorted(events, key=str) == sorted(
        [("allow", None)] + [("deny", "challenge_consumed")] * 3, key=str
    )
