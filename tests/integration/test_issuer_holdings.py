"""The issuer's retrieval-path reads (issuer/holdings.py), on both databases: the one-byte
Token Status List read is checked against the reference path that loads the whole list
(``issuer.status.get_status``), and everything that is not one of the issuer's 2-bit token
lists reads as INVALID (never shareable)."""

from __future__ import annotations

import random

from credit_commons.core.db import transaction
from credit_commons.formats.status_list import TokenStatus
from credit_commons.issuer import holdings, status, subject_erased
from credit_commons.runtime import Runtime


def test_the_one_byte_read_agrees_with_the_whole_list(runtime: Runtime) -> None:
    rng = random.Random(15)
    with transaction(runtime.sessions) as session:
        refs = status.allocate_many(session, runtime, status.StatusKind.TOKEN, 120)
        for ref in refs:
            change = rng.choice([None, TokenStatus.INVALID, TokenStatus.SUSPENDED])
            if change is not None:
                status.set_status(session, runtime, ref, change)
    with transaction(runtime.sessions) as session:
        seen = set()
        for ref in refs:
            fast = holdings.token_status(session, ref.list_id, ref.index)
            assert fast is status.get_status(session, ref), ref
            seen.add(fast)
    assert seen == {TokenStatus.VALID, TokenStatus.INVALID, TokenStatus.SUSPENDED}


def test_what_is_not_an_issuer_token_list_entry_is_invalid(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        token = status.allocate(session, runtime, status.StatusKind.TOKEN)
        bitstring = status.allocate(session, runtime, status.StatusKind.BITSTRING)
    with transaction(runtime.sessions) as session:
        assert holdings.token_status(session, token.list_id, token.index) is TokenStatus.VALID
        for list_id, index in [
            (bitstring.list_id, bitstring.index),  # a W3C list, not a token list
            ("sl_unknown", 0),
            (token.list_id, status.LIST_SIZE),  # just past the end of the list
            (token.list_id, -1),
        ]:
            assert holdings.token_status(session, list_id, index) is TokenStatus.INVALID


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
