"""Seed 004's threshold proof, the holder's side: "my community score in ``ctx`` is at least
θ", proved in zero knowledge from the wallet's ``CommunityTierCredential`` (docs/wallet.md,
"The local server"; the relying party's check is ``verifier.verify_threshold_proof``).

:class:`ThresholdProver` answers one :class:`ThresholdRequest`:

1. the credential: the newest ``CommunityTierCredential`` of ``ctx`` held in the wallet and
   bound to one of its keys (none: :class:`ThresholdUnprovable`);
2. the checkpoint: the platform's score bundle of the holder's DID, fetched as its subject —
   its record must be the one the credential certifies (same rule set, day and score), else
   :class:`TierCredentialStale`; its ``checkpoint`` (the signed note the score was computed
   at) is answered, because the credential names only the day (``as_of``);
3. the proof: ``community_score_at_least`` with ``threshold`` by ``zk_proofs.prove``, bound to
   the nonce, the audience and :func:`~credit_commons.verifier.threshold_request_hash` (a
   score below θ: :class:`ThresholdUnprovable`, the same answer as no credential);
4. a presentation of the credential disclosing none of its Disclosures (the issuer-signed
   commitment the proof opens, with key binding to the nonce and audience);
5. a line in the wallet's proof history (what, to whom, when, and the outcome), asked or
   refused.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from credit_commons import zk
from credit_commons.core.encoding import JsonObject, json_decode
from credit_commons.core.errors import (
    CommonsError,
    ConflictError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)
from credit_commons.core.net import FetchFailed, OutboundFetcher
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.reputation import CTX_PATTERN, micro_string
from credit_commons.verifier import ANY_AUDIENCE, THRESHOLD_STATEMENT, threshold_request_hash
from credit_commons.wallet.client import make_presentation
from credit_commons.wallet.held import held_facts
from credit_commons.wallet.platform import Platform
from credit_commons.wallet.store import StoredCredential, Wallet
from credit_commons.wallet.zk_proofs import PredicateUnprovable, fetch_statement, prove

__all__ = [
    "MAX_THRESHOLD",
    "ScorePending",
    "ThresholdProver",
    "ThresholdRequest",
    "ThresholdUnprovable",
    "TierCredentialStale",
    "parse_threshold_request",
]

MAX_THRESHOLD: Final = 10**15
"""The largest θ (micro-units): the registry statement's bound for ``threshold``."""
_NONCE = re.compile(r"[A-Za-z0-9._~+/=-]{8,256}")
_AUDIENCE_MAX: Final = 512
_STATEMENT_TTL: Final = 300.0  # seconds a fetched statement is reused
_HISTORY_MAX: Final = 1000  # proof history entries kept (oldest dropped)
_CTX = re.compile(CTX_PATTERN)


class ThresholdUnprovable(ValidationError):
    """The wallet cannot prove the threshold: no community tier credential for the context,
    or a score below it — one answer for both, which names no score."""

    code = "wallet.threshold_unprovable"
    title = "The threshold cannot be proved"


class TierCredentialStale(ConflictError):
    """The wallet's community tier credential certifies a score the platform no longer
    holds for the DID (rescored since): pick up the current one."""

    code = "wallet.credential_stale"
    title = "The community tier credential is not current"


class ScorePending(UnavailableError):
    """The platform is still building the score bundle; ask again after ``retry_after``."""

    code = "wallet.score_pending"
    title = "The score is being prepared"

    def __init__(self, retry_after: int) -> None:
        super().__init__("the platform is preparing the score bundle")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ThresholdRequest:
    """A threshold-proof request, checked: the context, θ in micro-units, the relying
    party's nonce and (optional) audience."""

    ctx: str
    threshold: int
    nonce: str
    audience: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.ctx, str) or not _CTX.fullmatch(self.ctx):
            raise ValidationError("ctx is not a reputation context", extra={"field": "ctx"})
        if (
            not isinstance(self.threshold, int)
            or isinstance(self.threshold, bool)
            or not 0 <= self.threshold <= MAX_THRESHOLD
        ):
            raise ValidationError(
                f"threshold is an integer from 0 to {MAX_THRESHOLD} (micro-units)",
                extra={"field": "threshold"},
            )
        if not isinstance(self.nonce, str) or not _NONCE.fullmatch(self.nonce):
            raise ValidationError(
                "nonce is 8 to 256 characters of base64, base64url or hex",
                extra={"field": "nonce"},
            )
        if self.audience is not None and (
            not isinstance(self.audience, str)
            or not 0 < len(self.audience) <= _AUDIENCE_MAX
            or not self.audience.isprintable()
        ):
            raise ValidationError(
                f"audience is 1 to {_AUDIENCE_MAX} printable characters",
                extra={"field": "audience"},
            )

    @property
    def bound_audience(self) -> str:
        """The audience the proof is bound to (:data:`ANY_AUDIENCE` when none is named)."""
        return self.audience or ANY_AUDIENCE


_MEMBERS: Final = frozenset({"ctx", "threshold", "nonce", "audience"})


def parse_threshold_request(body: Any) -> ThresholdRequest:
    """The request in a JSON body ``{ctx, threshold, nonce[, audience]}``; raises
    :class:`ValidationError` naming the field."""
    if not isinstance(body, dict):
        raise ValidationError("the body is a JSON object {ctx, threshold, nonce[, audience]}")
    unknown = sorted(set(body) - _MEMBERS)
    if unknown:
        raise ValidationError(f"unknown member {unknown[0]}", extra={"field": unknown[0]})
    for name in ("ctx", "threshold", "nonce"):
        if name not in body:
            raise ValidationError(f"{name} is required", extra={"field": name})
    return ThresholdRequest(body["ctx"], body["threshold"], body["nonce"], body.get("audience"))


def _tier_payload(stored: StoredCredential) -> JsonObject | None:
    # The credential's issuer-signed payload if it is a CommunityTierCredential.
    if "~" not in stored.credential:
        return None
    try:
        payload = SdJwt.parse(stored.credential).payload
    except (CommonsError, ValueError):
        return None
    return payload if payload.get("vct") == zk.COMMUNITY_TIER_VCT else None


@dataclass(frozen=True, slots=True)
class _Held:
    stored: StoredCredential
    payload: JsonObject
    claims: JsonObject


def _tier_credential(wallet: Wallet, ctx: str) -> _Held:
    # 1. The newest CommunityTierCredential of ctx bound to one of the wallet's keys.
    for stored in reversed(wallet.credentials):
        payload = _tier_payload(stored)
        if payload is None or payload.get("ctx") != ctx:
            continue
        cnf = payload.get("cnf")
        jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
        if not isinstance(jwk, dict) or wallet.key_matching(jwk) is None:
            continue
        return _Held(stored, payload, dict(held_facts(stored).claims))
    raise ThresholdUnprovable("the wallet cannot prove this threshold in this context")


class ThresholdProver:
    """The wallet's threshold proofs for the lifetime of a ``commons wallet serve`` process:
    the opened wallet (read again from its file for each request, so credentials picked up
    by other commands are seen), its platform, and the statement, fetched once every five
    minutes.  Requests are answered one at a time (the wallet file is read and written)."""

    def __init__(
        self,
        wallet: Wallet,
        platform_url: str,
        *,
        fetcher: OutboundFetcher,
        http: httpx.Client,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.wallet, self.platform_url = wallet, platform_url.rstrip("/")
        self._fetcher, self._http, self._now = fetcher, http, now
        self._lock = threading.Lock()
        self._statement: tuple[float, zk.Statement] | None = None

    def _platform(self) -> Platform:
        return Platform(
            self.platform_url, self.wallet.holder_key, None, fetcher=self._fetcher, http=self._http
        )

    def _statement_now(self) -> zk.Statement:
        cached = self._statement
        if cached is not None and self._now() - cached[0] < _STATEMENT_TTL:
            return cached[1]
        statement = fetch_statement(
            self._http,
            self._fetcher,
            f"{self.platform_url}/v1/zk/statements",
            THRESHOLD_STATEMENT,
        )
        self._statement = (self._now(), statement)
        return statement

    def _checkpoint(self, held: _Held, ctx: str) -> str:
        # 2. The bundle's checkpoint, once its record is the one the credential certifies.
        key = self.wallet.key_matching(held.payload["cnf"]["jwk"])
        answer = self._platform().score_bundle(ctx, key=key)
        if answer.bundle is None:
            raise ScorePending(answer.retry_after or 2)
        try:
            bundle = json_decode(answer.bundle)
        except CommonsError as e:
            raise FetchFailed(f"{self.platform_url} did not answer a score bundle") from e
        record = bundle.get("record") if isinstance(bundle, dict) else None
        checkpoint = bundle.get("checkpoint") if isinstance(bundle, dict) else None
        if not isinstance(record, dict) or not isinstance(checkpoint, str):
            raise FetchFailed(f"{self.platform_url} did not answer a score bundle")
        opening = held.claims.get("score_opening")
        score = opening.get("score") if isinstance(opening, dict) else None
        if (
            not isinstance(score, int)
            or record.get("ruleSet") != held.payload.get("rule_set")
            or record.get("asOf") != held.payload.get("as_of")
            or record.get("score") != micro_string(score)
        ):
            raise TierCredentialStale(
                "the platform has rescored this context since the credential was issued",
                hint="pick up the current one: commons wallet capabilities --ctx " + ctx,
            )
        return checkpoint

    def scores(self, did: str, ctx: str) -> bytes:
        """The platform's score bundle of ``did`` (a DID of this wallet's keys) in ``ctx``,
        as its subject sees it.  Raises :class:`NotFoundError` for another DID (the
        platform's own answer for an unknown one), :class:`ScorePending` and what the
        platform client raises."""
        if not isinstance(ctx, str) or not _CTX.fullmatch(ctx):
            raise ValidationError("ctx is not a reputation context", extra={"field": "ctx"})
        key = self.wallet.key_for_did(did) if isinstance(did, str) else None
        if key is None:
            raise NotFoundError("no such score")
        answer = self._platform().score_bundle(ctx, key=key)
        if answer.bundle is None:
            raise ScorePending(answer.retry_after or 2)
        return answer.bundle

    def prove(self, request: ThresholdRequest) -> JsonObject:
        """The answer to ``request`` — the module's steps — ``{"proof", "checkpoint",
        "presentation", "request"}``.

        Raises :class:`ThresholdUnprovable`, :class:`TierCredentialStale`,
        :class:`ScorePending`, the platform client's and the engine's errors.
        """
        with self._lock:
            self.wallet.reload()
            outcome = "refused"
            held: _Held | None = None
            try:
                held = _tier_credential(self.wallet, request.ctx)
                checkpoint = self._checkpoint(held, request.ctx)
                answer = self._prove(held, request, checkpoint)
                outcome = "proved"
                return answer
            except ThresholdUnprovable:
                outcome = "unprovable"
                raise
            except CommonsError as e:
                outcome = e.code
                raise
            finally:
                self._remember(request, held, outcome)

    def _prove(self, held: _Held, request: ThresholdRequest, checkpoint: str) -> JsonObject:
        # 3 and 4. The proof, then the presentation the relying party takes the commitment from.
        audience = request.bound_audience
        request_hash = threshold_request_hash(
            ctx=request.ctx, threshold=request.threshold, nonce=request.nonce, audience=audience
        )
        try:
            proof = prove(
                held.stored,
                self._statement_now(),
                {"threshold": request.threshold},
                nonce=request.nonce,
                audience=audience,
                request_hash=request_hash,
                today=datetime.fromtimestamp(self._now(), UTC).date(),
            )
        except PredicateUnprovable as e:
            raise ThresholdUnprovable(
                "the wallet cannot prove this threshold in this context"
            ) from e
        presentation = make_presentation(
            self.wallet, held.stored.id, audience=audience, nonce=request.nonce, disclose=set()
        )
        return {
            "proof": proof,
            "checkpoint": checkpoint,
            "presentation": presentation,
            "request": {
                "statement": THRESHOLD_STATEMENT,
                "ctx": request.ctx,
                "threshold": request.threshold,
                "nonce": request.nonce,
                "audience": audience,
                "request_hash": request_hash,
            },
        }

    def _remember(self, request: ThresholdRequest, held: _Held | None, outcome: str) -> None:
        # 5. The proof history, kept in the wallet file (newest last, bounded).
        self.wallet.record_proof(
            {
                "at": datetime.fromtimestamp(self._now(), UTC).isoformat(),
                "statement": THRESHOLD_STATEMENT,
                "ctx": request.ctx,
                "threshold": request.threshold,
                "audience": request.bound_audience,
                "nonce": request.nonce,
                "credential": held.stored.id if held is not None else None,
                "outcome": outcome,
            },
            keep=_HISTORY_MAX,
        )
        self.wallet.save()
