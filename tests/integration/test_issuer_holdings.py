"""The issuer's retrieval-path reads (issuer/holdings.py), on both databases: the status
each credential is read with (one byte of its Token Status List, joined in the same
statement) is checked against the reference path that loads the whole list
(``issuer.status.get_status``), and everything that is not one of the issuer's 2-bit token
lists reads as INVALID (never shareable)."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy.orm import Session

from credit_commons.consent import retrieval
from credit_commons.core.db import transaction
from credit_commons.formats.status_list import TokenStatus
from credit_commons.issuer import holdings, status, subject_erased
from credit_commons.issuer.models import CredentialRow
from credit_commons.runtime import Runtime

_TYPE = "CreditReadinessCredential"


def _held(session: Session, rt: Runtime, subject: str, entries: list[tuple[str, int]]) -> None:
    # Registry rows of ``subject``'s credentials at ``entries``, issued a second apart in
    # that order (the sealed text is not read here).
    now = rt.clock.now()
    for i, (list_id, index) in enumerate(entries):
        session.add(
            CredentialRow(
                id=f"crd_{subject}_{i}",
                type_name=_TYPE,
                subject_token=subject,
                format="dc+sd-jwt",
                token_hash=f"{subject}{i:060d}"[-64:],
                status_list_id=list_id,
                status_index=index,
                sealed=b"sealed",
                issued_at=now + timedelta(seconds=i),
                expires_at=now + timedelta(days=1),
            )
        )


def test_each_credential_is_read_with_the_status_the_whole_list_gives(runtime: Runtime) -> None:
    rng = random.Random(15)
    with transaction(runtime.sessions) as session:
        refs = status.allocate_many(session, runtime, status.StatusKind.TOKEN, 120)
        for ref in refs:
            change = rng.choice([None, TokenStatus.INVALID, TokenStatus.SUSPENDED])
            if change is not None:
                status.set_status(session, runtime, ref, change)
        _held(session, runtime, "idt_many", [(r.list_id, r.index) for r in refs])
    with transaction(runtime.sessions) as session:
        held = holdings.sd_jwt_credentials(session, "idt_many", _TYPE)
        assert [(h.status_list_id, h.status_index) for h in held] == [
            (r.list_id, r.index)
            for r in reversed(refs)  # newest first
        ]
        for credential, ref in zip(held, reversed(refs), strict=True):
            assert credential.status is status.get_status(session, ref), ref
    assert {h.status for h in held} == {
        TokenStatus.VALID,
        TokenStatus.INVALID,
        TokenStatus.SUSPENDED,
    }


def test_what_is_not_an_issuer_token_list_entry_is_invalid(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        token = status.allocate(session, runtime, status.StatusKind.TOKEN)
        bitstring = status.allocate(session, runtime, status.StatusKind.BITSTRING)
        entries = [
            (bitstring.list_id, bitstring.index),  # a W3C list, not a token list
            ("sl_unknown", 0),
            (token.list_id, status.LIST_SIZE),  # just past the end of the list
            (token.list_id, -1),
            (token.list_id, token.index),  # the one valid entry
        ]
        _held(session, runtime, "idt_odd", entries)
    with transaction(runtime.sessions) as session:
        held = holdings.sd_jwt_credentials(session, "idt_odd", _TYPE)
    assert [h.status for h in reversed(held)] == [TokenStatus.INVALID] * 4 + [TokenStatus.VALID]


def test_no_credentials_is_an_empty_list(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        assert holdings.sd_jwt_credentials(session, "idt_none", "CreditReadiness") == []


def test_the_verifier_entry_read_agrees_with_the_reference_reads(runtime: Runtime) -> None:
    # issuer.entry_state (one statement) against get_status and subject_erased.
    rng = random.Random(16)
    with transaction(runtime.sessions) as session:
        refs = status.allocate_many(session, runtime, status.StatusKind.TOKEN, 60)
        for ref in refs:
            change = rng.choice([None, TokenStatus.INVALID, TokenStatus.SUSPENDED])
            if change is not None:
                status.set_status(session, runtime, ref, change)
        bitstring = status.allocate(session, runtime, status.StatusKind.BITSTRING)
    with transaction(runtime.sessions) as session:
        for ref in refs:
            state = holdings.entry_state(session, ref.list_id, ref.index)
            assert state is not None
            assert state.status is status.get_status(session, ref), ref
            assert state.erased is subject_erased(session, ref.list_id, ref.index) is False
        assert holdings.entry_state(session, "sl_unknown", 0) is None
        assert holdings.entry_state(session, bitstring.list_id, bitstring.index) is None
        for index in (status.LIST_SIZE, -1):  # outside the list
            outside = holdings.entry_state(session, refs[0].list_id, index)
            assert outside == holdings.EntryState(TokenStatus.INVALID, erased=False)


def test_retrieval_reads_the_borrowers_credentials_by_their_index(runtime: Runtime) -> None:
    # Retrieval's one statement (the consent, the vault's state, the borrower's credentials
    # joined by ``join_held_credentials``) must find the credentials by the subject token's
    # index, not copy every credential of the platform at each read: SQLite 3.40 does not
    # flatten a subquery that is itself a join into the right side of a LEFT JOIN (a
    # reviewer measured 160 ms a retrieval at 30,000 credentials, for another lender's
    # consent too — a timing difference from an unknown one).
    with transaction(runtime.sessions) as session:
        refs = status.allocate_many(session, runtime, status.StatusKind.TOKEN, 40)
        for i in range(20):
            _held(session, runtime, f"idt_other{i:02d}", [(refs[2 * i].list_id, refs[2 * i].index)])
    engine = runtime.engine
    compiled = retrieval._READ._statement.compile(dialect=engine.dialect)
    values = compiled.construct_params(
        {"consent_id": "cns_unknown", "lender": "lnd_x", "type_name": _TYPE}
    )
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            names = compiled.positiontup or ()
            rows = connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + str(compiled), tuple(values[n] for n in names)
            ).all()
            plan = " | ".join(str(row[-1]) for row in rows)
            assert "USING INDEX ix_credentials_subject_token" in plan, plan
            assert "SCAN credentials" not in plan, plan
            assert "MATERIALIZE" not in plan, plan
        else:
            # Small tables are scanned whatever the join; with scans off the plan shows
            # whether the join's condition can use the index at all.
            connection.exec_driver_sql("SET enable_seqscan = off")
            rows = connection.exec_driver_sql("EXPLAIN " + str(compiled), values).all()
            plan = " | ".join(str(row[0]) for row in rows)
            assert "ix_credentials_subject_token" in plan, plan
