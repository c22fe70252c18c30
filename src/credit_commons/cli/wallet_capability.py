"""``commons wallet capabilities --ctx CTX``: pick up the capability credentials the platform
issued to the holder's DID in a context (docs/reputation.md "Capability credentials").

The request carries the subject's proof (a ``score-request+jwt`` signed by the holder key);
each credential received must be bound to that key (``cnf``) and is kept in the wallet once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, emit
from credit_commons.cli.wallet_platform import UrlOption, WalletOption, platform_session
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ValidationError
from credit_commons.core.net import FetchFailed
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.keys import encode_did_key, public_key_to_jwk
from credit_commons.reputation.capability import sign_subject_proof

__all__ = ["capabilities"]


def capabilities(
    ctx: typer.Context,
    context: Annotated[str, typer.Option("--ctx", help="The reputation context.")],
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Receive the capability credentials issued to your DID in a context (kept once)."""
    with platform_session(ctx, wallet, url, None) as (opened, client):
        key = opened.holder_key
        did = encode_did_key(key.public_key)
        proof = sign_subject_proof(
            key, did=did, ctx=context, audience=client.url, iat=int(time.time())
        )
        answer = client.request(
            "GET",
            "/v1/reputation/capabilities",
            params={"did": did, "ctx": context},
            headers={"Subject-Proof": proof},
        )
        items = answer.get("credentials") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise FetchFailed(f"{client.url} did not answer a list of credentials")
        held = {c.credential for c in opened.credentials}
        mine = public_key_to_jwk(key.public_key)
        kept: list[JsonObject] = []
        for item in items:
            text = item.get("credential") if isinstance(item, dict) else None
            if not isinstance(text, str):
                raise FetchFailed(f"{client.url} answered a credential that is not a string")
            cnf = SdJwt.parse(text).payload.get("cnf")
            if not isinstance(cnf, dict) or cnf.get("jwk") != mine:
                raise ValidationError("a capability credential is not bound to this wallet's key")
            if text in held:
                continue
            local_id = opened.add_credential(
                text,
                issuer=client.url,
                configuration="CommunityTierCredential",
                received_at=datetime.now(UTC).isoformat(),
            )
            held.add(text)
            kept.append({"id": local_id, "tier": item.get("tier"), "ctx": context})
    emit(as_json, {"did": did, "received": kept}, f"{len(kept)} capability credential(s) kept")
