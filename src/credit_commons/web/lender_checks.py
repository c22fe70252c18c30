"""What the lender's pages show of a retrieved credential: the facts, and the three checks
behind them in plain words.

- **Signature**: the credential is verified as the API's verifier verifies a credential a
  lender retrieved under consent (``verifier.verify_sd_jwt_credential``: the issuer's
  signature with the issuer's key, issuer trust, and the status below).
- **Status**: the credential is neither revoked nor suspended in the issuer's status list
  (step 9 of the same verification: a failure there says which).
- **Receipt**: the access (``access.allowed``, recorded with the retrieval) is in the
  public log: its public receipt (``GET /v1/log/receipts/{event_id}``'s) is verified here on
  the server against the log's key (the checkpoint's signature and the inclusion proof).
  Until a checkpoint covers the event — within seconds, the log worker's interval — it is
  "pending", and the receipt page says to look again.

Nothing here writes: each check runs in a read unit of work of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError, NotFoundError
from credit_commons.ledger import service as log_service
from credit_commons.ledger import verify_receipt
from credit_commons.ledger.identity import log_identity
from credit_commons.runtime import Runtime
from credit_commons.verifier import verify_sd_jwt_credential
from credit_commons.verifier.reasons import Reason, reason_of

__all__ = ["CredentialCheck", "Fact", "ReceiptCheck", "check_credential", "check_receipt"]

_REGISTERED = frozenset(
    {"iss", "iat", "nbf", "exp", "vct", "sub", "jti", "_sd_alg", "vct#integrity"}
)


@dataclass(frozen=True)
class Fact:
    """One disclosed fact: its claim path (``/income_bracket``) and its value as text."""

    path: str
    value: str


@dataclass(frozen=True)
class CredentialCheck:
    """The verification of a retrieved credential: ``signature`` and ``status`` are
    ``ok``, ``failed`` (signature), ``revoked``, ``suspended`` or ``unchecked``; the facts
    are the verified claims (empty when the signature failed: nothing is shown that was
    not verified)."""

    signature: str
    status: str
    facts: tuple[Fact, ...]
    issuer: str


@dataclass(frozen=True)
class ReceiptCheck:
    """The public log's receipt of an event: ``state`` ``verified`` (with the leaf
    ``index``, the checkpoint's ``size`` and the logged ``entry``), ``pending`` (no
    checkpoint covers it yet) or ``failed`` (it did not verify)."""

    state: str
    index: int | None = None
    size: int | None = None
    entry: str | None = None


def _facts(claims: dict[str, Any], prefix: str = "") -> list[Fact]:
    found: list[Fact] = []
    for name in sorted(claims):
        if not prefix and name in _REGISTERED:
            continue
        value = claims[name]
        path = f"{prefix}/{name}"
        if isinstance(value, dict) and name != "score_opening":
            found.extend(_facts(value, path))
        elif isinstance(value, list):
            found.append(Fact(path, ", ".join(str(v) for v in value)))
        elif isinstance(value, dict):
            found.append(Fact(path, str(value.get("score", json.dumps(value, sort_keys=True)))))
        else:
            found.append(Fact(path, str(value)))
    return found


def check_credential(rt: Runtime, credential: str) -> CredentialCheck:
    """Verify ``credential`` (an SD-JWT VC without key binding, as retrieval hands it over)
    and say what passed.  Raises nothing: a failure is in the answer."""
    try:
        with transaction(rt.read_sessions) as session:
            verified = verify_sd_jwt_credential(session, rt, credential)
    except CommonsError as e:  # every refusal is shown as a failed check
        reason = reason_of(e)
        if reason in (Reason.REVOKED, Reason.SUSPENDED):
            return CredentialCheck("ok", reason.value, (), "")
        return CredentialCheck("failed", "unchecked", (), "")
    claims = dict(verified.claims)
    return CredentialCheck("ok", "ok", tuple(_facts(claims)), str(claims.get("iss", "")))


def check_receipt(rt: Runtime, event_id: str) -> ReceiptCheck:
    """The public receipt of ``event_id``, verified against this log's key(s).  Raises
    nothing: an event no checkpoint covers yet is ``pending``."""
    try:
        with transaction(rt.read_sessions) as session:
            receipt = log_service.receipt(
                session, event_id, include_event=False, cache=rt.tile_cache
            )
    except NotFoundError:
        return ReceiptCheck("pending")
    document = receipt.model_dump(mode="json", exclude_none=True)
    for vkey in reversed(log_identity(rt).vkeys):
        try:
            verified = verify_receipt(document, vkey)
        except CommonsError:
            continue
        return ReceiptCheck("verified", verified.index, verified.checkpoint.size, receipt.entry)
    return ReceiptCheck("failed", receipt.index, None, receipt.entry)
