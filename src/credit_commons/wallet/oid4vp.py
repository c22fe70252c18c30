"""Presenting credentials to a verifier with OpenID4VP 1.0: the wallet's side.

1. :func:`read_request` — the request, by value (URL parameters), as a Request Object by
   value (``request``) or by reference (``request_uri``, GET, or POST with the wallet's
   metadata and a ``wallet_nonce`` when the verifier asks, §5.10); a
   ``decentralized_identifier:`` client's Request Object verified under its DID's key
   (resolved through ``keys.DidResolver``: ``did:web`` over the SSRF-guarded fetcher), a
   ``redirect_uri:`` client's request unsigned with its response URI as its identifier;
2. :func:`plan` — the DCQL query matched against the held credentials
   (``formats.dcql.select``): which credential answers which query, disclosing which claims;
   what the holder is shown before agreeing;
3. :func:`build_vp_token` — the presentations: an SD-JWT VC with only the selected
   Disclosures (an array element under a ``null`` path only when its value matches the
   query's ``values``, §6.3) and a Key Binding JWT signed by the key of its ``cnf``
   (``nonce``, ``aud`` = the client identifier with its prefix, ``iat``, ``sd_hash``;
   §B.3.6); a VC-JWT inside a VP-JWT signed by the key whose ``did:key`` is its subject
   (``nonce``, ``aud``; §B.1.3.1.5).  A credential the wallet cannot bind — no ``cnf`` or
   subject DID, or a key the wallet does not hold — answers only a query that does not
   require holder binding, and goes without KB-JWT or VP (Appendix B.1, B.3);
4. :func:`send_response` / :func:`send_error` — ``direct_post``, or ``direct_post.jwt``
   encrypted to the verifier's key from ``client_metadata.jwks`` (§8.2, §8.3); the verifier's
   answer (read up to a bound) may carry a ``redirect_uri`` to follow (§8.2).

:func:`respond` asks the holder in every case before anything is sent: a holder who
declines and a wallet holding nothing that matches send the verifier the same
``access_denied`` with no description (§15.4.1: the verifier must not tell non-consent from
a value mismatch, and no response without End-User interaction).

Every URL is checked by the fetcher's guard before it is fetched or posted to.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from credit_commons import zk
from credit_commons.core.encoding import JsonObject, json_decode
from credit_commons.core.errors import CommonsError
from credit_commons.core.net import FetchFailed, OutboundFetcher
from credit_commons.formats.dcql import CredentialMatch, DcqlUnsatisfiable, HeldFacts, select
from credit_commons.formats.jws import sign_compact
from credit_commons.formats.oid4vp import (
    ENCRYPTION_ALG,
    ENCRYPTION_ENCS,
    AuthorizationRequest,
    AuthorizationRequestInvalid,
    ClientIdPrefix,
    ErrorCode,
    Invocation,
    VpToken,
    encrypt_response,
    parse_authorization_request,
    parse_client_id,
    parse_invocation,
    read_request_object,
    read_unsigned_request_object,
    select_encryption_key,
)
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.issuer import present
from credit_commons.keys import ACCEPTED_ALGS, DidResolver, PrivateKey, encode_did_key
from credit_commons.wallet.held import (
    VC_JWT,
    claim_text,
    disclosure_pointers,
    held_facts,
    holder_binding,
)
from credit_commons.wallet.store import StoredCredential, Wallet
from credit_commons.wallet.zk_proofs import PredicateUnprovable, answer_predicates

__all__ = [
    "Outcome",
    "PlannedPresentation",
    "PresentationPlan",
    "ReadRequest",
    "VerifierRefused",
    "build_vp_token",
    "plan",
    "read_request",
    "respond",
    "send_error",
    "send_response",
    "wallet_metadata",
]

_MAX_BODY: Final = 256 * 1024
_JAR_MEDIA_TYPE: Final = "application/oauth-authz-req+jwt"


class VerifierRefused(FetchFailed):
    """The verifier's endpoint answered with an error (its ``error`` when it gave one)."""

    code = "wallet.verifier_refused"
    title = "The verifier refused"


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """A request the wallet has read and checked: the request, and the verification method
    that signed it (None for an unsigned ``redirect_uri:`` request)."""

    request: AuthorizationRequest
    signed_by: str | None


def wallet_metadata(client_prefix: ClientIdPrefix) -> JsonObject:
    """What the wallet tells a verifier it supports (§10.1, sent with ``request_uri_method``
    ``post``); ``request_object_signing_alg_values_supported`` only where the client's
    prefix permits signed requests (§5.10: "MUST NOT include this parameter if the Client
    Identifier Prefix precludes signed Request Objects")."""
    algs = sorted(ACCEPTED_ALGS)
    metadata: JsonObject = {
        "vp_formats_supported": {
            "dc+sd-jwt": {"sd-jwt_alg_values": algs, "kb-jwt_alg_values": algs},
            "jwt_vc_json": {"alg_values": algs},
        },
        "client_id_prefixes_supported": ["redirect_uri", "decentralized_identifier"],
        "authorization_encryption_alg_values_supported": [ENCRYPTION_ALG],
        "authorization_encryption_enc_values_supported": list(ENCRYPTION_ENCS),
    }
    if client_prefix is not ClientIdPrefix.REDIRECT_URI:
        metadata["request_object_signing_alg_values_supported"] = algs
    return metadata


def _bounded(response: httpx.Response) -> bytes:
    size, chunks = 0, []
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > _MAX_BODY:
            raise FetchFailed("the verifier's answer is too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _fetch_request_object(
    http: httpx.Client, fetcher: OutboundFetcher, invocation: Invocation, wallet_nonce: str
) -> str:
    # §5.10 / RFC 9101 §5.2.3: the Request Object at request_uri.  Any HTTP error ends the
    # process (§5.10.2).
    url = invocation.request_uri
    if url is None:
        raise AuthorizationRequestInvalid("the request has no request_uri")
    fetcher.check_url(url)
    headers = {"Accept": _JAR_MEDIA_TYPE}
    try:
        if invocation.request_uri_method == "post":
            prefix = parse_client_id(invocation.client_id).prefix
            form = {
                "wallet_metadata": json.dumps(wallet_metadata(prefix)),
                "wallet_nonce": wallet_nonce,
            }
            request = http.build_request("POST", url, data=form, headers=headers)
        else:
            request = http.build_request("GET", url, headers=headers)
        response = http.send(request, stream=True)
        try:
            body = _bounded(response)
        finally:
            response.close()
    except httpx.HTTPError as e:
        raise FetchFailed("the request_uri could not be fetched") from e
    if response.status_code != 200:
        raise VerifierRefused(f"the request_uri answered HTTP {response.status_code}")
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != _JAR_MEDIA_TYPE:
        raise AuthorizationRequestInvalid(f"the request_uri did not answer {_JAR_MEDIA_TYPE}")
    try:
        return body.decode("ascii").strip()
    except UnicodeDecodeError as e:
        raise AuthorizationRequestInvalid("the request object is not a JWT") from e


def _read_object(
    token: str, client_id: str, resolver: DidResolver, wallet_nonce: str | None
) -> ReadRequest:
    # A Request Object, signed or (a redirect_uri: client's) unsigned.
    client = parse_client_id(client_id)
    if client.prefix is ClientIdPrefix.REDIRECT_URI:
        request = read_unsigned_request_object(token, client_id=client_id)
        if wallet_nonce is not None and request.wallet_nonce != wallet_nonce:
            raise AuthorizationRequestInvalid("the request object does not carry our wallet_nonce")
        return ReadRequest(request, None)
    signed_by: list[str] = []

    def key_for_kid(kid: str) -> Any:
        signed_by.append(kid)
        return resolver.resolve_key(kid)

    request = read_request_object(
        token, key_for_kid, client_id=client_id, wallet_nonce=wallet_nonce
    )
    return ReadRequest(request, signed_by[0])


def read_request(
    url: str, *, http: httpx.Client, fetcher: OutboundFetcher, resolver: DidResolver
) -> ReadRequest:
    """Read and check the request a verifier handed over as ``url`` (step 1 of the module).

    Raises :class:`AuthorizationRequestInvalid` (with the §8.5 code), ``FetchFailed`` /
    ``UnsafeUrl`` for the network, and the DID resolver's errors when the verifier's key
    cannot be found.
    """
    invocation = parse_invocation(url)
    # Who asks decides how the request must come; a client this wallet cannot authenticate
    # is refused before anything is fetched from it.
    prefix = parse_client_id(invocation.client_id).prefix
    if prefix is ClientIdPrefix.PRE_REGISTERED:
        # §5.9.2: a pre-registered client "needs to be known to the Wallet in advance";
        # this wallet knows none.
        raise AuthorizationRequestInvalid("this wallet knows no pre-registered verifier")
    if invocation.request_uri is not None:
        nonce = secrets.token_urlsafe(16) if invocation.request_uri_method == "post" else None
        token = _fetch_request_object(http, fetcher, invocation, nonce or "")
        return _read_object(token, invocation.client_id, resolver, nonce)
    if invocation.request is not None:
        return _read_object(invocation.request, invocation.client_id, resolver, None)
    request = parse_authorization_request(invocation.params, signed=False)
    return ReadRequest(request, None)


@dataclass(frozen=True, slots=True)
class PlannedPresentation:
    """One presentation the wallet would send: for which Credential Query, of which stored
    credential, disclosing which claims (as people read them)."""

    query_id: str
    credential_id: str
    configuration: str
    issuer: str
    claims: tuple[str, ...]
    match: CredentialMatch


@dataclass(frozen=True, slots=True)
class PresentationPlan:
    """What answering a request would disclose, and to whom (no presentations: the wallet
    holds nothing that answers it)."""

    request: AuthorizationRequest
    verifier: str
    presentations: tuple[PlannedPresentation, ...]


def _binding_key(wallet: Wallet, stored: StoredCredential) -> PrivateKey | None:
    # The wallet key that proves the credential's holder binding: the key of its cnf.jwk,
    # or the key whose did:key is its subject -- current or rotated away.  None when the
    # credential has no binding or the wallet does not hold that key.
    binding = holder_binding(stored)
    if binding is None:
        return None
    if binding.jwk is not None:
        return wallet.key_matching(binding.jwk)
    return wallet.key_for_did(binding.did) if binding.did is not None else None


def _facts(wallet: Wallet, stored: StoredCredential) -> HeldFacts:
    # A credential bound to a key this wallet does not hold cannot be presented with a
    # holder-binding proof: DCQL sees it as unbound (it answers only queries that do not
    # require_cryptographic_holder_binding, §6.1).
    # A commitment's opening is never disclosed (held.is_opening): DCQL does not see it,
    # so a query that names it cannot be answered.
    facts = held_facts(stored)
    if zk.OPENINGS_CLAIM in facts.claims:
        claims = {k: v for k, v in facts.claims.items() if k != zk.OPENINGS_CLAIM}
        facts = replace(facts, claims=claims)
    if facts.holder_binding and _binding_key(wallet, stored) is None:
        return replace(facts, holder_binding=False)
    return facts


def plan(wallet: Wallet, request: AuthorizationRequest) -> PresentationPlan:
    """Match the request's DCQL query against the wallet's credentials (§6.4): the first
    satisfiable option of each credential set, the first matching credential of each query
    (all of them for ``multiple``).  A credential counts as holder-bound only when the
    wallet holds the key it is bound to.

    Raises ``DcqlUnsatisfiable`` when the wallet cannot answer, and
    ``UnreadableCredential`` for a credential it cannot read.
    """
    stored = {c.id: c for c in wallet.credentials}
    held: list[HeldFacts] = [_facts(wallet, c) for c in stored.values()]
    chosen = select(request.dcql_query, held).plan()
    if not chosen:  # only optional credential sets, none of which can be met
        raise DcqlUnsatisfiable("no held credential answers any credential set")
    presentations = tuple(
        PlannedPresentation(
            query_id=query_id,
            credential_id=match.held.ref,
            configuration=stored[match.held.ref].configuration,
            issuer=match.held.issuer,
            claims=tuple(claim_text(c) for c in match.claims),
            match=match,
        )
        for query_id, matches in chosen.items()
        for match in matches
    )
    return PresentationPlan(request, request.client_id, presentations)


def _vp_jwt(key: PrivateKey, credential: str, request: AuthorizationRequest, iat: int) -> str:
    # §B.1.3.1.5: a VP-JWT with nonce and aud = the client identifier, signed by the key the
    # credential is bound to (its subject DID is that key's did:key).
    holder = encode_did_key(key.public_key)
    payload = {
        "iss": holder,
        "aud": request.client_id,
        "nonce": request.nonce,
        "iat": iat,
        "jti": f"urn:uuid:{secrets.token_hex(16)}",
        "vp": {
            "@context": ["https://www.w3.org/2018/credentials/v1"],
            "type": ["VerifiablePresentation"],
            "verifiableCredential": [credential],
        },
    }
    header = {"typ": "JWT", "kid": f"{holder}#{holder.removeprefix('did:key:')}"}
    return sign_compact(header, payload, key)


def build_vp_token(wallet: Wallet, chosen: PresentationPlan, *, iat: int) -> VpToken:
    """The presentations of a plan, keyed by Credential Query id (§8.1): step 3 of the
    module.

    Holder binding (Appendix B): a VC-JWT goes in a VP-JWT signed by the key of its subject
    when its query requires holder binding, and alone otherwise (B.1: "Otherwise, a
    Verifiable Credential without Holder Binding MUST be returned"); an SD-JWT VC carries a
    KB-JWT signed by the key of its ``cnf`` when the wallet holds that key, and none
    otherwise (B.3: allowed only when the query does not require holder binding, which
    :func:`plan` ensures).  Raises ``ValueError`` when a presentation needs a key the
    wallet does not hold (a plan not made by :func:`plan`), and what ``issuer.present``
    raises for a credential it cannot present."""
    request = chosen.request
    token: dict[str, list[str]] = {}
    for planned in chosen.presentations:
        stored = wallet.credential(planned.credential_id)
        query = request.dcql_query.credential(planned.query_id)
        key = _binding_key(wallet, stored)
        if query.require_cryptographic_holder_binding and key is None:
            raise ValueError(f"{stored.id} is bound to no key of this wallet")
        if planned.match.held.format == VC_JWT:
            if query.require_cryptographic_holder_binding and key is not None:
                text = _vp_jwt(key, stored.credential, request, iat)
            else:
                text = stored.credential
        else:
            sd_jwt = SdJwt.parse(stored.credential)
            disclose = disclosure_pointers(sd_jwt, planned.match.claims)
            if key is None:
                text = present(sd_jwt, disclose=disclose)
            else:
                text = present(
                    sd_jwt,
                    disclose=disclose,
                    holder_signer=key,
                    audience=request.client_id,  # §B.3.6: the client identifier, prefix included
                    nonce=request.nonce,
                    iat=iat,
                )
        token.setdefault(planned.query_id, []).append(text)
    return VpToken({k: tuple(v) for k, v in token.items()})


@dataclass(frozen=True, slots=True)
class Outcome:
    """The verifier's answer to the response: where it asks the holder to go next, if
    anywhere (§8.2 ``redirect_uri``), and whether presentations were sent (False when the
    holder declined)."""

    redirect_uri: str | None
    sent: bool = True


def _post(
    http: httpx.Client, fetcher: OutboundFetcher, request: AuthorizationRequest, form: JsonObject
) -> Outcome:
    # §8.2: a form post to the response URI; 200 with a JSON object, maybe a redirect_uri.
    url = request.response_uri
    fetcher.check_url(url)
    try:
        sent = http.build_request("POST", url, data=form, headers={"Accept": "application/json"})
        response = http.send(sent, stream=True)
        try:
            content = _bounded(response)  # never more than _MAX_BODY of the answer
        finally:
            response.close()
    except httpx.HTTPError as e:
        raise FetchFailed("the verifier's response_uri could not be reached") from e
    try:
        body = json_decode(content) if content else {}
    except CommonsError:
        body = None
    if response.status_code != 200:
        error = body.get("error") if isinstance(body, dict) else None
        raise VerifierRefused(
            f"the verifier refused the response: {error or f'HTTP {response.status_code}'}"
        )
    if not isinstance(body, dict):
        raise FetchFailed("the verifier did not answer a JSON object")
    redirect = body.get("redirect_uri")  # other members are ignored, as §8.2 says
    return Outcome(redirect if isinstance(redirect, str) else None)


def _form(request: AuthorizationRequest, members: Mapping[str, Any]) -> JsonObject:
    # direct_post: the members as form fields (objects JSON-encoded); direct_post.jwt: one
    # `response` field, the JWE of the members (§8.3.1).
    payload = dict(members)
    if request.state is not None:
        payload["state"] = request.state
    if request.response_mode == "direct_post.jwt":
        metadata = request.client_metadata
        if metadata is None:  # AuthorizationRequest refuses this; said again for the types
            raise AuthorizationRequestInvalid("direct_post.jwt needs client_metadata.jwks")
        enc = next((e for e in metadata.enc_values if e in ENCRYPTION_ENCS), None)
        if enc is None:
            raise AuthorizationRequestInvalid("no content encryption this wallet supports")
        return {"response": encrypt_response(payload, select_encryption_key(metadata), enc)}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}


def send_response(
    request: AuthorizationRequest,
    vp_token: VpToken,
    *,
    http: httpx.Client,
    fetcher: OutboundFetcher,
    zk_proofs: JsonObject | None = None,
) -> Outcome:
    """Post the ``vp_token`` to the response URI (step 4), with the ``zk_proofs`` answering
    the request's zero-knowledge predicates when it asked for some (docs/zk.md).  Raises
    :class:`VerifierRefused`, ``FetchFailed``/``UnsafeUrl``, and
    :class:`AuthorizationRequestInvalid` when the response cannot be encrypted as asked."""
    members: JsonObject = {"vp_token": vp_token.to_json()}
    if zk_proofs is not None:
        members["zk_proofs"] = zk_proofs
    return _post(http, fetcher, request, _form(request, members))


def send_error(
    request: AuthorizationRequest,
    error: ErrorCode,
    description: str | None = None,
    *,
    http: httpx.Client,
    fetcher: OutboundFetcher,
) -> Outcome:
    """Tell the verifier the wallet will not answer (§8.5: ``access_denied`` when the holder
    declines or holds nothing that matches), in the request's response mode; an error the
    wallet cannot encrypt goes unencrypted (§8.3.1 allows it).

    §8.2: a verifier that processed the error response answers 200 with a JSON object
    (maybe a ``redirect_uri``); any other answer means it was not told, and raises
    :class:`VerifierRefused`.  Raises ``FetchFailed``/``UnsafeUrl`` when the verifier
    cannot be reached."""
    members = {"error": str(error)}
    if description is not None:
        members["error_description"] = description
    try:
        form = _form(request, members)
    except AuthorizationRequestInvalid:
        form = {**members, **({"state": request.state} if request.state else {})}
    return _post(http, fetcher, request, form)


def respond(
    wallet: Wallet,
    url: str,
    *,
    confirm: Callable[[PresentationPlan, ReadRequest], bool],
    fetcher: OutboundFetcher,
    transport: httpx.BaseTransport | None = None,
    now: Callable[[], int] = lambda: int(time.time()),
) -> Outcome:
    """The whole presentation: read the request, plan the answer, ask ``confirm`` (which
    shows the plan to the holder), build and send the presentations — or, when the holder
    declines, tell the verifier ``access_denied``.

    The holder is asked even when the wallet holds nothing that answers: ``confirm`` then
    gets a plan without presentations, and True means "tell the verifier" (False sends
    nothing).  A decline and an unanswerable request send the same ``access_denied``
    without description, and only after the holder answered (§15.4.1).

    Raises what the steps raise; ``DcqlUnsatisfiable`` when nothing answers the request
    (after telling the verifier, if the holder agreed); ``PredicateUnprovable`` when a
    zero-knowledge predicate asked cannot be proved (after telling the verifier
    ``access_denied``).
    """
    with fetcher.http_client(transport=transport, timeout=10) as http:
        read = read_request(url, http=http, fetcher=fetcher, resolver=DidResolver(fetcher))
        request = read.request
        try:
            chosen = plan(wallet, request)
        except DcqlUnsatisfiable:
            if confirm(PresentationPlan(request, request.client_id, ()), read):
                send_error(request, ErrorCode.ACCESS_DENIED, http=http, fetcher=fetcher)
            raise
        if not confirm(chosen, read):
            told = send_error(request, ErrorCode.ACCESS_DENIED, http=http, fetcher=fetcher)
            return Outcome(told.redirect_uri, sent=False)
        vp_token = build_vp_token(wallet, chosen, iat=now())
        # Issue 18: the predicates asked for, proved from the credentials presented (their
        # commitments are disclosed; the values are not).
        try:
            zk_proofs = answer_predicates(
                wallet,
                request,
                {p.query_id: p.credential_id for p in chosen.presentations},
                http=http,
                fetcher=fetcher,
                today=datetime.fromtimestamp(now(), UTC).date(),
            )
        except PredicateUnprovable:
            # A predicate the holder's claim does not satisfy: the verifier hears the same
            # access_denied as for a decline (§15.4.1), and nothing of why.
            send_error(request, ErrorCode.ACCESS_DENIED, http=http, fetcher=fetcher)
            raise
        return send_response(request, vp_token, http=http, fetcher=fetcher, zk_proofs=zk_proofs)
