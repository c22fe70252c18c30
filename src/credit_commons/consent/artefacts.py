"""The consent artefact: the platform's signed, unchanging record of a granted consent.

A granted consent is a compact JWS (``typ: consent+jwt``) signed by the platform key
``consent`` — the key that also signs the webhooks (``consent/webhooks.py``) and is
published at ``/v1/consents/jwks`` — in the shape of the Account Aggregator
``ConsentDetail``, with credential scopes in place of FI types.  A change of terms is a new
consent, never a new artefact.  :func:`public_view` is how a consent is shown to its lender
and its borrower.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from credit_commons.consent.model import PURPOSES, was_assisted
from credit_commons.consent.models import ConsentRow
from credit_commons.consent.schemas import ConsentView
from credit_commons.core.clock import utc
from credit_commons.formats.jws import sign_compact
from credit_commons.keys import KeyType, KeyVersion, StoredSigner
from credit_commons.keys import service as key_service
from credit_commons.runtime import Runtime

__all__ = [
    "ARTEFACT_TYP",
    "CONSENT_KEY",
    "consent_answer",
    "consent_key_versions",
    "consent_signer",
    "public_view",
    "sign_artefact",
]

CONSENT_KEY = "consent"
ARTEFACT_TYP = "consent+jwt"

_CONSENT_PLATFORM_KEY = key_service.PlatformKey(CONSENT_KEY, KeyType.ED25519, "consent")


def consent_signer(session: Session, rt: Runtime) -> StoredSigner:
    """The key that signs artefacts and webhooks (made on first use)."""
    return key_service.platform_signer(session, rt, _CONSENT_PLATFORM_KEY)


def consent_key_versions(session: Session, rt: Runtime) -> list[KeyVersion]:
    """Every version of the key that signs artefacts and webhooks (made on first use)."""
    return key_service.platform_key_versions(session, rt, _CONSENT_PLATFORM_KEY)


def _ts(value: datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_artefact(session: Session, rt: Runtime, row: ConsentRow, now: datetime) -> str:
    """The signed artefact of ``row`` as granted at ``now``."""
    # The AA ConsentDetail shape, with credential scopes in place of FI types.
    payload = {
        "ver": "1.0",
        "iss": rt.settings.public_url,
        "iat": int(now.timestamp()),
        "consentId": row.id,
        "ConsentDetail": {
            "consentStart": _ts(row.starts_at),
            "consentExpiry": _ts(row.expires_at),
            "consentMode": row.mode,
            "fetchType": row.fetch_type,
            "consentTypes": ["CREDENTIAL"],
            "DataConsumer": {"id": row.lender_client_id, "type": "LENDER"},
            "Customer": {"id": row.principal},
            "Purpose": {
                "code": row.purpose_code,
                "text": PURPOSES[row.purpose_code],
                "Category": {"type": row.template},
            },
            "DataLife": {"unit": row.data_life_unit, "value": row.data_life_value},
            "Frequency": {"unit": row.frequency_unit, "value": row.frequency_value},
            "scopes": json.loads(row.scopes),
        },
        "approval": row.approval,
        "facilitator": row.facilitator,
    }
    signer = consent_signer(session, rt)
    return sign_compact({"typ": ARTEFACT_TYP, "kid": signer.kid}, payload, signer)


_View = TypeVar("_View", bound=BaseModel)


def public_view(row: ConsentRow) -> ConsentView:
    """A consent as its lender and its borrower see it: terms, status, approval, uses and
    (once granted) the signed artefact."""
    return consent_answer(ConsentView, row)


def consent_answer(model: type[_View], row: ConsentRow, **more: object) -> _View:
    """``model`` — :class:`ConsentView`, a model that answers a consent with more members
    (``event_id``, ``receipt``, ``accepted``), or the export's ``ExportedConsent`` (the same
    members in its own order) — of ``row``, with ``more``; a member not
    given stays unset, so the routes (``response_model_exclude_unset``) leave it out."""
    return model(
        consent_id=row.id,
        status=row.status,
        template=row.template,
        lender=row.lender_client_id,
        purpose={"code": row.purpose_code, "text": PURPOSES.get(row.purpose_code, "")},
        mode=row.mode,
        fetch_type=row.fetch_type,
        frequency={"unit": row.frequency_unit, "value": row.frequency_value},
        data_life={"unit": row.data_life_unit, "value": row.data_life_value},
        consent_start=utc(row.starts_at).isoformat(),
        consent_expiry=utc(row.expires_at).isoformat(),
        scopes=json.loads(row.scopes),
        approval=row.approval,
        assisted=was_assisted(row.approval, row.facilitator),
        uses=row.uses,
        artefact=row.artefact,
        created_at=utc(row.created_at).isoformat(),
        updated_at=utc(row.updated_at).isoformat(),
        **more,
    )
