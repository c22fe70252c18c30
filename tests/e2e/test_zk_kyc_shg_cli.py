"""Issue 18's age and membership statements end to end, on SQLite and PostgreSQL, with real
processes: ``commons serve``; the issuer desk offers the catalogue's ``KycCredential`` and
``ShgMembershipCredential`` and ``commons wallet accept-offer`` takes them; a lender asks,
through the verifier API, for ``age_at_least`` (60 years) and ``member_of_group`` (a set of
SHG ids) about them; ``commons wallet prove`` proves each, bound to the request's nonce,
audience and request hash, ``commons wallet present`` presents the credential showing only
the issuer's commitment, and the verifier, given both at its response URI, accepts.

A holder born too late, or whose group is not in the set, cannot produce an accepted proof:
``commons wallet prove`` fails for the stricter request, and the proof made for the laxer
one is refused against it (``zk_param_mismatch``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.e2e.test_wallet_e2e import cli, platform
from tests.factories import kyc_claims, shg_claims

from credit_commons.demo import lender_token
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.zk import KYC_VCT, SHG_VCT

__all__ = ["platform"]

SIXTY_YEARS = str(60 * 365)
NINETY_YEARS = str(90 * 365)


def _offer(http: httpx.Client, admin: dict[str, str], type_name: str, claims: Any) -> Any:
    made = http.post(
        "/v1/credential-offers",
        json={"type": type_name, "subject": claims["person"]["identity_token"], "claims": claims},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    return made.json()


def _ask(
    http: httpx.Client, lender: dict[str, str], vct: str, statement: str, params: dict[str, Any]
) -> dict[str, Any]:
    # A request by value (redirect_uri: prefix, direct_post): its parameters are the answer's.
    made = http.post(
        "/v1/verifier/requests",
        json={
            "dcql_query": {
                "credentials": [
                    {
                        "id": "q",
                        "format": "dc+sd-jwt",
                        "meta": {"vct_values": [vct]},
                        "claims": [{"path": ["zk_commitments"]}],
                    }
                ]
            },
            "zk_predicates": [
                {"id": "p", "statement": statement, "credential_query_id": "q", "params": params}
            ],
            "client_id_prefix": "redirect_uri",
            "response_mode": "direct_post",
        },
        headers=lender,
    )
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    assert created["request"] is not None
    return created


def _prove(
    wallet_env: dict[str, str],
    base: str,
    credential: str,
    statement: str,
    created: dict[str, Any],
    param: str,
) -> Any:
    request = created["request"]
    return commons(
        [
            "wallet",
            "prove",
            credential,
            statement,
            "--registry",
            base,
            "--nonce",
            request["nonce"],
            "--audience",
            request["client_id"],
            "--request-hash",
            request["zk_request_hash"],
            "--param",
            param,
            "--json",
        ],
        wallet_env,
    )


def _answer(
    http: httpx.Client,
    wallet_env: dict[str, str],
    credential: str,
    created: dict[str, Any],
    proof: Any,
) -> None:
    # What `commons wallet present <url>` would post (OpenID4VP §8.2, direct_post): the
    # presentation (no Disclosure: the commitment is a plain claim) and the proof.
    request = created["request"]
    presentation = cli(
        wallet_env,
        "wallet",
        "present",
        credential,
        "--nonce",
        request["nonce"],
        "--aud",
        request["client_id"],
    )["presentation"]  # type: ignore[call-overload]
    posted = http.post(
        request["response_uri"],
        data={
            "vp_token": json.dumps({"q": [presentation]}),
            "zk_proofs": json.dumps({"p": proof}),
            "state": request["state"],
        },
    )
    assert posted.status_code in (200, 400), posted.text


def _decision(
    http: httpx.Client, lender: dict[str, str], created: dict[str, Any]
) -> tuple[str | None, str | None]:
    status = http.get(f"/v1/verifier/requests/{created['id']}", headers=lender)
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["state"] == "decided", body
    return body["decision"], body["reason"]


@pytest.mark.parametrize(
    ("type_name", "statement", "held", "lax", "strict"),
    [
        ("KycCredential", "age_at_least", "1958-03-14", SIXTY_YEARS, NINETY_YEARS),
        (
            "ShgMembershipCredential",
            "member_of_group",
            "shg-42",
            "shg-17,shg-42,shg-99",
            "shg-1,shg-2",
        ),
    ],
)
def test_the_wallet_proves_age_and_membership_and_the_verifier_accepts(
    platform: tuple[str, dict[str, str]],
    tmp_path: Path,
    type_name: str,
    statement: str,
    held: str,
    lax: str,
    strict: str,
) -> None:
    base, env = platform
    registered = commons(["zk", "statements", "register", "--dev"], env)
    assert registered.returncode == 0, registered.stderr
    admin = {"Authorization": f"Bearer {cli(env, 'admin', 'token', 'issuer-desk')['token']}"}  # type: ignore[call-overload]
    wallet_env = {
        **env,
        "COMMONS_WALLET_PASSPHRASE": "correct horse battery staple",
        "COMMONS_WALLET_FILE": str(tmp_path / "wallet.json"),
    }
    cli(wallet_env, "wallet", "init")
    kyc = type_name == "KycCredential"
    vct, param = (KYC_VCT, "min_age_days") if kyc else (SHG_VCT, "groups")
    key = PrivateKey.generate(KeyType.ED25519)
    with httpx.Client(base_url=base, timeout=30) as http:
        person = http.post(
            "/v1/identities", json={"roles": ["business"], "profile": {"name": "Lakshmi"}}
        ).json()["identity_token"]
        claims = kyc_claims(person, held) if kyc else shg_claims(person, held)
        offer = _offer(http, admin, type_name, claims)
        received = cli(
            wallet_env,
            "wallet",
            "accept-offer",
            offer["offer_uri_by_reference"],
            "--tx-code",
            offer["tx_code"],
        )
        assert received["configuration"] == type_name  # type: ignore[call-overload]
        made = http.post(
            "/v1/admin/lenders",
            json={
                "name": "Gram Bank",
                "jwks": {"keys": [public_key_to_jwk(key.public_key)]},
                "allowed_purposes": ["loan.underwriting"],
            },
            headers=admin,
        )
        assert made.status_code == 201, made.text
        client_id = made.json()["client_id"]
        lender = {"Authorization": f"Bearer {lender_token(http, base, client_id, key)}"}

        def params(value: str) -> dict[str, Any]:
            return {param: int(value)} if kyc else {param: value.split(",")}

        # The holder proves the predicate; the verifier accepts, and learns no value.
        asked = _ask(http, lender, vct, statement, params(lax))
        proved = _prove(wallet_env, base, "c1", statement, asked, f"{param}={lax}")
        assert proved.returncode == 0, proved.stderr
        proof = json.loads(proved.stdout)
        assert held not in proved.stdout
        _answer(http, wallet_env, "c1", asked, proof)
        assert _decision(http, lender, asked) == ("allow", None)

        # Too young, or not in the set: no proof for the stricter request...
        stricter = _ask(http, lender, vct, statement, params(strict))
        refused = _prove(wallet_env, base, "c1", statement, stricter, f"{param}={strict}")
        assert refused.returncode != 0
        assert "wallet.predicate_unprovable" in refused.stderr
        # ...and the laxer one's, bound to this request, is not accepted for it.
        lax_here = _prove(wallet_env, base, "c1", statement, stricter, f"{param}={lax}")
        assert lax_here.returncode == 0, lax_here.stderr
        _answer(http, wallet_env, "c1", stricter, json.loads(lax_here.stdout))
        assert _decision(http, lender, stricter) == ("deny", "zk_param_mismatch")
