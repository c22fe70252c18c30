"""Status lists on both databases: random indexes, transitions, signed lists served over HTTP
that decode right (IETF LSB-first 2-bit; W3C MSB-first 1-bit)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.errors import ValidationError
from credit_commons.formats.bitstring_status_list import BitstringStatusList
from credit_commons.formats.jws import verify_compact
from credit_commons.formats.status_list import StatusList, TokenStatus
from credit_commons.issuer import status
from credit_commons.keys.algorithms import ACCEPTED_ALGS
from credit_commons.runtime import Runtime


def test_token_status_list_round_trip(client: TestClient, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        refs = [status.allocate(session, runtime, status.StatusKind.TOKEN) for _ in range(50)]
    assert len({r.list_id for r in refs}) == 1
    indexes = [r.index for r in refs]
    assert len(set(indexes)) == 50
    assert indexes != sorted(indexes)  # random, not sequential
    with transaction(runtime.sessions) as session:
        status.set_status(session, runtime, refs[0], TokenStatus.INVALID)
        status.set_status(session, runtime, refs[1], TokenStatus.SUSPENDED)
        status.set_status(session, runtime, refs[1], TokenStatus.VALID)  # reinstated
        status.set_status(session, runtime, refs[2], TokenStatus.SUSPENDED)
    response = client.get(f"/status-lists/{refs[0].list_id}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/statuslist+jwt"
    assert "max-age" in response.headers["cache-control"]
    with transaction(runtime.sessions) as session:
        key = status.issuer_signer(session, runtime).public_key
    payload = verify_compact(response.text, key, typ="statuslist+jwt", algs=ACCEPTED_ALGS)
    assert payload["sub"].endswith(f"/status-lists/{refs[0].list_id}")
    decoded = StatusList.from_json(payload["status_list"])
    assert decoded.bits == 2
    assert decoded.get(refs[0].index) == TokenStatus.INVALID
    assert decoded.get(refs[1].index) == TokenStatus.VALID
    assert decoded.get(refs[2].index) == TokenStatus.SUSPENDED
    assert decoded.get(refs[3].index) == TokenStatus.VALID
    etag = response.headers["etag"]
    assert (
        client.get(f"/status-lists/{refs[0].list_id}", headers={"If-None-Match": etag}).status_code
        == 304
    )
    assert client.get("/status-lists/sl_00000000000000000000000000").status_code == 404


def test_bitstring_status_list_is_msb_first_and_revocation_only(
    client: TestClient, runtime: Runtime
) -> None:
    with transaction(runtime.sessions) as session:
        ref = status.allocate(session, runtime, status.StatusKind.BITSTRING)
        status.set_status(session, runtime, ref, TokenStatus.INVALID)
        with pytest.raises(ValidationError):
            status.set_status(session, runtime, ref, TokenStatus.SUSPENDED)
        assert status.get_status(session, ref) == TokenStatus.INVALID
        key = status.issuer_signer(session, runtime).public_key
    response = client.get(f"/status-lists/{ref.list_id}")
    assert response.headers["content-type"] == "application/vc+jwt"
    payload = verify_compact(response.text, key, typ="vc+jwt", algs=ACCEPTED_ALGS)
    encoded = payload["credentialSubject"]["encodedList"]
    bitstring = BitstringStatusList.decode(encoded)
    assert bitstring.get(ref.index) == 1
    # The W3C list is MSB-first: the same byte read LSB-first would name another index.
    raw = bitstring.to_bytes()
    assert raw[ref.index // 8] & (0x80 >> (ref.index % 8))


def test_rendered_lists_keep_one_version_each_and_stay_fresh(
    client: TestClient, runtime: Runtime
) -> None:
    # Issue 12 item 11: the render cache kept every version of every list forever, and a
    # list that did not change was served with the same token after its exp had passed.
    clock = FixedClock(runtime.clock.now())
    runtime.clock = clock
    with transaction(runtime.sessions) as session:
        ref = status.allocate(session, runtime, status.StatusKind.TOKEN)
        key = status.issuer_signer(session, runtime).public_key
    for i in range(12):
        with transaction(runtime.sessions) as session:
            flip = TokenStatus.SUSPENDED if i % 2 == 0 else TokenStatus.VALID
            status.set_status(session, runtime, ref, flip)
        assert client.get(f"/status-lists/{ref.list_id}").status_code == 200
    assert len(status.render_cache(runtime)) == 1
    clock.advance(timedelta(days=2))
    payload = verify_compact(
        client.get(f"/status-lists/{ref.list_id}").text,
        key,
        typ="statuslist+jwt",
        algs=ACCEPTED_ALGS,
    )
    now = int(clock.now().timestamp())
    assert payload["iat"] == now
    assert payload["exp"] > now
