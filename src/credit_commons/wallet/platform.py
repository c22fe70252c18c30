"""The wallet's side of the platform's borrower API: what a holder does with their DID key.

Every request goes through the SSRF guard's rules (:class:`OutboundFetcher.check_url`).
Requests on the borrower's consents, history and key are signed by the holder key
(``Authorization: Holder <proof>``, docs/wallet.md and consent/holder_auth.py); approval
uses the signed-approval endpoint, and export and erasure the data-subject request flow
confirmed by a DID signature (docs/privacy.md).  A refusal by the platform is raised as
:class:`PlatformRefused`, carrying the platform's problem code.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import ValidationError as PydanticValidationError

from credit_commons.core.encoding import JsonObject, b64url_encode, json_decode
from credit_commons.core.errors import CommonsError, ExitCode, ValidationError
from credit_commons.core.net import FetchFailed, OutboundFetcher
from credit_commons.formats.jws import sign_compact
from credit_commons.keys import PrivateKey, encode_did_key
from credit_commons.ledger import LogKey, Receipt
from credit_commons.reputation import sign_subject_proof

__all__ = [
    "HOLDER_TYP",
    "Platform",
    "PlatformRefused",
    "ScoreAnswer",
    "approval_message",
    "dsr_message",
    "holder_proof",
]

HOLDER_TYP = "holder-request+jwt"
_EXIT_BY_STATUS = {
    400: ExitCode.VALIDATION,
    401: ExitCode.FORBIDDEN,
    403: ExitCode.FORBIDDEN,
    404: ExitCode.NOT_FOUND,
    409: ExitCode.CONFLICT,
    422: ExitCode.VALIDATION,
}


@dataclass(frozen=True, slots=True)
class ScoreAnswer:
    """The platform's answer for a score bundle: the bundle's bytes, or (while it is being
    built) how many seconds to wait before asking again."""

    bundle: bytes | None
    retry_after: int | None


class PlatformRefused(CommonsError):
    """The platform answered with a problem; ``code`` and ``detail`` are the platform's
    own, the exit code follows its HTTP status (4xx as the CLI's own errors, else 9)."""

    code: ClassVar[str] = "wallet.platform_refused"  # replaced per instance
    title: ClassVar[str] = "Refused by the platform"

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code  # type: ignore[misc]
        self.status = status  # type: ignore[misc]
        self.exit_code = _EXIT_BY_STATUS.get(status, ExitCode.UNAVAILABLE)  # type: ignore[misc]


def approval_message(consent_id: str) -> bytes:
    """What the holder signs to approve ``consent_id`` (consent.decisions.approval_message)."""
    return f"credit-commons consent approve\n{consent_id}\n".encode()


def dsr_message(request_id: str, challenge: str, kind: str) -> bytes:
    """What the holder signs to confirm a data-subject request (privacy.dsr)."""
    return f"credit-commons-dsr/v1\n{request_id}\n{challenge}\n{kind}\n".encode()


def holder_proof(
    key: PrivateKey, token: str, method: str, target: str, body: bytes, *, now: float
) -> str:
    """The ``Holder`` proof of one request (consent/holder_auth.py): a compact JWS by
    ``key`` over the identity, the method, the path and query, the body's digest, the time
    and a fresh ``jti``."""
    did = encode_did_key(key.public_key)
    claims = {
        "sub": token,
        "htm": method,
        "htu": target,
        "bdh": b64url_encode(hashlib.sha256(body).digest()),
        "iat": int(now),
        "jti": secrets.token_urlsafe(24),
    }
    return sign_compact({"typ": HOLDER_TYP, "kid": did}, claims, key)


class Platform:
    """The borrower API of one platform at ``url``, acting with ``key`` as the holder of
    identity ``token`` (``None`` for calls that name no identity)."""

    def __init__(
        self,
        url: str,
        key: PrivateKey,
        token: str | None,
        *,
        fetcher: OutboundFetcher,
        http: httpx.Client | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        # ``http``: a client to send through (tests give the app's own); closed by its owner.
        self.url = url.rstrip("/")
        self.key, self.token = key, token
        self._fetcher, self._now = fetcher, now
        self._owned = http is None
        self._client = http or fetcher.http_client(timeout=15)

    def close(self) -> None:
        """Release the connections."""
        if self._owned:
            self._client.close()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------

    def _identity(self) -> str:
        if self.token is None:
            raise ValidationError(
                "the wallet does not know its identity on this platform",
                hint="pass --identity idt_… once (or `commons wallet register`)",
            )
        return self.token

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        signed: bool = False,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> object:
        """One request; the parsed JSON answer (or the bytes with ``raw``), not yet
        checked: the methods below check its shape.

        Raises ``UnsafeUrl`` (the guard), :class:`FetchFailed` (network, not JSON) and
        :class:`PlatformRefused` (a 4xx or 5xx answer).
        """
        target = path + (f"?{urlencode(params)}" if params else "")
        url = self.url + target
        self._fetcher.check_url(url)
        content = b"" if body is None else json.dumps(body).encode()
        sent = dict(headers or {})
        if body is not None:
            sent["Content-Type"] = "application/json"
        if signed:
            full = urlsplit(url)
            server_target = full.path + (f"?{full.query}" if full.query else "")
            proof = holder_proof(
                self.key, self._identity(), method, server_target, content, now=self._now()
            )
            sent["Authorization"] = f"Holder {proof}"
        try:
            response = self._client.request(method, url, content=content, headers=sent)
        except httpx.HTTPError as e:
            raise FetchFailed(f"{self.url} could not be reached") from e
        if response.status_code >= 400:
            raise _refusal(response)
        if raw:
            return response.content
        try:
            return json_decode(response.content)
        except CommonsError as e:
            raise FetchFailed(f"{self.url} did not answer JSON") from e

    def _object(self, method: str, path: str, **kwargs: Any) -> JsonObject:
        # One request whose answer must be a JSON object (the platform's, as it sent it).
        found = self.request(method, path, **kwargs)
        if not isinstance(found, dict):
            raise FetchFailed(f"{self.url} did not answer a JSON object")
        return found

    def _objects(self, method: str, path: str, **kwargs: Any) -> list[JsonObject]:
        # One request whose answer must be a JSON array of objects.
        found = self.request(method, path, **kwargs)
        if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
            raise FetchFailed(f"{self.url} did not answer a JSON array of objects")
        return found

    # -- identity ---------------------------------------------------------------------

    def register(self, name: str) -> JsonObject:
        """Register a person whose profile names the holder's DID; the platform's answer
        (identity token, bearer token)."""
        did = encode_did_key(self.key.public_key)
        return self._object("POST", "/v1/identities", body={"profile": {"name": name, "did": did}})

    # -- consents ---------------------------------------------------------------------

    def consents(self, status: str | None = None) -> list[JsonObject]:
        """The consents addressed to the holder, newest first, as the platform sent them."""
        params = {"status": status} if status else None
        return self._objects(
            "GET", f"/v1/borrowers/{self._identity()}/consents", params=params, signed=True
        )

    def approve(self, consent_id: str) -> JsonObject:
        """Approve with a signature of the approval message (no identity needed); the
        platform's answer."""
        signature = b64url_encode(self.key.sign(approval_message(consent_id)))
        return self._object(
            "POST", f"/v1/consents/{consent_id}/signed-approval", body={"signature": signature}
        )

    def decide(self, consent_id: str, action: str) -> JsonObject:
        """Reject, pause, resume or revoke one consent (a holder-signed request); the
        platform's answer."""
        return self._object("POST", f"/v1/borrowers/consents/{consent_id}/{action}", signed=True)

    def revoke_all(self, lender: str) -> JsonObject:
        """Revoke every active or paused consent given to ``lender``; the platform's answer."""
        return self._object(
            "POST",
            f"/v1/borrowers/{self._identity()}/consents/revoke-all",
            body={"lender": lender},
            signed=True,
        )

    def history(self, limit: int = 200) -> list[JsonObject]:
        """The access history, newest first, each entry with its receipt when covered (as
        the platform sent it: the caller verifies the receipts)."""
        return self._objects(
            "GET",
            f"/v1/borrowers/{self._identity()}/access-history",
            params={"limit": limit},
            signed=True,
        )

    def public_receipt(self, event_id: str) -> Receipt:
        """The public receipt of an event (``GET /v1/log/receipts/{id}``): raises
        :class:`PlatformRefused` (404) while no checkpoint covers it, and
        :class:`FetchFailed` for an answer that is not a receipt."""
        found = self._object("GET", f"/v1/log/receipts/{event_id}")
        try:
            return Receipt.model_validate(found, extra="ignore")  # a newer platform may add members
        except PydanticValidationError as e:
            raise FetchFailed(f"{self.url} did not answer a receipt") from e

    # -- privacy ----------------------------------------------------------------------

    def data_request(self, kind: str) -> JsonObject:
        """Run a data-subject request (``export`` or ``erasure``) confirmed by the holder
        key's signature of its challenge: the export, or the erasure's answer.

        Raises :class:`PlatformRefused` (403 for any failure to confirm or fulfil) and
        :class:`ValidationError` when the platform asks to sign something else.
        """
        token = self._identity()
        base = f"/v1/identities/{token}/requests"
        opened = self._object("POST", base, body={"kind": kind})
        message = dsr_message(opened["request_id"], opened["challenge"], opened["kind"])
        if opened.get("sign") != message.decode() or opened["kind"] != kind:
            raise ValidationError("the platform asked to sign an unexpected message")
        signature = b64url_encode(self.key.sign(message))
        confirmed = self._object(
            "POST", f"{base}/{opened['request_id']}/confirm", body={"signature": signature}
        )
        return self._object(
            "POST",
            f"{base}/{opened['request_id']}/fulfil",
            headers={"X-DSR-Token": confirmed["dsr_token"]},
        )

    # -- keys -------------------------------------------------------------------------

    def change_key(self, new_key: PrivateKey) -> JsonObject:
        """Tell the platform the holder's new DID, in a request signed by the current key
        and carrying the new key's signature of the rotation message; its answer."""
        token = self._identity()
        did = encode_did_key(new_key.public_key)
        message = f"credit-commons holder key\n{token}\n{did}\n".encode()
        return self._object(
            "POST",
            f"/v1/borrowers/{token}/holder-key",
            body={"did": did, "signature": b64url_encode(new_key.sign(message))},
            signed=True,
        )

    # -- reputation -------------------------------------------------------------------

    def submit_event(self, event: JsonObject) -> JsonObject:
        """Submit a signed vouch or report (``POST /v1/events``); the platform's answer (its
        CID and the log's pending receipt)."""
        return self._object("POST", "/v1/events", body=event)

    def score_bundle(self, ctx: str, *, key: PrivateKey | None = None) -> ScoreAnswer:
        """The score bundle of ``key``'s DID (the holder key by default) in ``ctx`` as the
        subject sees it (``GET /v1/scores`` with a ``Subject-Proof``: the record's values
        and salts included): its bytes, or the seconds to wait while the platform builds it
        (202).

        Raises ``UnsafeUrl``, :class:`FetchFailed` and :class:`PlatformRefused`.
        """
        signer = key or self.key
        did = encode_did_key(signer.public_key)
        proof = sign_subject_proof(
            signer, did=did, ctx=ctx, audience=self.url, iat=int(self._now())
        )
        url = f"{self.url}/v1/scores?{urlencode({'did': did, 'ctx': ctx})}"
        self._fetcher.check_url(url)
        try:
            response = self._client.get(url, headers={"Subject-Proof": proof})
        except httpx.HTTPError as e:
            raise FetchFailed(f"{self.url} could not be reached") from e
        if response.status_code >= 400:
            raise _refusal(response)
        if response.status_code == 202:
            try:
                wait = max(1, min(int(response.headers.get("Retry-After", "2")), 60))
            except ValueError:
                wait = 2
            return ScoreAnswer(None, wait)
        if response.status_code != 200:
            raise FetchFailed(f"{self.url} answered {response.status_code} for a score")
        return ScoreAnswer(response.content, None)

    def join(self, did: str, presentation: str) -> JsonObject:
        """Register ``did``'s membership with a presentation of a credential bound to its
        key (``POST /v1/reputation/members``); the platform's answer."""
        body = {"did": did, "presentation": presentation}
        return self._object("POST", "/v1/reputation/members", body=body)

    def leave(self, did: str, proof: str) -> JsonObject:
        """Ask the platform to leave ``did`` out of scoring for good, with the tombstone
        ``proof`` signed by its key (``POST /v1/reputation/members/tombstone``); the
        platform's answer."""
        body = {"did": did, "proof": proof}
        return self._object("POST", "/v1/reputation/members/tombstone", body=body)

    def log_key(self) -> LogKey:
        """The log's origin and verifier key (``GET /v1/log/key``); raises
        :class:`FetchFailed` for an answer that is not one."""
        found = self._object("GET", "/v1/log/key")
        try:
            return LogKey.model_validate(found, extra="ignore")  # a newer platform may add members
        except PydanticValidationError as e:
            raise FetchFailed(f"{self.url} did not answer the log's key") from e


def _refusal(response: httpx.Response) -> CommonsError:
    try:
        body = json_decode(response.content)
    except CommonsError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        detail = str(body.get("detail") or body.get("title") or response.status_code)
        return PlatformRefused(response.status_code, body["code"], detail)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        detail = str(body.get("error_description") or body["error"])
        return PlatformRefused(response.status_code, f"oauth.{body['error']}", detail)
    return PlatformRefused(
        response.status_code, "wallet.platform_refused", f"HTTP {response.status_code}"
    )
