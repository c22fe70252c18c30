"""``Lender``: a lender's whole path through the platform, as a small typed client.

Create a key (:class:`~credit_commons.client.keyfile.LenderKey`), print the registration an
administrator approves, get access tokens (``private_key_jwt``), discover borrowers, request
a consent, wait for the decision (or verify a webhook), retrieve under the consent, and
verify what was retrieved — the credential and the log receipt of the access.  The
``commons lender`` commands are this class, one method each.

Time and sleeping are parameters (``clock``, ``sleep``), so waits are testable by count.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Self, TypeVar

import httpx
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from credit_commons.client import trust_bundle
from credit_commons.client.assertion import client_assertion
from credit_commons.client.errors import (
    ApiNotFound,
    ApiUnavailable,
    ArtefactInvalid,
    ConsentPending,
    LenderNotConfigured,
    ReceiptPending,
    WebhookInvalid,
)
from credit_commons.client.http import PlatformFetcher, PlatformHttp
from credit_commons.client.keyfile import LenderKey
from credit_commons.client.models import (
    AccessToken,
    Consent,
    DiscoveryEntry,
    Retrieval,
    VerifiedRetrieval,
    WebhookNotice,
)
from credit_commons.client.trust_bundle import PROCESS_VERSIONS, BundleVersions
from credit_commons.client.verify import (
    ARTEFACT_TYP,
    WEBHOOK_TYP,
    CredentialVerifier,
    check_disclosed,
    verify_access_receipt,
    verify_platform_jws,
)
from credit_commons.consent import TEMPLATES
from credit_commons.core.encoding import JsonObject
from credit_commons.ledger import LogKey, Receipt
from credit_commons.verifier import (
    RequestCreated,
    TransactionStatus,
    TrustBundle,
    VerifierDecision,
)

__all__ = ["CLIENT_ASSERTION_TYPE", "DEFAULT_CREDENTIAL_TYPE", "Lender", "registration_request"]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_CREDENTIAL_TYPE = "CreditReadinessCredential"
_M = TypeVar("_M", bound=BaseModel)
_REFRESH_MARGIN = 30.0
"""Seconds before expiry at which a cached access token is replaced."""


def registration_request(
    key: LenderKey, name: str, purposes: Sequence[str], webhook_url: str | None = None
) -> JsonObject:
    """The body of ``POST /v1/admin/lenders`` an administrator approves: the name, the
    public JWK of ``key``, the purposes and an optional webhook URL (no secret)."""
    body: JsonObject = {
        "name": name,
        "jwks": {"keys": [key.public_jwk()]},
        "allowed_purposes": list(purposes),
    }
    if webhook_url is not None:
        body["webhook_url"] = webhook_url
    return body


class Lender:
    """A lender client of the platform at ``base_url`` (its ``COMMONS_PUBLIC_URL``).

    ``client_id`` and ``key`` are needed from the token on; ``log_key`` (the log's verifier
    key, pinned out of band or with ``commons lender log-key``) for verifying receipts;
    ``bundle_key`` (the ``did:key`` or public JWK ``commons verify trust key`` prints on the
    platform) to verify retrieved credentials against the platform's trust bundle, with
    ``required_marks`` (see :class:`~credit_commons.client.verify.CredentialVerifier` for
    how it combines with ``trusted_issuers``); ``bundle_versions`` remembers the highest
    bundle version accepted (rollback refused), per process by default.  ``tls`` is the
    TLS context to reach the platform with: its CA and, for certificate-bound tokens (RFC
    8705), the lender's client certificate (``ssl.create_default_context(cafile=…)`` then
    ``load_cert_chain(cert, key)``; docs/lenders.md).

    Raises :class:`BundleKeyInvalid` for a ``bundle_key`` that is not a key.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str | None = None,
        key: LenderKey | None = None,
        log_key: str | None = None,
        witness_keys: Sequence[str] = (),
        quorum: int | None = None,
        trusted_issuers: Sequence[str] = (),
        bundle_key: str | None = None,
        required_marks: Sequence[str] = (),
        bundle_versions: BundleVersions = PROCESS_VERSIONS,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.http = PlatformHttp(base_url, transport=transport, tls=tls)
        self.base_url = self.http.base_url
        self.client_id, self.key = client_id, key
        self.log_key, self.witness_keys, self.quorum = log_key, tuple(witness_keys), quorum
        self._trusted = tuple(trusted_issuers)
        # The pinned key of the platform's trust bundle, parsed now: a bad pin is a
        # configuration error before any request.
        self._bundle_key = trust_bundle.bundle_key(bundle_key) if bundle_key else None
        self._marks = tuple(required_marks)
        self._versions = bundle_versions
        self._transport = transport
        self._clock, self._sleep = clock, sleep
        self._token: AccessToken | None = None

    def close(self) -> None:
        """Release the connections."""
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registration and tokens -----------------------------------------------------------

    def registration_request(
        self, name: str, purposes: Sequence[str], webhook_url: str | None = None
    ) -> JsonObject:
        """:func:`registration_request` for this lender's key.

        Raises :class:`LenderNotConfigured` without a key.
        """
        return registration_request(self._need_key(), name, purposes, webhook_url)

    @property
    def token_endpoint(self) -> str:
        """The token endpoint, which client assertions name as ``aud``."""
        return f"{self.base_url}/oauth/token"

    def token(self, scope: str | None = None, *, fresh: bool = False) -> AccessToken:
        """An access token (client credentials with ``private_key_jwt``), reused while it
        has more than 30 s left unless ``fresh`` or another ``scope`` is asked for.

        Raises :class:`LenderNotConfigured` without a client id or key, and
        ``ApiForbidden`` (``oauth.invalid_client``) when the platform refuses the client.
        """
        cached = self._token
        if (
            not fresh
            and scope is None
            and cached is not None
            and cached.expires_at - self._clock() > _REFRESH_MARGIN
        ):
            return cached
        key, client_id = self._need_key(), self._need_client_id()
        now = self._clock()
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": client_assertion(
                key.key,
                kid=key.kid,
                client_id=client_id,
                token_endpoint=self.token_endpoint,
                now=int(now),
            ),
        }
        if scope is not None:
            form["scope"] = scope
        body = self.http.request_object("POST", "/oauth/token", data=form)
        token = AccessToken(
            str(body["access_token"]), now + float(body["expires_in"]), str(body["scope"])
        )
        if scope is None:
            self._token = token
        return token

    def _bearer(self) -> str:
        return self.token().access_token

    # -- discovery and consent -------------------------------------------------------------

    def tiers(self, credit_tier: str | None = None, limit: int = 50) -> list[DiscoveryEntry]:
        """Opted-in borrowers' public attributes (``GET /v1/lender/discovery``), each with a
        ``borrower_ref`` to name in a consent request."""
        params = {"limit": str(limit)}
        if credit_tier is not None:
            params["credit_tier"] = credit_tier
        found = self.http.request_list(
            "GET", "/v1/lender/discovery", params=params, token=self._bearer()
        )
        return [DiscoveryEntry.from_json(entry) for entry in found]

    def request_consent(
        self,
        *,
        borrower: str,
        template: str,
        purpose: str,
        claims: Sequence[str],
        duration: timedelta,
        credential_type: str = DEFAULT_CREDENTIAL_TYPE,
        mode: str = "VIEW",
        fetch_type: str | None = None,
        data_life: JsonObject | None = None,
        frequency: JsonObject | None = None,
    ) -> Consent:
        """Ask ``borrower`` (an identity token or a ``borrower_ref``) for ``claims`` of
        ``credential_type`` for ``purpose``, under ``template``, for ``duration`` from now.

        ``fetch_type`` defaults to the template's only one.  Raises the platform's
        ``ApiInvalid`` (``consent.request_invalid``, with field errors) for a request the
        template or the lender's registration does not allow.
        """
        known = TEMPLATES.get(template)
        if fetch_type is None:
            only = sorted(known.fetch_types) if known is not None else ["ONETIME"]
            fetch_type = only[0] if len(only) == 1 else "ONETIME"
        expiry = datetime.fromtimestamp(self._clock(), UTC) + duration
        body: JsonObject = {
            "template": template,
            "borrower": borrower,
            "purpose": purpose,
            "mode": mode,
            "fetch_type": fetch_type,
            "consent_expiry": expiry.isoformat(),
            "scopes": [{"type": credential_type, "claims": list(claims)}],
        }
        if data_life is not None:
            body["data_life"] = data_life
        if frequency is not None:
            body["frequency"] = frequency
        made = self.http.request_object("POST", "/v1/consents", json=body, token=self._bearer())
        return Consent.from_json(made)

    def consent(self, consent_id: str) -> Consent:
        """The consent's status and, once granted, its signed artefact."""
        found = self.http.request_object("GET", f"/v1/consents/{consent_id}", token=self._bearer())
        return Consent.from_json(found)

    def consent_jwks(self) -> JsonObject:
        """The platform's keys for consent artefacts and webhooks (``/v1/consents/jwks``, a
        JWK Set: RFC 7517 §5)."""
        return self.http.request_object("GET", "/v1/consents/jwks")

    def wait_for_decision(
        self,
        consent_id: str,
        *,
        timeout: float = 300.0,
        first_delay: float = 1.0,
        max_delay: float = 15.0,
    ) -> Consent:
        """Poll the consent until the borrower decided (or it expired), at most ``timeout``
        seconds, the delay doubling from ``first_delay`` up to ``max_delay``.  A granted
        consent's artefact is verified (:meth:`verify_artefact`) before it is returned.

        Raises :class:`ConsentPending` when still pending at the end, and
        :class:`ArtefactInvalid`.
        """
        deadline = self._clock() + timeout
        delay = first_delay
        while True:
            found = self.consent(consent_id)
            if found.status != "PENDING":
                if found.status == "ACTIVE":
                    self.verify_artefact(found)
                return found
            left = deadline - self._clock()
            if left <= 0:
                raise ConsentPending(
                    f"{consent_id} is still pending after {timeout:g} s",
                    hint="wait again later, or for the webhook",
                )
            self._sleep(min(delay, left))
            delay = min(delay * 2, max_delay)

    def verify_artefact(self, consent: Consent) -> JsonObject:
        """Check a granted consent's artefact: a ``consent+jwt`` by a platform consent key,
        from this platform, for this consent and this lender.  Returns its payload (the
        JWT claims set).

        Raises :class:`ArtefactInvalid`.
        """
        if consent.artefact is None:
            raise ArtefactInvalid("the consent has no artefact")
        payload = verify_platform_jws(
            consent.artefact,
            self.consent_jwks(),
            typ=ARTEFACT_TYP,
            issuer=self.base_url,
            error=ArtefactInvalid,
        )
        detail = payload.get("ConsentDetail")
        consumer = detail.get("DataConsumer") if isinstance(detail, dict) else None
        consumer_id = consumer.get("id") if isinstance(consumer, dict) else None
        if payload.get("consentId") != consent.consent_id:
            raise ArtefactInvalid("the artefact is for another consent")
        if self.client_id is not None and consumer_id != self.client_id:
            raise ArtefactInvalid("the artefact is for another lender")
        return payload

    def verify_webhook(self, body: str | bytes, jwks: JsonObject | None = None) -> WebhookNotice:
        """Verify a webhook body (a ``consent-event+jwt`` POSTed as ``application/jwt``)
        with the platform's consent keys (``jwks``, or fetched): signature, ``typ``, ``iss``
        this platform, ``aud`` this lender.

        Raises :class:`WebhookInvalid`, :class:`LenderNotConfigured` without a client id.
        """
        client_id = self._need_client_id()
        try:
            text = body.decode("ascii") if isinstance(body, bytes) else body
        except UnicodeDecodeError as e:
            raise WebhookInvalid("the webhook body is not a compact JWS") from e
        payload = verify_platform_jws(
            text.strip(),
            jwks if jwks is not None else self.consent_jwks(),
            typ=WEBHOOK_TYP,
            issuer=self.base_url,
            error=WebhookInvalid,
        )
        if payload.get("aud") != client_id:
            raise WebhookInvalid("the notice is addressed to another lender")
        values = [payload.get(k) for k in ("consent_id", "status", "event_id")]
        iat = payload.get("iat")
        if not all(isinstance(v, str) for v in values) or not isinstance(iat, int):
            raise WebhookInvalid("the notice lacks its consent, status, event or time")
        return WebhookNotice(str(values[0]), str(values[1]), str(values[2]), iat)

    # -- retrieval and verification ---------------------------------------------------------

    def retrieve(
        self,
        consent_id: str,
        *,
        credential_type: str | None = None,
        claims: Sequence[str] | None = None,
    ) -> Retrieval:
        """Retrieve the credential a consent grants (only its granted Disclosures).

        Raises ``ApiForbidden`` (``access.denied``, the same for every reason) when the
        consent does not allow it.
        """
        params = {"consent_id": consent_id}
        if credential_type is not None:
            params["type"] = credential_type
        if claims:
            params["claims"] = ",".join(claims)
        found = self.http.request_object(
            "GET", "/v1/lender/credentials", params=params, token=self._bearer()
        )
        return Retrieval.from_json(found)

    def receipt(self, event_id: str, *, timeout: float = 60.0, first_delay: float = 0.5) -> Receipt:
        """The public receipt of ``event_id`` (``/v1/log/receipts/{id}``), waiting at most
        ``timeout`` seconds for a checkpoint to cover it.

        Raises :class:`ReceiptPending` when none does in time, and ``ApiUnavailable`` (502)
        for an answer that is not a receipt.
        """
        deadline = self._clock() + timeout
        delay = first_delay
        while True:
            try:
                found = self.http.request_object("GET", f"/v1/log/receipts/{event_id}")
            except ApiNotFound as e:
                left = deadline - self._clock()
                if left <= 0:
                    raise ReceiptPending(
                        f"no checkpoint covers {event_id} yet",
                        hint="the platform checkpoints every few seconds; verify again",
                    ) from e
                self._sleep(min(delay, left))
                delay = min(delay * 2, 5.0)
                continue
            return _validated(Receipt, found, "a receipt")

    def log_identity(self) -> LogKey:
        """The log's origin and verifier key as the platform states them (``/v1/log/key``),
        to pin once: a key fetched each time would prove nothing."""
        found = self.http.request_object("GET", "/v1/log/key")
        return _validated(LogKey, found, "the log's key")

    def presentation_request(
        self,
        dcql_query: JsonObject,
        *,
        policy_id: str | None = None,
        purpose: str | None = None,
        client_id_prefix: str | None = None,
        response_mode: str = "direct_post",
        redirect_uri: str | None = None,
    ) -> RequestCreated:
        """Ask a wallet for credentials (``POST /v1/verifier/requests``, OpenID4VP 1.0): the
        transaction, with the ``request_uri`` or by-value request and the ``wallet_url``
        to hand the wallet (docs/verifier.md).  Without ``client_id_prefix`` the platform
        chooses: ``decentralized_identifier`` when its public URL carries a did:web, else
        ``redirect_uri``.  Raises the platform's ``ApiInvalid`` for a DCQL query, policy,
        prefix or redirect it does not accept."""
        body: JsonObject = {"dcql_query": dcql_query, "response_mode": response_mode}
        if client_id_prefix is not None:
            body["client_id_prefix"] = client_id_prefix
        if policy_id is not None:
            body["policy_id"] = policy_id
        if purpose is not None:
            body["purpose"] = purpose
        if redirect_uri is not None:
            body["redirect_uri"] = redirect_uri
        made = self.http.request_object(
            "POST", "/v1/verifier/requests", json=body, token=self._bearer()
        )
        return _validated(RequestCreated, made, "the presentation request")

    def presentation_status(self, transaction_id: str) -> TransactionStatus:
        """A presentation request's status, with the decision and, for a denial, its
        precise reason (``GET /v1/verifier/requests/{id}``)."""
        found = self.http.request_object(
            "GET", f"/v1/verifier/requests/{transaction_id}", token=self._bearer()
        )
        return _validated(TransactionStatus, found, "the presentation request's status")

    def presentation_decision(self, transaction_id: str, response_code: str) -> VerifierDecision:
        """The accepted decision with the disclosed claims, once, for the response code the
        wallet was redirected with.  Raises ``ApiNotFound`` otherwise (read, denied, or
        another code: one answer)."""
        found = self.http.request_object(
            "POST",
            f"/v1/verifier/requests/{transaction_id}/decision",
            json={"response_code": response_code},
            token=self._bearer(),
        )
        return _validated(VerifierDecision, found, "the decision")

    def verify(
        self,
        retrieval: Retrieval,
        *,
        receipt: Receipt | JsonObject | None = None,
        receipt_timeout: float = 60.0,
    ) -> VerifiedRetrieval:
        """Verify a retrieval: the credential (issuer signature by the platform or a trusted
        issuer, Disclosures, type, status list; with a pinned bundle key, the platform's
        trust bundle fetched and verified first, and the issuer judged by it), that the
        disclosed claims are in it, and the receipt of the access (``receipt``, or fetched)
        against the pinned log key.

        Raises :class:`LenderNotConfigured` without a log key, the trust bundle's errors
        (``TrustBundleInvalid`` and its kinds), the credential's and the
        receipt's verification errors, ``RetrievalInvalid``, ``ReceiptMismatch`` and
        :class:`ReceiptPending`.
        """
        if not self.log_key:
            raise LenderNotConfigured(
                "verifying the access receipt needs the log's verifier key",
                hint="pin it once: commons lender log-key, then COMMONS_LENDER_LOG_KEY",
            )
        fetcher = PlatformFetcher(self.base_url, transport=self._transport)
        try:
            verifier = CredentialVerifier(
                self.base_url,
                fetcher,
                trusted=self._trusted,
                bundle=self._trust_bundle(fetcher),
                required_marks=self._marks,
                clock=self._clock,
            )
            credential = verifier.verify(retrieval.credential)
        finally:
            fetcher.close()
        check_disclosed(credential.claims, retrieval.disclosed)
        if receipt is None:
            receipt = self.receipt(retrieval.access_event_id, timeout=receipt_timeout)
        proved = verify_access_receipt(
            receipt,
            log_key=self.log_key,
            event_id=retrieval.access_event_id,
            witness_keys=self.witness_keys,
            quorum=self.quorum,
        )
        return VerifiedRetrieval(
            consent_id=retrieval.consent_id,
            issuer=credential.issuer,
            vct=credential.vct,
            claims=credential.claims,
            status=credential.status,
            access_event_id=retrieval.access_event_id,
            log_origin=proved.checkpoint.origin,
            log_size=proved.checkpoint.size,
            leaf_index=proved.index,
            witnesses=proved.witnesses,
        )

    def _trust_bundle(self, fetcher: PlatformFetcher) -> TrustBundle | None:
        # Fetched for each verification: the bundle is re-signed daily and may change.
        if self._bundle_key is None:
            return None
        now = datetime.fromtimestamp(self._clock(), UTC)
        return trust_bundle.fetch_bundle(
            fetcher, self.base_url, self._bundle_key, now=now, versions=self._versions
        )

    # -- settings ---------------------------------------------------------------------------

    def _need_key(self) -> LenderKey:
        if self.key is None:
            raise LenderNotConfigured(
                "no client key", hint="commons lender key create, then COMMONS_LENDER_KEY_FILE"
            )
        return self.key

    def _need_client_id(self) -> str:
        if not self.client_id:
            raise LenderNotConfigured(
                "no client id",
                hint="the administrator's approval names it; set COMMONS_LENDER_CLIENT_ID",
            )
        return self.client_id


def _validated(model: type[_M], found: JsonObject, what: str) -> _M:
    # The platform's answer as the model its route names; ApiUnavailable (502) otherwise.
    # Members a newer platform adds are ignored, as a client should (the platform's own
    # models forbid them, to keep its answers exact).
    try:
        return model.model_validate(found, extra="ignore")
    except PydanticValidationError as e:
        raise ApiUnavailable(
            502,
            {
                "code": "lender.platform_answer_invalid",
                "detail": f"the platform did not answer {what}",
            },
        ) from e
