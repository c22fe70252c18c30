"""The Digital Credentials Query Language (DCQL, OpenID4VP 1.0 §6) and its claims path
pointers (§7): parsing, and matching a query against credentials, pure.

A query exists only if it obeys every rule §6 states; :func:`parse_dcql` is the one way
in, and raises :class:`DcqlInvalid` naming the member at fault.  Unknown members are ignored
(§6: "Implementations MUST ignore any unknown properties").

Matching is the same code for both sides:

* the wallet calls :func:`select` with what it holds (:class:`HeldFacts`) and learns, per
  Credential Query, which credentials match and which claim paths to disclose (§6.4.1:
  ``claim_sets`` in the Verifier's order of preference), and which ``credential_sets``
  options it can meet (§6.4.2) — or :class:`DcqlUnsatisfiable` when a required one cannot;
* the verifier calls :func:`check_presented` with the facts of what was presented, keyed by
  Credential Query id (§8.6 steps 2.2 and 3), which raises :class:`DcqlPresentationMismatch`.

``trusted_authorities`` (§6.1.1): ``aki``, ``etsi_tl`` and ``openid_federation`` are the
spec's types; this platform adds ``did`` (values are issuer DIDs: a DID issuer has no X.509
chain, federation entity or trusted list, so the spec's three types cannot name it).  A type
this module cannot evaluate (``etsi_tl``, ``openid_federation``, and any unknown type) parses
but matches no credential: the spec defines matching only for the types it lists, and a
credential that cannot be shown to match is treated as not matching (the data-minimisation
reading of §6.1: "Every Credential returned by the Wallet SHOULD match at least one of the
conditions").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ValidationError

__all__ = [
    "FORMATS",
    "TRUSTED_AUTHORITY_TYPES",
    "ClaimPath",
    "ClaimsQuery",
    "CredentialMatch",
    "CredentialQuery",
    "CredentialQueryMeta",
    "CredentialSetQuery",
    "CredentialSetSelection",
    "DcqlInvalid",
    "DcqlPresentationMismatch",
    "DcqlQuery",
    "DcqlUnsatisfiable",
    "HeldFacts",
    "Selection",
    "TrustedAuthoritiesQuery",
    "check_presented",
    "match_credential",
    "parse_dcql",
    "resolve_path",
    "select",
]

#: The Credential Format Identifiers this platform understands (OpenID4VP 1.0 Appendix B).
FORMATS: Final = ("dc+sd-jwt", "jwt_vc_json", "ldp_vc", "mso_mdoc")
Format = Literal["dc+sd-jwt", "jwt_vc_json", "ldp_vc", "mso_mdoc"]

#: The trusted-authority types this module evaluates: ``aki`` (§6.1.1.1) and our ``did``.
#: ``etsi_tl`` and ``openid_federation`` are the spec's too, but need a trusted list or a
#: federation to evaluate; they parse and match nothing.
TRUSTED_AUTHORITY_TYPES: Final = frozenset({"aki", "did", "etsi_tl", "openid_federation"})


class DcqlInvalid(ValidationError):
    """A DCQL query that breaks a rule of OpenID4VP 1.0 §6 (the message names the member)."""

    code = "dcql.invalid"
    title = "Invalid DCQL query"


class DcqlUnsatisfiable(ValidationError):
    """The wallet holds no combination of credentials that meets the query's required
    Credential Queries or Credential Set Queries (§6.4.2)."""

    code = "dcql.unsatisfiable"
    title = "The query cannot be satisfied"


class DcqlPresentationMismatch(ValidationError):
    """What was presented does not answer the query (§8.6): an unknown query id, a credential
    that does not match its query, too many presentations, or a required set not met."""

    code = "dcql.presentation_mismatch"
    title = "The presentation does not answer the query"


# §6.1 and §6.3: "a non-empty string consisting of alphanumeric, underscore (_), or hyphen
# (-) characters".
Identifier = Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")]
NonEmptyStr = Annotated[StrictStr, StringConstraints(min_length=1)]
# §7: "a non-empty array of strings, nulls and non-negative integers".
PathElement = StrictStr | Annotated[StrictInt, Field(ge=0)] | None
ClaimPath = tuple[PathElement, ...]
ClaimValue = StrictStr | StrictInt | StrictBool

_FROZEN = ConfigDict(frozen=True, extra="ignore")


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        # pydantic names the branch of a union it tried ("str", "constrained-int", ...);
        # those are not members of the query.
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
    return text or "the query"


# pydantic reports a failed union by its branches; these say what the spec allows instead.
_UNION_MESSAGES: Final = {
    "path": "a path element is a string, a non-negative integer or null (§7)",
    "values": "a value is a string, an integer or a boolean (§6.3)",
}


def _invalid(error: PydanticValidationError) -> DcqlInvalid:
    first = error.errors(include_url=False, include_input=False)[0]
    loc = tuple(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    for member, union_message in _UNION_MESSAGES.items():
        if member in loc and len(loc) > loc.index(member) + 2:  # member, index, branch
            loc, message = loc[: loc.index(member) + 2], union_message
    return DcqlInvalid(f"{_location(loc)}: {message}")


class TrustedAuthoritiesQuery(BaseModel):
    """One ``trusted_authorities`` entry (§6.1.1): a ``type`` and non-empty ``values``."""

    model_config = _FROZEN

    type: NonEmptyStr
    values: Annotated[tuple[NonEmptyStr, ...], Field(min_length=1)]

    def matches(self, held: HeldFacts) -> bool:
        """Whether ``held`` is certified by one of the values (False for a type this module
        cannot evaluate)."""
        if self.type == "aki":  # §6.1.1.1: the AKI of a certificate in the issuer's chain
            return held.issuer_aki is not None and held.issuer_aki in self.values
        if self.type == "did":  # our extension: the issuer is one of these DIDs
            return held.issuer.startswith("did:") and held.issuer in self.values
        return False


class ClaimsQuery(BaseModel):
    """One ``claims`` entry (§6.3): an optional ``id``, a claims path pointer and optional
    expected ``values``."""

    model_config = _FROZEN

    id: Identifier | None = None
    path: Annotated[ClaimPath, Field(min_length=1)]
    values: Annotated[tuple[ClaimValue, ...], Field(min_length=1)] | None = None


class CredentialQueryMeta(BaseModel):
    """The ``meta`` members this platform reads (Appendix B.1.1, B.2.3, B.3.5); the format
    decides which one is required (checked by :class:`CredentialQuery`)."""

    model_config = _FROZEN

    vct_values: Annotated[tuple[NonEmptyStr, ...], Field(min_length=1)] | None = None
    type_values: (
        Annotated[
            tuple[Annotated[tuple[NonEmptyStr, ...], Field(min_length=1)], ...],
            Field(min_length=1),
        ]
        | None
    ) = None
    doctype_value: NonEmptyStr | None = None


_META_REQUIRED: Final[Mapping[str, str]] = {
    "dc+sd-jwt": "vct_values",  # B.3.5
    "jwt_vc_json": "type_values",  # B.1.1
    "ldp_vc": "type_values",  # B.1.1
    "mso_mdoc": "doctype_value",  # B.2.3
}


class CredentialQuery(BaseModel):
    """One Credential Query (§6.1)."""

    model_config = _FROZEN

    id: Identifier
    format: Format
    multiple: StrictBool = False
    meta: CredentialQueryMeta
    trusted_authorities: (
        Annotated[tuple[TrustedAuthoritiesQuery, ...], Field(min_length=1)] | None
    ) = None
    require_cryptographic_holder_binding: StrictBool = True
    claims: Annotated[tuple[ClaimsQuery, ...], Field(min_length=1)] | None = None
    claim_sets: (
        Annotated[
            tuple[Annotated[tuple[Identifier, ...], Field(min_length=1)], ...],
            Field(min_length=1),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _rules(self) -> CredentialQuery:
        required = _META_REQUIRED[self.format]
        if getattr(self.meta, required) is None:
            raise ValueError(f"meta.{required} is required for format {self.format}")
        if self.format == "mso_mdoc":  # §7.2: a namespace and a data element identifier
            for i, claim in enumerate(self.claims or ()):
                if len(claim.path) != 2 or not all(isinstance(p, str) for p in claim.path):
                    raise ValueError(f"claims[{i}].path must be two strings for mso_mdoc")
        ids = [c.id for c in self.claims or () if c.id is not None]
        if len(ids) != len(set(ids)):  # §6.3: "the same id MUST NOT be present more than once"
            raise ValueError("claims ids must be unique")
        if self.claim_sets is not None:
            # §6.4.1: "claim_sets MUST NOT be present if claims is absent"; §6.3: id is
            # "REQUIRED if claim_sets is present".
            if self.claims is None:
                raise ValueError("claim_sets must not be present without claims")
            if len(ids) != len(self.claims):
                raise ValueError("every claim needs an id when claim_sets is present")
            for i, option in enumerate(self.claim_sets):
                unknown = sorted(set(option) - set(ids))
                if unknown:
                    raise ValueError(f"claim_sets[{i}] names unknown claim ids {unknown}")
        return self

    def claim_by_id(self, claim_id: str) -> ClaimsQuery:
        """The claim with this ``id``; raises ``KeyError``."""
        for claim in self.claims or ():
            if claim.id == claim_id:
                return claim
        raise KeyError(claim_id)

    def claim_options(self) -> tuple[tuple[ClaimsQuery, ...], ...]:
        """The combinations of claims this query accepts, most preferred first (§6.4.1):
        one empty option without ``claims``, all claims without ``claim_sets``."""
        if self.claims is None:
            return ((),)
        if self.claim_sets is None:
            return (self.claims,)
        return tuple(tuple(self.claim_by_id(i) for i in option) for option in self.claim_sets)


class CredentialSetQuery(BaseModel):
    """One Credential Set Query (§6.2): alternative ``options`` of Credential Query ids."""

    model_config = _FROZEN

    options: Annotated[
        tuple[Annotated[tuple[Identifier, ...], Field(min_length=1)], ...], Field(min_length=1)
    ]
    required: StrictBool = True


class DcqlQuery(BaseModel):
    """A DCQL query (§6): non-empty ``credentials`` and optional ``credential_sets``.

    Built only through :func:`parse_dcql` (or ``model_validate``), which raise
    :class:`DcqlInvalid`.
    """

    model_config = _FROZEN

    credentials: Annotated[tuple[CredentialQuery, ...], Field(min_length=1)]
    credential_sets: Annotated[tuple[CredentialSetQuery, ...], Field(min_length=1)] | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _validate(cls, data: Any, handler: ModelWrapValidatorHandler[DcqlQuery]) -> DcqlQuery:
        if not isinstance(data, dict | DcqlQuery):
            raise DcqlInvalid("a DCQL query is a JSON object")
        try:
            query = handler(data)
        except PydanticValidationError as e:
            raise _invalid(e) from None
        ids = [c.id for c in query.credentials]
        if len(ids) != len(set(ids)):  # §6.1: "the same id MUST NOT be present more than once"
            raise DcqlInvalid("credentials: ids must be unique")
        for i, credential_set in enumerate(query.credential_sets or ()):
            for j, option in enumerate(credential_set.options):
                unknown = sorted(set(option) - set(ids))
                if unknown:  # §6.2: options "reference elements in credentials"
                    raise DcqlInvalid(
                        f"credential_sets[{i}].options[{j}] names unknown credential ids {unknown}"
                    )
        return query

    def credential(self, query_id: str) -> CredentialQuery:
        """The Credential Query with this ``id``; raises ``KeyError``."""
        for credential in self.credentials:
            if credential.id == query_id:
                return credential
        raise KeyError(query_id)

    def to_json(self) -> JsonObject:
        """The query as JSON, defaults omitted (what a verifier puts in a request)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def parse_dcql(obj: object) -> DcqlQuery:
    """Parse a DCQL query (a decoded JSON object).  Raises :class:`DcqlInvalid`."""
    return DcqlQuery.model_validate(obj)


# --- Claims path pointers (§7) ---------------------------------------------------------


_MISSING: Final = object()


def resolve_path(claims: object, path: Sequence[object]) -> list[Any] | None:
    """The elements a claims path pointer selects in a JSON credential (§7.1.1), or None
    where §7.1.1 says "abort processing and return an error" (a step into the wrong type, or
    nothing selected)."""
    selected: list[Any] = [claims]
    for component in path:
        if isinstance(component, bool):  # a JSON boolean is not an index
            return None
        if isinstance(component, str):  # step 2.1
            if not all(isinstance(e, dict) for e in selected):
                return None
            selected = [e[component] for e in selected if component in e]
        elif component is None:  # step 2.2
            if not all(isinstance(e, list) for e in selected):
                return None
            selected = [item for e in selected for item in e]
        elif isinstance(component, int) and component >= 0:  # step 2.3
            if not all(isinstance(e, list) for e in selected):
                return None
            selected = [e[component] for e in selected if component < len(e)]
        else:  # step 2.4
            return None
    return selected or None  # step 3


def _same_value(a: object, b: object) -> bool:
    # §6.3: "the type and value of the claim both match exactly" (True is not 1).
    return type(a) is type(b) and a == b


def _claim_present(claims: JsonObject, claim: ClaimsQuery) -> bool:
    found = resolve_path(claims, claim.path)
    if found is None:
        return False
    if claim.values is None:
        return True
    # §6.4.1: a claim whose value does not match is "treated the same as if it did not
    # exist in the Credential".
    return any(_same_value(e, v) for e in found for v in claim.values)


# --- Matching --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldFacts:
    """What matching needs to know of one credential, held or presented.

    ``claims`` is the object claims paths point into: for SD-JWT VC the fully disclosed
    payload (held) or the disclosed one (presented); for ``jwt_vc_json`` the ``vc`` object
    (VCDM 1.1) or the payload (VCDM 2.0); for ``ldp_vc`` the credential.  ``types`` are the
    VC ``type`` values; ``issuer_aki`` the base64url Authority Key Identifier of the issuer's
    certificate chain, where there is one; ``holder_binding`` whether the credential can be
    (held) or was (presented) presented with a cryptographic holder-binding proof.  ``ref``
    is the caller's handle on the credential (the wallet's id), not interpreted here.
    """

    ref: str
    format: str
    issuer: str
    claims: JsonObject = field(repr=False)
    vct: str | None = None
    types: tuple[str, ...] = ()
    doctype: str | None = None
    issuer_aki: str | None = None
    holder_binding: bool = True


def _meta_matches(query: CredentialQuery, held: HeldFacts) -> bool:
    meta = query.meta
    if meta.vct_values is not None and held.vct not in meta.vct_values:
        return False
    if meta.type_values is not None and not any(
        set(option) <= set(held.types) for option in meta.type_values
    ):
        return False
    return meta.doctype_value is None or held.doctype == meta.doctype_value


def _credential_matches(query: CredentialQuery, held: HeldFacts) -> bool:
    """Format, ``meta``, ``trusted_authorities`` and holder binding (the claims apart)."""
    if held.format != query.format or not _meta_matches(query, held):
        return False
    if query.trusted_authorities is not None and not any(
        authority.matches(held) for authority in query.trusted_authorities
    ):
        return False
    return held.holder_binding or not query.require_cryptographic_holder_binding


@dataclass(frozen=True, slots=True)
class CredentialMatch:
    """A credential that matches a Credential Query, with the claim paths to disclose: the
    first option of ``claim_sets`` it satisfies (§6.4.1), all ``claims`` without
    ``claim_sets``, none without ``claims``.  ``claims`` are those Claims Queries, with
    their ``values``: a wallet discloses only the elements whose value matches (§6.3)."""

    held: HeldFacts
    paths: tuple[ClaimPath, ...]
    claims: tuple[ClaimsQuery, ...] = ()


def match_credential(query: CredentialQuery, held: HeldFacts) -> CredentialMatch | None:
    """``held`` as an answer to ``query`` (§6.4.1), or None when it is not one."""
    if not _credential_matches(query, held):
        return None
    for option in query.claim_options():
        if all(_claim_present(held.claims, claim) for claim in option):
            return CredentialMatch(held, tuple(claim.path for claim in option), option)
    # §6.4.1: "If the Wallet cannot deliver all claims ... it MUST NOT return the respective
    # Credential."
    return None


@dataclass(frozen=True, slots=True)
class CredentialSetSelection:
    """A Credential Set Query and its options that the held credentials can meet, in the
    query's order."""

    required: bool
    satisfiable: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Selection:
    """The outcome of :func:`select`: per Credential Query id the matching credentials (in
    the order given), and per Credential Set Query the options that can be met."""

    query: DcqlQuery
    matches: Mapping[str, tuple[CredentialMatch, ...]]
    sets: tuple[CredentialSetSelection, ...]

    def plan(self) -> dict[str, tuple[CredentialMatch, ...]]:
        """The default answer: the first satisfiable option of every set (optional sets
        included when they can be met), and per query id its first match — or all of them
        when the query allows ``multiple``.  Without ``credential_sets``, every query."""
        if self.query.credential_sets is None:
            chosen = [c.id for c in self.query.credentials]
        else:
            chosen = []
            for credential_set in self.sets:
                if credential_set.satisfiable:
                    chosen.extend(credential_set.satisfiable[0])
        plan: dict[str, tuple[CredentialMatch, ...]] = {}
        for query_id in dict.fromkeys(chosen):
            found = self.matches[query_id]
            plan[query_id] = found if self.query.credential(query_id).multiple else found[:1]
        return plan


def select(query: DcqlQuery, held: Sequence[HeldFacts]) -> Selection:
    """Match ``query`` against the held credentials (§6.4).

    Raises :class:`DcqlUnsatisfiable` when a Credential Query is unmatched and there are no
    ``credential_sets``, or when a required Credential Set Query has no option whose every
    query is matched (§6.4.2: "it MUST NOT return any Credential(s)").
    """
    matches: dict[str, tuple[CredentialMatch, ...]] = {}
    for credential_query in query.credentials:
        found = (match_credential(credential_query, h) for h in held)
        matches[credential_query.id] = tuple(m for m in found if m is not None)
    if query.credential_sets is None:
        missing = [i for i, m in matches.items() if not m]
        if missing:
            raise DcqlUnsatisfiable(f"no held credential matches {missing}")
        return Selection(query, matches, ())
    sets: list[CredentialSetSelection] = []
    for i, credential_set in enumerate(query.credential_sets):
        satisfiable = tuple(o for o in credential_set.options if all(matches[q] for q in o))
        if credential_set.required and not satisfiable:
            raise DcqlUnsatisfiable(f"no option of credential_sets[{i}] can be met")
        sets.append(CredentialSetSelection(credential_set.required, satisfiable))
    return Selection(query, matches, tuple(sets))


def check_presented(query: DcqlQuery, presented: Mapping[str, Sequence[HeldFacts]]) -> None:
    """Check that what was presented answers ``query`` (§8.1, §8.6 steps 2.2 and 3):

    1. every key is a Credential Query id of the query, with a non-empty list, of one
       presentation unless the query allows ``multiple``;
    2. every presented credential matches its query: format, ``meta``,
       ``trusted_authorities``, holder binding, and the claims of one ``claim_sets`` option
       (values included);
    3. without ``credential_sets`` every query is answered; with them, every required set has
       an option whose every query is answered.

    Raises :class:`DcqlPresentationMismatch` with the reason.
    """
    known = {c.id: c for c in query.credentials}
    for query_id, credentials in presented.items():  # 1.
        credential_query = known.get(query_id)
        if credential_query is None:
            raise DcqlPresentationMismatch(f"{query_id!r} is not a Credential Query id")
        if not credentials:
            raise DcqlPresentationMismatch(f"{query_id!r}: an empty list of presentations")
        if len(credentials) > 1 and not credential_query.multiple:
            raise DcqlPresentationMismatch(f"{query_id!r}: one presentation allowed")
        for held in credentials:  # 2.
            if match_credential(credential_query, held) is None:
                raise DcqlPresentationMismatch(f"{query_id!r}: a credential does not match")
    answered = set(presented)  # 3.
    if query.credential_sets is None:
        missing = sorted(set(known) - answered)
        if missing:
            raise DcqlPresentationMismatch(f"no presentation for {missing}")
        return
    for i, credential_set in enumerate(query.credential_sets):
        if credential_set.required and not any(set(o) <= answered for o in credential_set.options):
            raise DcqlPresentationMismatch(f"credential_sets[{i}] is required and not met")
