"""What the lender client returns: small frozen values built from the platform's JSON (the
JSON itself is kept as ``raw`` for anything not modelled)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from credit_commons.core.encoding import JsonObject

__all__ = [
    "AccessToken",
    "Consent",
    "DiscoveryEntry",
    "Retrieval",
    "VerifiedRetrieval",
    "WebhookNotice",
]


@dataclass(frozen=True)
class AccessToken:
    """An RFC 9068 access token and when it expires (Unix seconds, by the client's clock)."""

    access_token: str
    expires_at: float
    scope: str

    def __repr__(self) -> str:  # never print the bearer token
        return f"AccessToken(scope={self.scope!r}, expires_at={self.expires_at})"


@dataclass(frozen=True)
class DiscoveryEntry:
    """An opted-in borrower's public attributes and a reference only this lender can use."""

    borrower_ref: str
    credit_tier: str
    income_bracket: str
    debt_ratio_bracket: str

    @classmethod
    def from_json(cls, data: JsonObject) -> DiscoveryEntry:
        """Build from the platform's JSON."""
        return cls(
            str(data["borrower_ref"]),
            str(data["credit_tier"]),
            str(data["income_bracket"]),
            str(data["debt_ratio_bracket"]),
        )


@dataclass(frozen=True)
class Consent:
    """A consent as the platform shows it to the lender that asked for it."""

    consent_id: str
    status: str
    purpose: str
    consent_expiry: str
    scopes: list[JsonObject]
    artefact: str | None
    raw: JsonObject = field(repr=False)

    @classmethod
    def from_json(cls, data: JsonObject) -> Consent:
        """Build from the platform's JSON."""
        return cls(
            consent_id=str(data["consent_id"]),
            status=str(data["status"]),
            purpose=str(data["purpose"]["code"]),
            consent_expiry=str(data["consent_expiry"]),
            scopes=list(data["scopes"]),
            artefact=data.get("artefact"),
            raw=data,
        )


@dataclass(frozen=True)
class WebhookNotice:
    """A verified webhook notice: which consent changed, to what, by which log event."""

    consent_id: str
    status: str
    event_id: str
    issued_at: int

    def as_json(self) -> JsonObject:
        """This notice as JSON (its fields)."""
        return asdict(self)


@dataclass(frozen=True)
class Retrieval:
    """A credential retrieved under a consent: the SD-JWT (only the granted Disclosures),
    the claim paths disclosed, the consent's mode and the id of the ``access.allowed``
    event the retrieval recorded."""

    consent_id: str
    type: str
    credential: str
    disclosed: tuple[str, ...]
    mode: str
    access_event_id: str
    raw: JsonObject = field(repr=False)

    @classmethod
    def from_json(cls, data: JsonObject) -> Retrieval:
        """Build from the platform's JSON (or a retrieval saved by ``commons lender
        retrieve``).  Raises ``KeyError``/``TypeError`` for anything else."""
        return cls(
            consent_id=str(data["consent_id"]),
            type=str(data["type"]),
            credential=str(data["credential"]),
            disclosed=tuple(str(p) for p in data["disclosed"]),
            mode=str(data["mode"]),
            access_event_id=str(data["access_event_id"]),
            raw=data,
        )


@dataclass(frozen=True)
class VerifiedRetrieval:
    """Everything checked about a retrieval: the credential (issuer, type, claims, status)
    and the receipt of the access (its leaf in a checkpoint signed by the pinned log key)."""

    consent_id: str
    issuer: str
    vct: str
    claims: JsonObject
    status: str
    access_event_id: str
    log_origin: str
    log_size: int
    leaf_index: int
    witnesses: tuple[str, ...]

    def as_json(self) -> JsonObject:
        """This result as JSON (``valid`` and its fields)."""
        data = asdict(self)
        data["witnesses"] = list(self.witnesses)
        return {"valid": True, **data}
