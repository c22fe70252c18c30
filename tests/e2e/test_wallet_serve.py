"""Seed 004's threshold proof end to end with real processes, on SQLite and PostgreSQL:
`commons serve`; the SHG story up to a member holding her CommunityTierCredential
(tests/reputation_story.py); `commons wallet serve` started for her wallet; a local app
asks it `POST /v1/threshold-proof` with the bearer token, and a relying party verifies the
answer with the verifier's check (`verifier.verify_threshold_proof`: the presentation's
issuer signature and key binding, then step 8 over the proof).  The same answer checked
against another threshold, nonce, audience or context, or with its proof altered, is
refused; a threshold above her score and a context she holds nothing in get one answer
that names no score; requests without the token, to a non-loopback Host or from a browser
Origin are refused; the wallet keeps a history of every proof asked."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.e2e.test_wallet_e2e import cli, platform
from tests.ports import free_port
from tests.reputation_story import CTX, TierHolder, member_with_tier

from credit_commons import zk
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.sd_jwt_errors import SdJwtInvalid
from credit_commons.keys import PublicKey, public_key_from_jwk
from credit_commons.verifier import VerificationDenied, verify_threshold_proof
from credit_commons.verifier.status_fetch import StatusListFetcher
from credit_commons.wallet.store import Wallet
from credit_commons.wallet.zk_proofs import fetch_statement
from credit_commons.zk.registry import artefact_files

__all__ = ["platform"]

COMMONS = [sys.executable, "-m", "credit_commons.cli"]
SILVER = 25_000_000  # silver's minimum score, in micro-units


@contextmanager
def wallet_server(holder: TierHolder, base: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`commons wallet serve` for the holder's wallet: (its URL, the bearer token)."""
    port = free_port()
    token_file = tmp_path / "wallet-serve.token"
    log = (tmp_path / "wallet-serve.log").open("wb")
    process = subprocess.Popen(
        [*COMMONS, "wallet", "serve", "--port", str(port), "--url", base,
         "--token-file", str(token_file)],
        env=holder.wallet,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if token_file.exists():
                try:
                    httpx.get(url, timeout=1)
                    break
                except httpx.TransportError:
                    pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail((tmp_path / "wallet-serve.log").read_text())
            time.sleep(0.1)
        assert token_file.stat().st_mode & 0o777 == 0o600
        yield url, token_file.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        log.close()
    assert not token_file.exists()  # removed at exit
    served_log = (tmp_path / "wallet-serve.log").read_text()
    assert token_file.name in served_log
    assert holder.wallet["COMMONS_WALLET_PASSPHRASE"] not in served_log


def _statement(base: str) -> zk.LoadedStatement:
    # The relying party's copy of the registry's statement, its artefacts re-hashed.
    fetcher = OutboundFetcher(allow_private=True, allow_http=True, allow_loopback=True)
    with httpx.Client(timeout=10) as http:
        statement = fetch_statement(
            http, fetcher, f"{base}/v1/zk/statements", "community_score_at_least"
        )
    fetcher.close()
    paths = artefact_files(statement, zk.ARTEFACTS_DIR)
    return zk.LoadedStatement(statement, paths, {r: p.read_bytes() for r, p in paths.items()})


def _issuer_keys(http: httpx.Client) -> Any:
    # The platform's issuer keys (SD-JWT VC issuer metadata), by kid.
    keys = http.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]
    by_kid = {k["kid"]: public_key_from_jwk(k) for k in keys}

    def resolve(header: Any, payload: Any) -> PublicKey:
        return by_kid[header["kid"]]

    return resolve


@contextmanager
def _status_lists(base: str) -> Iterator[StatusListFetcher]:
    # The relying party's status check: the platform's lists fetched (loopback, plain HTTP in
    # this test) and their signatures checked under the issuer's keys.
    keys = httpx.get(f"{base}/.well-known/jwt-vc-issuer", timeout=10).json()["jwks"]["keys"]
    by_kid = {k["kid"]: public_key_from_jwk(k) for k in keys}
    fetcher = OutboundFetcher(allow_private=True, allow_http=True, allow_loopback=True)
    try:
        yield StatusListFetcher(fetcher, lambda header: by_kid[header["kid"]])
    finally:
        fetcher.close()


def _answer_after_pending(
    local: httpx.Client, env: dict[str, str], body: dict[str, Any]
) -> httpx.Response:
    # The first request asks the platform for the bundle (503 with Retry-After while it is
    # built off the request path); a worker pass builds it (bounded retries).
    for _ in range(3):
        answer = local.post("/v1/threshold-proof", json=body)
        if answer.status_code != 503:
            return answer
        assert answer.json()["code"] == "wallet.score_pending"
        assert int(answer.headers["Retry-After"]) > 0
        cli(env, "log", "checkpoint", "--publish")
    return answer


def test_threshold_proof_over_the_wallet_server(
    platform: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = platform
    with httpx.Client(base_url=base, timeout=10) as http:
        holder = member_with_tier(base, env, tmp_path, http)
        resolve = _issuer_keys(http)
    assert holder.tiers == ["silver"]
    statement = _statement(base)
    nonce, audience = "n-0123456789abcdef", "https://bank.example"
    asked = {"ctx": CTX, "threshold": SILVER, "nonce": nonce, "audience": audience}

    with wallet_server(holder, base, tmp_path) as (url, token), _status_lists(base) as lists:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=30, headers=auth) as local:
            answered = _answer_after_pending(local, env, asked)
            assert answered.status_code == 200, answered.text
            assert answered.headers["Cache-Control"] == "no-store"
            answer = answered.json()
            assert answer["checkpoint"].startswith(base.split("://")[1])  # the log's origin line
            assert answer["request"]["threshold"] == SILVER

            # The relying party's check accepts; it learns the tier, never the score.
            now, today = int(time.time()), zk.day_number(datetime.now(UTC).date())
            kwargs: dict[str, Any] = {
                "ctx": CTX, "threshold": SILVER, "nonce": nonce, "audience": audience,
                "statement": statement, "issuer_key_resolver": resolve, "status": lists.status,
                "now": now,
                "today": today,
            }  # fmt: skip
            claims = verify_threshold_proof(answer, **kwargs)
            assert (claims["tier"], claims["ctx"]) == ("silver", CTX)
            assert "score_opening" not in claims

            # Another threshold, nonce, audience or context than the proof's: refused.
            for changed in (
                {"threshold": SILVER - 1},
                {"nonce": "n-another-nonce-000"},
                {"audience": "https://other.example"},
                {"ctx": "shg:other"},
            ):
                with pytest.raises((VerificationDenied, SdJwtInvalid)):
                    verify_threshold_proof(answer, **{**kwargs, **changed})
            # An altered proof: its threshold signal, then a point of the proof.
            signals = answer["proof"]["public_signals"]
            lowered = {**answer["proof"], "public_signals": [signals[0], "1", signals[2]]}
            with pytest.raises(VerificationDenied) as denied:
                verify_threshold_proof({**answer, "proof": lowered}, **kwargs)
            assert denied.value.reason.value == "zk_param_mismatch"
            points = answer["proof"]["proof"]
            swapped = {**points, "pi_a": points["pi_c"], "pi_c": points["pi_a"]}
            with pytest.raises(VerificationDenied) as denied:
                verify_threshold_proof(
                    {**answer, "proof": {**answer["proof"], "proof": swapped}}, **kwargs
                )
            assert denied.value.reason.value == "zk_proof_invalid"

            # Above her score, or a context she holds nothing in: one answer, no score.
            score = _score(holder)
            refusals = [
                local.post("/v1/threshold-proof", json={**asked, "threshold": score + 1}),
                local.post("/v1/threshold-proof", json={**asked, "ctx": "shg:other"}),
            ]
            for refused in refusals:
                assert refused.status_code == 422, refused.text
                assert refused.headers["content-type"] == "application/problem+json"
                assert refused.json()["code"] == "wallet.threshold_unprovable"
                assert str(score) not in refused.text
                assert f"{score // 10**6}." not in refused.text
            assert refusals[0].json()["detail"] == refusals[1].json()["detail"]
            invalid = local.post("/v1/threshold-proof", json={**asked, "threshold": -1})
            assert (invalid.status_code, invalid.json()["field"]) == (422, "threshold")

            # Her score bundle, through the wallet: the record with its values.
            bundle = local.get("/v1/scores", params={"did": holder.did, "ctx": CTX})
            assert bundle.status_code == 200, bundle.text
            assert bundle.json()["record"]["tier"] == "silver"
            other = local.get("/v1/scores", params={"did": "did:key:z6MkOther", "ctx": CTX})
            assert other.status_code == 404

        # Without the token, with another, to another Host, from a browser page: refused.
        refused_codes = [
            httpx.post(f"{url}/v1/threshold-proof", json=asked).status_code,
            httpx.post(
                f"{url}/v1/threshold-proof", json=asked, headers={"Authorization": "Bearer x"}
            ).status_code,
            httpx.post(
                f"{url}/v1/threshold-proof",
                json=asked,
                headers={**auth, "Host": "rebound.example"},
            ).status_code,
            httpx.post(
                f"{url}/v1/threshold-proof",
                json=asked,
                headers={**auth, "Origin": "https://shop.example"},
            ).status_code,
        ]
        assert refused_codes == [401, 401, 403, 403]

    # The wallet's history names every proof asked: to whom, when, and what came of it.
    proofs: Any = cli(holder.wallet, "wallet", "proofs")
    outcomes = [(p["ctx"], p["threshold"], p["outcome"]) for p in proofs]
    assert outcomes[-3:] == [
        (CTX, SILVER, "proved"),
        (CTX, score + 1, "unprovable"),
        ("shg:other", SILVER, "unprovable"),
    ]
    assert {o for _, _, o in outcomes[:-3]} <= {"wallet.score_pending"}  # asked while built
    assert all(p["audience"] == audience and p["nonce"] == nonce for p in proofs)
    assert all(datetime.fromisoformat(p["at"]).tzinfo is not None for p in proofs)


def _score(holder: TierHolder) -> int:
    # Her score in micro-units, from the credential's opening (test-side knowledge only).
    from credit_commons.wallet.held import held_facts  # noqa: PLC0415

    opened = Wallet.open(
        Path(holder.wallet["COMMONS_WALLET_FILE"]), holder.wallet["COMMONS_WALLET_PASSPHRASE"]
    )
    claims = held_facts(opened.credential(holder.local_id)).claims
    return int(claims["score_opening"]["score"])


def test_wallet_serve_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    env = {"COMMONS_WALLET_FILE": str(tmp_path / "none.json")}
    for host in ("0.0.0.0", "192.0.2.1", "::", "example.com"):
        result = commons(["wallet", "serve", "--host", host], env)
        assert result.returncode != 0
        assert "loopback" in result.stderr, result.stderr
    # Refused before the passphrase is asked or the wallet is read.
    assert not (tmp_path / "none.json").exists()
