"""SD-JWT builds on worker processes (issuer/build_pool.py): a pooled bulk issuance gives
credentials that verify like one-process ones, on SQLite and PostgreSQL; every way a
worker can fail ends in the caller building, or raising the first failing job's error."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from tests.factories import readiness_claims

from credit_commons import verifier
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_decode
from credit_commons.core.errors import ValidationError
from credit_commons.formats.sd_jwt_errors import ClaimsInvalid
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.identity import service as identity_service
from credit_commons.identity.auth import Principal
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.issuer import credentials
from credit_commons.issuer import service as catalogue_service
from credit_commons.issuer.build_pool import BuildJob, BuildPool, PendingBuilds, build_all
from credit_commons.issuer.catalogue import CREDIT_READINESS
from credit_commons.issuer.models import CredentialRow
from credit_commons.issuer.sd_jwt import present
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime

ADMIN = Principal("admin:test", "admin")
AUDIENCE = "https://lender.example/verifier"


@pytest.fixture(scope="module")
def pool() -> Iterator[BuildPool]:
    """One worker, used for batches of two or more (the default is 100)."""
    with BuildPool(1, min_jobs=2) as started:
        started.start()
        yield started


def _holder() -> tuple[PrivateKey, dict[str, str]]:
    key = PrivateKey.generate(KeyType.ED25519)
    return key, public_key_to_jwk(key.public_key)


def _job(name: str = "Ravi", **extra: Any) -> BuildJob:
    _, jwk = _holder()
    claims = {"name": name, "tier": "A", "nested": {"x": 1, "y": [1, 2]}, **extra}
    return (claims, ["/name", "/nested/x"], "EdDSA", {"typ": "dc+sd-jwt", "kid": "k1"}, jwk)


def _payload(built: tuple[bytes, str]) -> dict[str, Any]:
    return dict(json.loads(b64url_decode(built[0].decode().split(".")[1])))


def _without_digests(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_digests(v) for k, v in node.items() if k != "_sd"}
    return node


def _disclosed(built: tuple[bytes, str]) -> dict[str, Any]:
    items = [json.loads(b64url_decode(d)) for d in built[1].split("~") if d]
    return {item[1]: item[2] for item in items}


def _subjects(rt: Runtime, n: int) -> list[tuple[str, PrivateKey, dict[str, str]]]:
    made = []
    with transaction(rt.sessions) as session:
        for _ in range(n):
            body = IdentityCreate.model_validate({"roles": ["business"], "profile": {"name": "M"}})
            token = identity_service.create_identity(session, rt, body).identity_token
            made.append((token, *_holder()))
    return made


def _requests(
    subjects: list[tuple[str, PrivateKey, dict[str, str]]],
) -> list[credentials.IssueRequest]:
    return [
        credentials.IssueRequest(CREDIT_READINESS.name, token, readiness_claims(token), jwk)
        for token, _, jwk in subjects
    ]


def test_pooled_builds_are_the_jobs_built_here(pool: BuildPool) -> None:
    jobs = [_job(f"person {i}") for i in range(7)]
    pending = pool.submit(jobs)
    pooled, here = pending.result(), build_all(jobs)
    assert pending.sent == pending.from_workers == 1  # really built by the worker
    assert len(pooled) == len(here) == 7
    for i, (a, b) in enumerate(zip(pooled, here, strict=True)):
        assert a[0].split(b".")[0] == b[0].split(b".")[0]  # the same protected header
        first, second = _payload(a), _payload(b)
        assert first["_sd"] != second["_sd"]  # fresh salts on each side
        assert _without_digests(first) == _without_digests(second)
        assert _disclosed(a) == _disclosed(b) == {"name": f"person {i}", "x": 1}
        assert first["cnf"]["jwk"] == dict(jobs[i][4])


def test_pooled_issuance_verifies_and_is_stored_like_one_process(
    runtime: Runtime, pool: BuildPool
) -> None:
    subjects = _subjects(runtime, 6)
    with transaction(runtime.sessions) as session:
        pooled = credentials.issue_credentials(
            session, runtime, ADMIN, _requests(subjects[:4]), builders=pool
        )
        alone = credentials.issue_credentials(session, runtime, ADMIN, _requests(subjects[4:]))
    assert not pool.broken
    now = int(runtime.clock.now().timestamp())
    for (token, holder, _), issued in zip(subjects, pooled + alone, strict=True):
        shown = present(
            SdJwt.parse(issued.credential),
            disclose={"/income_bracket", "/score_opening"},
            holder_signer=holder,
            audience=AUDIENCE,
            nonce="n-" + token,
            iat=now,
        )
        with transaction(runtime.read_sessions) as session:
            result = verifier.verify_presentation(
                session, runtime, shown, audience=AUDIENCE, nonce="n-" + token
            )
            row = session.scalar(
                select(CredentialRow).where(CredentialRow.id == issued.credential_id)
            )
            assert row is not None
            opened = runtime.vault.open(
                session,
                bytes(row.sealed),
                subject=token,
                purpose="credentials",
                record=issued.credential_id,
            )
        assert result.claims["income_bracket"] == readiness_claims(token)["income_bracket"]
        assert result.claims["enterprise"]["identity_token"] == token
        assert "debt_ratio_bracket" not in result.claims  # not disclosed
        assert opened.decode() == issued.credential
        assert row.token_hash == hashlib.sha256(issued.credential.encode()).hexdigest()


def test_a_failing_job_is_named_wherever_it_was_built(pool: BuildPool) -> None:
    jobs = [_job(f"p{i}") for i in range(6)]
    jobs[4] = _job("bad", _sd=["reserved"])  # a reserved claim name: prepare refuses it
    jobs[5] = _job("bad", _sd_alg="x")
    # The whole batch goes to the worker, so that job 4 fails there: the caller's share
    # of a batch follows how long earlier tests waited (under load it grows to half, and
    # the worker's slice would end before job 4).
    pool.share = 0.0
    pending = pool.submit(jobs)
    with pytest.raises(ClaimsInvalid) as info:
        pending.result()
    assert info.value.extra["item"] == 4
    assert (pending.sent, pending.from_workers) == (1, 0)  # failed there, raised here
    with pytest.raises(ClaimsInvalid) as info:
        PendingBuilds(jobs, []).result()
    assert info.value.extra["item"] == 4


def test_a_batch_names_the_request_whose_build_failed(runtime: Runtime, pool: BuildPool) -> None:
    # A type whose schema lets a reserved name through: only the SD-JWT build refuses it.
    with transaction(runtime.sessions) as session:
        catalogue_service.put_type(
            session,
            runtime,
            ADMIN,
            {
                "name": "LooseRecord",
                "vct": "https://credit-commons.dev/vct/loose/v1",
                "schema": {"type": "object"},
                "disclosable": [],
                "default_validity_days": 30,
            },
        )
    subjects = _subjects(runtime, 3)
    requests = [
        credentials.IssueRequest("LooseRecord", token, {"n": i}, jwk)
        for i, (token, _, jwk) in enumerate(subjects)
    ]
    requests[2] = credentials.IssueRequest(
        "LooseRecord", subjects[2][0], {"_sd": []}, subjects[2][2]
    )
    for builders in (pool, None):
        with pytest.raises(ClaimsInvalid) as info, transaction(runtime.sessions) as session:
            credentials.issue_credentials(session, runtime, ADMIN, requests, builders=builders)
        assert info.value.extra["item"] == 2
    with transaction(runtime.read_sessions) as session:
        assert session.scalars(select(CredentialRow.id)).all() == []


def test_a_job_a_worker_cannot_take_is_built_here(pool: BuildPool) -> None:
    class Local(str):  # builds as a JSON string, but a local class cannot be pickled
        pass

    jobs = [_job(f"p{i}") for i in range(4)]
    jobs[1] = _job(Local("unpicklable"))
    built = pool.build_many(jobs)
    assert _disclosed(built[1]) == {"name": "unpicklable", "x": 1}
    assert not pool.broken


def test_a_slice_no_worker_can_take_is_built_here(pool: BuildPool) -> None:
    # The one worker still owes the answer to the first batch: the second is built here,
    # without waiting; both come out right, whichever is collected first.
    first = pool.submit([_job(f"a{i}") for i in range(4)])
    second = pool.submit([_job(f"b{i}") for i in range(4)])
    assert (first.sent, second.sent) == (1, 0)
    assert [_disclosed(b) for b in second.result()] == [{"name": f"b{i}", "x": 1} for i in range(4)]
    assert [_disclosed(b) for b in first.result()] == [{"name": f"a{i}", "x": 1} for i in range(4)]
    assert (first.from_workers, second.from_workers) == (1, 0)
    again = pool.submit([_job() for _ in range(2)])
    assert again.sent == 1  # the worker is free again
    assert len(again.result()) == 2


def test_answers_not_collected_are_dropped_on_cancel(pool: BuildPool) -> None:
    pending = pool.submit([_job(f"a{i}") for i in range(4)])
    pending.cancel()
    again = pool.submit([_job() for _ in range(2)])
    assert again.sent == 1  # the worker's answer was received and dropped
    assert len(again.result()) == 2
    # Asked for its builds after all, a cancelled batch builds them here.
    assert [_disclosed(b) for b in pending.result()] == [
        {"name": f"a{i}", "x": 1} for i in range(4)
    ]


def test_a_dead_worker_marks_the_pool_broken_and_builds_go_on_here() -> None:
    with BuildPool(1, min_jobs=2) as broken:
        broken.start()
        for worker in broken._workers:
            assert worker.process.pid is not None
            os.kill(worker.process.pid, signal.SIGKILL)
            worker.process.join()
        jobs = [_job(f"p{i}") for i in range(4)]
        built = broken.build_many(jobs)
        assert broken.broken
        assert [_disclosed(b) for b in built] == [{"name": f"p{i}", "x": 1} for i in range(4)]
        assert len(broken.build_many(jobs)) == 4  # and from now on without the pool


def test_a_worker_that_stops_answering_is_stopped_and_builds_go_on_here() -> None:
    with BuildPool(1, min_jobs=2, timeout=0.5) as stuck:
        stuck.start()
        worker = stuck._workers[0]
        assert worker.process.pid is not None
        os.kill(worker.process.pid, signal.SIGSTOP)  # alive, but never answers
        jobs = [_job(f"p{i}") for i in range(4)]
        assert [_disclosed(b) for b in stuck.build_many(jobs)] == [
            {"name": f"p{i}", "x": 1} for i in range(4)
        ]
        assert stuck.broken
        worker.process.join(5)
        assert not worker.process.is_alive()  # killed, not left behind


def test_an_interrupted_message_stops_the_worker_and_close_does_not_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with BuildPool(1, min_jobs=2) as interrupted:
        interrupted.start()
        worker = interrupted._workers[0]
        pid = worker.process.pid
        assert pid is not None

        def ctrl_c(message: bytes) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(worker.conn, "send_bytes", ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            interrupted.submit([_job() for _ in range(4)])
        assert interrupted.broken
        assert worker.lost
        monkeypatch.undo()
        assert len(interrupted.build_many([_job() for _ in range(4)])) == 4  # here, now
    with pytest.raises(ProcessLookupError):  # killed and reaped by close()
        os.kill(pid, 0)


def test_small_batches_stay_here_and_bad_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        BuildPool(0)
    with pytest.raises(ValidationError):
        BuildPool(33)
    with pytest.raises(ValidationError):
        BuildPool(1, min_jobs=1)
    with BuildPool(1) as unstarted:  # min_jobs 100: a batch of 3 never reaches a worker
        assert len(unstarted.build_many([_job() for _ in range(3)])) == 3
        assert unstarted._workers == []


def test_the_callers_share_follows_who_waited() -> None:
    with BuildPool(1, min_jobs=2) as balanced:
        first = balanced.share
        balanced._balance(0.05)  # the caller waited for the worker: it keeps more
        assert balanced.share > first
        for _ in range(50):
            balanced._balance(1.0)
        assert balanced.share == 0.5  # never more than half
        for _ in range(50):
            balanced._balance(0.0)  # the worker was done first: it gets more
        assert balanced.share == 0.0
        balanced.share = 0.5
        pending = balanced.submit([_job(f"p{i}") for i in range(4)])
        assert [(lo, hi, worker is not None) for lo, hi, worker in pending._slices] == [
            (0, 2, True),
            (2, 4, False),
        ]
        assert [_disclosed(b)["name"] for b in pending.result()] == ["p0", "p1", "p2", "p3"]
