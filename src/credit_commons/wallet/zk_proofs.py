"""The holder's zero-knowledge proofs (issue 18 §4; docs/zk.md "Asking for a predicate in
OpenID4VP"): a predicate about a claim of a held credential, proved without disclosing it.

1. :func:`fetch_statement` — the statement from the platform's registry
   (``GET /v1/zk/statements/{id}``); the engine's artefacts it names are the local package
   data, re-hashed against the statement before proving;
2. :func:`prove` — the value and salt of the credential's commitment from its Disclosures
   (``zk.opening``: they must open the commitment the issuer signed), the public inputs in
   the statement's order — the commitment, the request's parameters, the binding of the
   request's nonce, audience and request hash — and the proof, by the engine's prover
   (snarkjs in a warm Node process);
3. :func:`answer_predicates` — every ``zk_predicates`` entry of an OpenID4VP request, from
   the credential the wallet presents for its credential query: the ``zk_proofs`` member
   of the response.

The proof discloses nothing of the value beyond the predicate; the commitment links the
presentations that show it (docs/zk.md, "What a verifier learns").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from urllib.parse import urlsplit

import httpx

from credit_commons import zk
from credit_commons.core.encoding import JsonObject, json_decode
from credit_commons.core.errors import CommonsError, ValidationError
from credit_commons.core.net import FetchFailed, OutboundFetcher
from credit_commons.formats.oid4vp import AuthorizationRequest
from credit_commons.wallet.held import held_facts
from credit_commons.wallet.store import StoredCredential, Wallet

__all__ = ["PredicateUnprovable", "answer_predicates", "fetch_statement", "prove", "registry_url"]

_MAX_STATEMENT: int = 64 * 1024


class PredicateUnprovable(ValidationError):
    """The wallet cannot prove a predicate: no credential answers it, the credential has no
    opening of its commitment, or its value does not satisfy the predicate (the engine
    cannot make a proof of a false statement)."""

    code = "wallet.predicate_unprovable"
    title = "The predicate cannot be proved"


def registry_url(response_uri: str) -> str:
    """The registry of the platform a request's ``response_uri`` belongs to."""
    parts = urlsplit(response_uri)
    return f"{parts.scheme}://{parts.netloc}/v1/zk/statements"


def fetch_statement(
    http: httpx.Client, fetcher: OutboundFetcher, registry: str, statement_id: str
) -> zk.Statement:
    """The statement ``statement_id`` of the registry at ``registry``.

    Raises ``FetchFailed``/``UnsafeUrl`` and ``StatementInvalid``.
    """
    url = f"{registry.rstrip('/')}/{statement_id}"
    fetcher.check_url(url)
    try:
        response = http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as e:
        raise FetchFailed("the statement registry could not be reached") from e
    if response.status_code != 200 or len(response.content) > _MAX_STATEMENT:
        raise FetchFailed(f"the registry has no statement {statement_id}")
    try:
        body = json_decode(response.content)
    except CommonsError as e:
        raise FetchFailed("the registry did not answer JSON") from e
    document = body.get("statement") if isinstance(body, dict) else None
    return zk.parse_statement(document)


def _full_claims(stored: StoredCredential) -> JsonObject:
    # Every claim of the credential, as a verifier holding every Disclosure would see it.
    return dict(held_facts(stored).claims)


def prove(
    stored: StoredCredential,
    statement: zk.Statement,
    params: Mapping[str, int | tuple[str, ...]],
    *,
    nonce: str,
    audience: str,
    request_hash: str,
    today: date,
) -> JsonObject:
    """A proof of ``statement`` with ``params`` about ``stored``, bound to the request
    (``nonce``, ``audience``, ``request_hash``): ``{"statement", "proof", "public_signals"}``.

    Raises :class:`PredicateUnprovable` (no opening in the credential, another credential
    type, a value that does not satisfy the predicate) and the engine's errors
    (``ArtefactMismatch`` for local artefacts that are not the statement's, Node missing).
    """
    claims = _full_claims(stored)
    if claims.get("vct") != statement.credential.vct:
        raise PredicateUnprovable(f"{stored.id} is not a credential {statement.id} reads")
    try:
        value, salt, commitment = zk.opening(statement, claims)
    except zk.ClaimNotProvable as e:
        raise PredicateUnprovable(e.detail) from e
    try:
        proof, signals = zk.prove_statement(
            statement,
            value=value,
            salt=salt,
            commitment=commitment,
            params=params,
            binding=zk.request_binding(nonce=nonce, audience=audience, request_hash=request_hash),
            today=zk.day_number(today),
        )
    except (zk.ProvingFailed, zk.FieldElementInvalid) as e:  # the value does not satisfy it
        raise PredicateUnprovable(f"{stored.id} does not satisfy {statement.id}") from e
    return {"statement": statement.id, "proof": proof, "public_signals": [str(s) for s in signals]}


def answer_predicates(
    wallet: Wallet,
    request: AuthorizationRequest,
    presented: Mapping[str, str],
    *,
    http: httpx.Client,
    fetcher: OutboundFetcher,
    today: date,
) -> JsonObject | None:
    """The ``zk_proofs`` answering the request's ``zk_predicates`` (None when it asks for
    none), each from the credential presented for its query (``presented``: query id to
    local credential id).

    Raises :class:`PredicateUnprovable` and what :func:`fetch_statement` and :func:`prove`
    raise.
    """
    if not request.zk_predicates or request.zk_request_hash is None:
        return None
    registry = registry_url(request.response_uri)
    proofs: JsonObject = {}
    for predicate in request.zk_predicates:
        credential_id = presented.get(predicate.credential_query_id)
        if credential_id is None:
            raise PredicateUnprovable(f"no credential answers {predicate.credential_query_id}")
        statement = fetch_statement(http, fetcher, registry, predicate.statement)
        proofs[predicate.id] = prove(
            wallet.credential(credential_id),
            statement,
            predicate.params,
            nonce=request.nonce,
            audience=request.client_id,
            request_hash=request.zk_request_hash,
            today=today,
        )
    return proofs
