"""OpenID for Verifiable Presentations 1.0 messages, pure: client identifiers (§5.9), the
Authorization Request (§5) and its signed Request Object (JAR, RFC 9101), the response
(§8.1 ``vp_token``, §8.2 ``direct_post``, §8.3 encrypted ``direct_post.jwt``) and the error
codes (§8.5).

What this platform supports, and refuses with ``invalid_request`` otherwise:

* client identifier prefixes ``redirect_uri:`` (unsigned requests only, the response URI is
  the identifier) and ``decentralized_identifier:`` (signed requests only, the key is the
  DID's, named by ``kid``); no prefix means a pre-registered client (§5.9.2).  The other
  prefixes of §5.9.3 are recognised and refused by name;
* response type ``vp_token`` with response modes ``direct_post`` and ``direct_post.jwt``;
* a ``dcql_query`` (no ``scope`` aliases, no ``transaction_data`` — §5.1: a wallet that does
  not support it "MUST reject requests that contain it");
* encrypted responses with ``ECDH-ES`` on P-256 and ``A128GCM`` or ``A256GCM``, through
  joserfc; no compression (``zip``), a bounded size.

Signing and verifying go through :mod:`credit_commons.formats.jws` (the platform's one JWS
parser); keys reach this module only through its ``JwsSigner``/``SignatureVerifier``
protocols and, for encryption, as JWKs.  The response side lives in
:mod:`credit_commons.formats.oid4vp_response` and the errors in
:mod:`credit_commons.formats.oid4vp_errors`; both are re-exported here, so callers import
one module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictStr,
    StringConstraints,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from credit_commons.core.encoding import JsonObject, json_decode
from credit_commons.core.errors import CommonsError
from credit_commons.formats.dcql import DcqlInvalid, DcqlQuery
from credit_commons.formats.jws import (
    JwsInvalid,
    JwsSigner,
    SignatureVerifier,
    decode_json_object,
    parse_compact,
    sign_compact,
)
from credit_commons.formats.oid4vp_errors import (
    AuthorizationRequestInvalid,
    ErrorCode,
    ResponseDecryptionFailed,
    ResponseInvalid,
)
from credit_commons.formats.oid4vp_response import (
    ENCRYPTION_ALG,
    ENCRYPTION_ENCS,
    MAX_RESPONSE_CHARS,
    AuthorizationResponse,
    VpToken,
    decrypt_response,
    encrypt_response,
    new_response_encryption_key,
    parse_authorization_response,
    parse_vp_token,
)
from credit_commons.formats.oid4vp_zk import ZkPredicateRequest

__all__ = [
    "ENCRYPTION_ALG",
    "ENCRYPTION_ENCS",
    "MAX_RESPONSE_CHARS",
    "REQUEST_OBJECT_TYP",
    "SELF_ISSUED_AUDIENCE",
    "AuthorizationRequest",
    "AuthorizationRequestInvalid",
    "AuthorizationResponse",
    "ClientId",
    "ClientIdPrefix",
    "ClientMetadata",
    "ErrorCode",
    "Invocation",
    "ResponseDecryptionFailed",
    "ResponseInvalid",
    "VpToken",
    "ZkPredicateRequest",
    "check_response_url",
    "decrypt_response",
    "encrypt_response",
    "new_response_encryption_key",
    "parse_authorization_request",
    "parse_authorization_response",
    "parse_client_id",
    "parse_invocation",
    "parse_vp_token",
    "read_request_object",
    "read_unsigned_request_object",
    "select_encryption_key",
    "sign_request_object",
]

#: §5: "Verifiers MUST include the typ Header Parameter in Request Objects with the value
#: oauth-authz-req+jwt" (RFC 9101 §10.8).
REQUEST_OBJECT_TYP: Final = "oauth-authz-req+jwt"
#: §5.8: the ``aud`` of a Request Object under static discovery.
SELF_ISSUED_AUDIENCE: Final = "https://self-issued.me/v2"
_MAX_REQUEST_OBJECT_CHARS: Final = 256 * 1024
_REQUEST_OBJECT_ALGS: Final = ("EdDSA", "Ed25519", "ES256")


# --- Client identifiers (§5.9) -----------------------------------------------------------


class ClientIdPrefix(StrEnum):
    """The client identifier prefixes this platform accepts (§5.9.3), and the fallback."""

    PRE_REGISTERED = "pre-registered"
    REDIRECT_URI = "redirect_uri"
    DECENTRALIZED_IDENTIFIER = "decentralized_identifier"


# §5.9.3's other prefixes: recognised, so a request using one is refused by name instead of
# being taken for a pre-registered client.
_REFUSED_PREFIXES: Final = frozenset(
    {"openid_federation", "verifier_attestation", "x509_san_dns", "x509_hash", "origin"}
)
# DID Core §3.1: did:method:method-specific-id.
_DID: Final = re.compile(r"did:[a-z0-9]+:(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2}|:)*[A-Za-z0-9._%-]")
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


def check_response_url(url: str, what: str) -> None:
    """An absolute ``https`` URL (``http`` only on loopback, for tests and local runs),
    without fragment.  Raises :class:`AuthorizationRequestInvalid`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as e:
        raise AuthorizationRequestInvalid(f"{what} is not a URL") from e
    if not host or parts.fragment or not url.isascii() or any(c.isspace() for c in url):
        raise AuthorizationRequestInvalid(f"{what} must be an absolute URL without fragment")
    if parts.scheme != "https" and not (parts.scheme == "http" and host in _LOOPBACK):
        raise AuthorizationRequestInvalid(f"{what} must be an https URL")


@dataclass(frozen=True, slots=True)
class ClientId:
    """A parsed ``client_id``: its ``prefix`` and the identifier without it (``value``);
    ``raw`` is the whole string, which is the client identifier everywhere (§5.9.1: "the
    same full string would be used as the Client Identifier anywhere in the OAuth flow")."""

    raw: str
    prefix: ClientIdPrefix
    value: str

    @property
    def did(self) -> str:
        """The verifier's DID (``decentralized_identifier:`` only); raises ``ValueError``."""
        if self.prefix is not ClientIdPrefix.DECENTRALIZED_IDENTIFIER:
            raise ValueError("not a decentralized_identifier client")
        return self.value


def parse_client_id(client_id: object) -> ClientId:
    """Parse a ``client_id`` (§5.9.1): the prefix is what precedes the first ``:``.

    Without ``:``, or before ``:`` a prefix nobody defined, the client is pre-registered
    (§5.9.2 allows either treatment of an unknown prefix).  Raises
    :class:`AuthorizationRequestInvalid` for a prefix of §5.9.3 this platform does not
    support, and for a ``redirect_uri:`` that is not an https URL or a
    ``decentralized_identifier:`` that is not a DID.
    """
    if not isinstance(client_id, str) or not client_id or not client_id.isprintable():
        raise AuthorizationRequestInvalid("client_id must be a non-empty string")
    prefix, colon, value = client_id.partition(":")
    if not colon:
        return ClientId(client_id, ClientIdPrefix.PRE_REGISTERED, client_id)
    if prefix in _REFUSED_PREFIXES:
        raise AuthorizationRequestInvalid(f"the client identifier prefix {prefix} is not supported")
    if prefix == ClientIdPrefix.REDIRECT_URI:
        check_response_url(value, "a redirect_uri client identifier")
        return ClientId(client_id, ClientIdPrefix.REDIRECT_URI, value)
    if prefix == ClientIdPrefix.DECENTRALIZED_IDENTIFIER:
        if not _DID.fullmatch(value):
            raise AuthorizationRequestInvalid("a decentralized_identifier client id must be a DID")
        return ClientId(client_id, ClientIdPrefix.DECENTRALIZED_IDENTIFIER, value)
    return ClientId(client_id, ClientIdPrefix.PRE_REGISTERED, client_id)


# --- The Authorization Request (§5) ------------------------------------------------------


# §5.2: nonce and state contain "only ASCII URL safe characters".
UrlSafe = Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9._~-]+$", max_length=512)]
_FROZEN = ConfigDict(frozen=True, extra="ignore")


def _request_invalid(error: PydanticValidationError) -> AuthorizationRequestInvalid:
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "the request"
    return AuthorizationRequestInvalid(f"{where}: {first['msg']}")


class ClientMetadata(BaseModel):
    """The ``client_metadata`` members this platform reads (§5.1); others are ignored, as
    §5.1 requires."""

    model_config = _FROZEN

    jwks: JsonObject | None = None
    encrypted_response_enc_values_supported: (
        Annotated[tuple[StrictStr, ...], Field(min_length=1)] | None
    ) = None
    vp_formats_supported: JsonObject | None = None
    #: RFC 7591 §2: the verifier's name for the holder to see (§5.1 takes client metadata
    #: parameters here); shown as the verifier's claim, not verified by the wallet.
    client_name: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _keys(self) -> ClientMetadata:
        if self.jwks is None:
            return self
        keys = self.jwks.get("keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
            raise ValueError("jwks must be a JWK Set with a non-empty keys array")
        kids = [k.get("kid") for k in keys]
        # §5.1: "Each JWK in the set MUST have a kid ... that uniquely identifies the key".
        if not all(isinstance(k, str) and k for k in kids) or len(set(kids)) != len(kids):
            raise ValueError("every JWK in jwks needs a unique kid")
        return self

    @property
    def keys(self) -> tuple[JsonObject, ...]:
        """The JWKs of ``jwks``."""
        return tuple(self.jwks["keys"]) if self.jwks is not None else ()

    @property
    def enc_values(self) -> tuple[str, ...]:
        """The content encryptions the verifier accepts (§5.1: default ``A128GCM``)."""
        return self.encrypted_response_enc_values_supported or ("A128GCM",)


class AuthorizationRequest(BaseModel):
    """An OpenID4VP Authorization Request this platform can answer (§5).

    Exists only if §5's rules hold (see :func:`parse_authorization_request`); the wallet
    must additionally check how it was delivered (signed or not), which
    :func:`parse_authorization_request` and :func:`read_request_object` do.
    """

    model_config = _FROZEN

    client_id: StrictStr
    response_type: Literal["vp_token"]
    response_mode: Literal["direct_post", "direct_post.jwt"]
    response_uri: StrictStr
    nonce: UrlSafe
    state: UrlSafe | None = None
    dcql_query: DcqlQuery
    client_metadata: ClientMetadata | None = None
    wallet_nonce: StrictStr | None = None
    #: The zero-knowledge predicates asked for, and the request hash their proofs bind to
    #: (this platform's extension; docs/zk.md).
    zk_predicates: Annotated[tuple[ZkPredicateRequest, ...], Field(max_length=16)] | None = None
    zk_request_hash: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")] | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _validate(
        cls, data: Any, handler: ModelWrapValidatorHandler[AuthorizationRequest]
    ) -> AuthorizationRequest:
        if isinstance(data, dict):
            _check_parameters(data)
        try:
            request = handler(data)
        except PydanticValidationError as e:
            raise _request_invalid(e) from None
        except DcqlInvalid as e:
            raise AuthorizationRequestInvalid(f"dcql_query: {e.detail}") from None
        client = parse_client_id(request.client_id)
        check_response_url(request.response_uri, "response_uri")
        if client.prefix is ClientIdPrefix.REDIRECT_URI and request.response_uri != client.value:
            # §5.9.3: the identifier without its prefix is the Response URI.
            raise AuthorizationRequestInvalid(
                "with the redirect_uri prefix, response_uri must be the client identifier"
            )
        if request.state is None and any(
            not c.require_cryptographic_holder_binding for c in request.dcql_query.credentials
        ):
            # §5.3: without a holder-binding proof the nonce does not come back, so the
            # Verifier "MUST include a state parameter" to bind the response to the request.
            raise AuthorizationRequestInvalid(
                "a request for a presentation without holder binding needs a state"
            )
        if (request.zk_predicates is None) != (request.zk_request_hash is None):
            raise AuthorizationRequestInvalid("zk_predicates come with their zk_request_hash")
        if request.zk_predicates is not None:
            ids = [p.id for p in request.zk_predicates]
            queries = {c.id for c in request.dcql_query.credentials}
            if len(set(ids)) != len(ids) or any(
                p.credential_query_id not in queries for p in request.zk_predicates
            ):
                raise AuthorizationRequestInvalid(
                    "each zk predicate has its own id and names a credential query"
                )
        if request.response_mode == "direct_post.jwt":
            metadata = request.client_metadata
            if metadata is None or not metadata.keys:
                raise AuthorizationRequestInvalid(
                    "direct_post.jwt needs client_metadata.jwks to encrypt the response to"
                )
        return request

    @property
    def client(self) -> ClientId:
        """The parsed ``client_id``."""
        return parse_client_id(self.client_id)

    def to_payload(self) -> JsonObject:
        """The request as a Request Object payload (objects as objects, §5.1)."""
        payload: JsonObject = {
            "client_id": self.client_id,
            "response_type": self.response_type,
            "response_mode": self.response_mode,
            "response_uri": self.response_uri,
            "nonce": self.nonce,
            "dcql_query": self.dcql_query.to_json(),
        }
        if self.state is not None:
            payload["state"] = self.state
        if self.client_metadata is not None:
            payload["client_metadata"] = self.client_metadata.model_dump(
                mode="json", exclude_none=True
            )
        if self.wallet_nonce is not None:
            payload["wallet_nonce"] = self.wallet_nonce
        if self.zk_predicates is not None and self.zk_request_hash is not None:
            payload["zk_predicates"] = [p.model_dump(mode="json") for p in self.zk_predicates]
            payload["zk_request_hash"] = self.zk_request_hash
        return payload

    def to_query(self) -> dict[str, str]:
        """The request as URL query parameters, objects JSON-encoded (§5.1)."""
        return {
            name: value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            for name, value in self.to_payload().items()
        }


def _check_parameters(params: Mapping[str, Any]) -> None:
    # The rules of §5 that are about parameters' presence, with their own error codes.
    if "transaction_data" in params:  # §5.1: unsupported, so "MUST reject"
        raise AuthorizationRequestInvalid(
            "transaction_data is not supported", ErrorCode.INVALID_TRANSACTION_DATA
        )
    if "scope" in params:
        raise AuthorizationRequestInvalid(
            "no scope value is defined here; send a dcql_query", ErrorCode.INVALID_SCOPE
        )
    if "dcql_query" not in params:  # §8.5 invalid_request, second case
        raise AuthorizationRequestInvalid("the request has no dcql_query")
    mode = params.get("response_mode")
    if mode not in ("direct_post", "direct_post.jwt"):
        raise AuthorizationRequestInvalid(f"response_mode {mode!r} is not supported")
    # §8.2: with response_uri, "the redirect_uri Authorization Request parameter MUST NOT be
    # present ... the Wallet MUST return an invalid_request Authorization Response error".
    if "redirect_uri" in params:
        raise AuthorizationRequestInvalid("redirect_uri must not be present with direct_post")
    if "response_uri" not in params:
        raise AuthorizationRequestInvalid("direct_post requires response_uri")


def _decoded(params: Mapping[str, Any]) -> JsonObject:
    # In a URL, object parameters are JSON-serialized strings (§5.1).
    out = dict(params)
    for name in ("dcql_query", "client_metadata", "zk_predicates"):
        value = out.get(name)
        if isinstance(value, str):
            try:
                out[name] = json_decode(value)
            except CommonsError as e:
                raise AuthorizationRequestInvalid(f"{name} is not a JSON object") from e
    return out


def parse_authorization_request(params: Mapping[str, Any], *, signed: bool) -> AuthorizationRequest:
    """Parse an Authorization Request from its parameters — URL query parameters (object
    values JSON-encoded) or a Request Object's payload — and check the rules that depend on
    how it came: a ``redirect_uri:`` client's request "cannot be signed", a
    ``decentralized_identifier:`` client's "MUST be signed" (§5.9.3).

    Unknown parameters are ignored (§5); an ``iss`` in a Request Object too (§5).  Raises
    :class:`AuthorizationRequestInvalid`.
    """
    request = AuthorizationRequest.model_validate(_decoded(params))
    prefix = request.client.prefix
    if signed and prefix is ClientIdPrefix.REDIRECT_URI:
        raise AuthorizationRequestInvalid("a redirect_uri client's request must not be signed")
    if not signed and prefix is ClientIdPrefix.DECENTRALIZED_IDENTIFIER:
        raise AuthorizationRequestInvalid("a decentralized_identifier client must sign")
    return request


@dataclass(frozen=True, slots=True)
class Invocation:
    """How a wallet was invoked (§9, RFC 9101 §5): a client, and the request by value
    (``params``), as a Request Object by value (``request``) or by reference
    (``request_uri``, fetched with ``request_uri_method`` ``get`` or ``post``, §5.10)."""

    client_id: str
    params: Mapping[str, str]
    request: str | None = None
    request_uri: str | None = None
    request_uri_method: Literal["get", "post"] = "get"


def parse_invocation(url: str) -> Invocation:
    """Read the authorization request URL a verifier handed the wallet (``openid4vp://?…``
    or any URL whose query carries the request).

    Raises :class:`AuthorizationRequestInvalid`: no ``client_id`` (RFC 9101 §5.2 requires it
    with ``request`` and ``request_uri``), a parameter given twice, ``request`` together
    with ``request_uri``, ``request_uri_method`` without ``request_uri`` (``invalid_request``),
    and ``invalid_request_uri_method`` for a method other than ``get`` or ``post`` (§5.1,
    case-sensitive).
    """
    try:
        pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)
    except ValueError as e:
        raise AuthorizationRequestInvalid("the request URL's query is malformed") from e
    params = dict(pairs)
    if len(params) != len(pairs):
        raise AuthorizationRequestInvalid("a request parameter is given twice")
    client_id = params.get("client_id")
    if not client_id:
        raise AuthorizationRequestInvalid("the request has no client_id")
    request, request_uri = params.get("request"), params.get("request_uri")
    method = params.get("request_uri_method")
    if request is not None and request_uri is not None:
        raise AuthorizationRequestInvalid("request and request_uri are exclusive")
    if method is not None and request_uri is None:
        # §5.1: request_uri_method "MUST NOT be present if a request_uri parameter is not
        # present" — a malformed request, not a method this wallet cannot use.
        raise AuthorizationRequestInvalid("request_uri_method without a request_uri")
    if method is not None and method not in ("get", "post"):
        raise AuthorizationRequestInvalid(
            "request_uri_method is get or post", ErrorCode.INVALID_REQUEST_URI_METHOD
        )
    return Invocation(
        client_id,
        params,
        request,
        request_uri,
        "post" if method == "post" else "get",
    )


def sign_request_object(
    request: AuthorizationRequest,
    signer: JwsSigner,
    kid: str,
    *,
    aud: str = SELF_ISSUED_AUDIENCE,
) -> str:
    """The request as a signed Request Object (RFC 9101 §4, §5): header ``typ``
    ``oauth-authz-req+jwt`` and ``kid`` (for a DID client, the DID URL of its verification
    method, §5.9.3), payload the request with ``aud`` (§5.8).

    Raises :class:`AuthorizationRequestInvalid` for a ``redirect_uri:`` client (whose
    requests cannot be signed), and what ``signer.sign`` raises.
    """
    if request.client.prefix is ClientIdPrefix.REDIRECT_URI:
        raise AuthorizationRequestInvalid("a redirect_uri client's request cannot be signed")
    header = {"typ": REQUEST_OBJECT_TYP, "kid": kid}
    return sign_compact(header, {**request.to_payload(), "aud": aud}, signer)


def read_request_object(
    token: object,
    key_for_kid: Callable[[str], SignatureVerifier],
    *,
    client_id: str,
    wallet_nonce: str | None = None,
    algs: Collection[str] = _REQUEST_OBJECT_ALGS,
) -> AuthorizationRequest:
    """Verify and parse a signed Request Object, in RFC 9101 §6 and OpenID4VP §5 order:

    1. a compact JWS (no embedded keys), ``alg`` on ``algs``, ``typ`` exactly
       ``oauth-authz-req+jwt`` (§5: "Wallets MUST NOT process Request Objects where the typ
       Header Parameter is not present or does not have the value");
    2. the payload's ``client_id`` is ``client_id``, the one the wallet was invoked with
       (§5.10.1: "MUST be identical, including the Client Identifier Prefix");
    3. a ``kid``, which for a ``decentralized_identifier:`` client is a DID URL of that DID
       (§5.9.3: the key comes from that DID's document and is named by ``kid``);
    4. the signature, under ``key_for_kid(kid)`` (the caller resolves the DID);
    5. the ``wallet_nonce`` the wallet sent, when it sent one (§5.10.1);
    6. the request's own rules (:func:`parse_authorization_request`, signed).

    Raises :class:`AuthorizationRequestInvalid` (the signature's failure included), and
    what ``key_for_kid`` raises when it cannot find the key.
    """
    try:  # 1.
        jws = parse_compact(
            token, algs=algs, max_chars=_MAX_REQUEST_OBJECT_CHARS, decode_payload=False
        )
    except JwsInvalid as e:
        raise AuthorizationRequestInvalid(f"the request object is not acceptable: {e}") from e
    if jws.header.get("typ") != REQUEST_OBJECT_TYP:
        raise AuthorizationRequestInvalid(f"the request object's typ must be {REQUEST_OBJECT_TYP}")
    try:  # 2. Read before verifying only to pick the key; nothing else is used yet.
        claimed = decode_json_object(jws.payload_segment, "payload").get("client_id")
    except JwsInvalid as e:
        raise AuthorizationRequestInvalid("the request object's payload is malformed") from e
    if claimed != client_id:
        raise AuthorizationRequestInvalid("the request object's client_id is not the client's")
    client = parse_client_id(client_id)
    kid = jws.header.get("kid")  # 3.
    if not isinstance(kid, str) or not kid:
        raise AuthorizationRequestInvalid("the request object's header has no kid")
    if client.prefix is ClientIdPrefix.DECENTRALIZED_IDENTIFIER and (
        kid.partition("#")[0] != client.did or not kid.partition("#")[2]
    ):
        raise AuthorizationRequestInvalid("the kid is not a verification method of the client")
    key = key_for_kid(kid)  # 4. A key that cannot be found raises the resolver's error.
    try:
        jws.verify(key)
    except CommonsError as e:
        raise AuthorizationRequestInvalid("the request object's signature does not verify") from e
    payload = jws.payload
    if wallet_nonce is not None and payload.get("wallet_nonce") != wallet_nonce:  # 5.
        raise AuthorizationRequestInvalid("the request object does not carry our wallet_nonce")
    return parse_authorization_request(payload, signed=True)  # 6.


def read_unsigned_request_object(token: object, *, client_id: str) -> AuthorizationRequest:
    """Parse an unsigned Request Object (RFC 9101 §6.1 with ``alg`` ``none``, RFC 7519 §6):
    the only kind a ``redirect_uri:`` client can pass by reference, since its requests
    "cannot be signed" (§5.9.3).  ``typ`` must be ``oauth-authz-req+jwt`` (§5) and the
    signature empty; the ``client_id`` must be the one the wallet was invoked with; then the
    request's own rules apply, unsigned (a ``decentralized_identifier:`` client is refused).

    Raises :class:`AuthorizationRequestInvalid`.
    """
    if not isinstance(token, str) or len(token) > _MAX_REQUEST_OBJECT_CHARS:
        raise AuthorizationRequestInvalid("the request object is not acceptable")
    parts = token.split(".")
    if len(parts) != 3 or parts[2]:
        raise AuthorizationRequestInvalid("an unsigned request object has an empty signature")
    try:
        header = decode_json_object(parts[0], "header")
        payload = decode_json_object(parts[1], "payload")
    except JwsInvalid as e:
        raise AuthorizationRequestInvalid("the request object is malformed") from e
    if header.get("alg") != "none" or header.get("typ") != REQUEST_OBJECT_TYP:
        raise AuthorizationRequestInvalid(
            f"an unsigned request object has alg none and typ {REQUEST_OBJECT_TYP}"
        )
    if set(header) - {"alg", "typ"}:
        raise AuthorizationRequestInvalid("the unsigned request object's header says too much")
    if payload.get("client_id") != client_id:
        raise AuthorizationRequestInvalid("the request object's client_id is not the client's")
    return parse_authorization_request(payload, signed=False)


def select_encryption_key(metadata: ClientMetadata) -> JsonObject:
    """The verifier's JWK to encrypt to (§8.3): the first with ``alg`` ``ECDH-ES``, an EC
    P-256 key, and ``use`` absent or ``enc``.  Raises :class:`AuthorizationRequestInvalid`."""
    for jwk in metadata.keys:
        if (
            jwk.get("alg") == ENCRYPTION_ALG
            and jwk.get("kty") == "EC"
            and jwk.get("crv") == "P-256"
            and jwk.get("use", "enc") == "enc"
            and "d" not in jwk
        ):
            return jwk
    raise AuthorizationRequestInvalid("client_metadata.jwks has no ECDH-ES P-256 key")
