"""What this verifier can be asked (docs/verifier.md, "What a request may ask"), pure: the
Credential Formats it verifies, the ``vp_formats_supported`` its requests announce
(OpenID4VP 1.0 §5.1, §11.1, Appendix B), and the refusal, when a request is made, of a DCQL
query that no response could ever satisfy here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ValidationError
from credit_commons.formats.dcql import DcqlQuery
from credit_commons.keys import ACCEPTED_ALGS
from credit_commons.verifier.reasons import Reason, VerificationDenied

__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_PER_QUERY",
    "SD_JWT_FORMAT",
    "W3C_JWT_FORMAT",
    "Discarded",
    "check_supported",
    "shape",
    "vp_formats_supported",
]

#: The Credential Format Identifiers a presentation may have here (docs/verifier.md).
SD_JWT_FORMAT: Final = "dc+sd-jwt"
#: W3C credentials in a VP-JWT (OpenID4VP 1.0 Appendix B.1): a VCDM 1.1 ``jwt_vc_json``,
#: or a VCDM 2.0 ``vc+jwt`` — OpenID4VP 1.0 names no format for the latter, and this
#: verifier takes it under this identifier too (docs/verifier.md, "W3C credentials").
W3C_JWT_FORMAT: Final = "jwt_vc_json"
ACCEPTED_FORMATS: Final = frozenset({SD_JWT_FORMAT, W3C_JWT_FORMAT})
#: The DCQL members this verifier reads (formats/dcql.py); any other is refused, rather
#: than dropped from the request without the verifier knowing.
_QUERY_MEMBERS: Final = frozenset({"credentials", "credential_sets"})
_CREDENTIAL_MEMBERS: Final = frozenset(
    {
        "id",
        "format",
        "multiple",
        "meta",
        "trusted_authorities",
        "require_cryptographic_holder_binding",
        "claims",
        "claim_sets",
    }
)
_META_MEMBERS: Final = frozenset({"vct_values", "type_values", "doctype_value"})
_CLAIM_MEMBERS: Final = frozenset({"id", "path", "values"})
_SET_MEMBERS: Final = frozenset({"options", "required"})


def _unmodelled(obj: object, allowed: frozenset[str], where: str) -> None:
    if isinstance(obj, dict):
        unknown = sorted(set(obj) - allowed)
        if unknown:
            raise ValidationError(
                f"dcql_query: {where} has members this verifier does not read: {unknown}"
            )


def check_supported(raw: JsonObject, query: DcqlQuery) -> None:
    """Refuse, when the request is made, a query no response could ever satisfy here: a
    format this verifier does not verify (``ldp_vc``, ``mso_mdoc``), a presentation without
    cryptographic holder binding (every presentation here is bound: a KB-JWT or a VP-JWT),
    a trusted authority this verifier cannot evaluate (only ``did``: no X.509 chain, trusted
    list or federation is evaluated here), and a member it does not read."""
    _unmodelled(raw, _QUERY_MEMBERS, "the query")
    for i, item in enumerate(raw.get("credentials") or ()):
        _unmodelled(item, _CREDENTIAL_MEMBERS, f"credentials[{i}]")
        if isinstance(item, dict):
            _unmodelled(item.get("meta"), _META_MEMBERS, f"credentials[{i}].meta")
            for j, claim in enumerate(item.get("claims") or ()):
                _unmodelled(claim, _CLAIM_MEMBERS, f"credentials[{i}].claims[{j}]")
    for i, item in enumerate(raw.get("credential_sets") or ()):
        _unmodelled(item, _SET_MEMBERS, f"credential_sets[{i}]")
    for credential in query.credentials:
        where = f"dcql_query: credential {credential.id!r}"
        if credential.format not in ACCEPTED_FORMATS:
            raise ValidationError(
                f"{where}: format {credential.format} is not accepted here "
                f"(accepted: {sorted(ACCEPTED_FORMATS)})"
            )
        if not credential.require_cryptographic_holder_binding:
            raise ValidationError(f"{where}: this verifier accepts holder-bound presentations only")
        for authority in credential.trusted_authorities or ():
            if authority.type != "did":
                raise ValidationError(
                    f"{where}: trusted_authorities of type {authority.type} cannot be "
                    "evaluated here (only did)"
                )


def vp_formats_supported() -> JsonObject:
    """The ``vp_formats_supported`` of this verifier's requests (OpenID4VP 1.0 §11.1,
    Appendix B): per accepted Credential Format Identifier, the algorithms accepted."""
    algs = sorted(ACCEPTED_ALGS)
    return {
        SD_JWT_FORMAT: {"sd-jwt_alg_values": algs, "kb-jwt_alg_values": algs},
        W3C_JWT_FORMAT: {"alg_values": algs},  # B.1.3.1.4: the VC's and the VP's algorithms
    }


# -- the response's shape (OpenID4VP 1.0 §8.1, §8.6) --------------------------------------


@dataclass(frozen=True, slots=True)
class Discarded:
    """A presentation the pipeline discarded (OpenID4VP 1.0 §8.6): the query it answered
    and the reason it failed."""

    query_id: str
    reason: Reason


#: The most presentations a query with ``multiple`` may bring in one response.
MAX_PER_QUERY: Final = 16


def shape(
    query: DcqlQuery | None, vp_token: Mapping[str, Sequence[object]]
) -> list[tuple[str, str, str | Discarded]]:
    """The response's shape, before any signature or fetch (§8.1, §8.6): every key is a
    Credential Query id, with one presentation unless the query allows ``multiple`` (then
    at most :data:`MAX_PER_QUERY`).  Returns the presentations in order, each the text to
    verify or, when it cannot be one of its query's format (a JSON object, say), the
    :class:`Discarded` it already is, with its query's format.

    Raises :class:`VerificationDenied` (``dcql_unsatisfied``) for a response whose keys or
    counts do not fit the query: the whole response is refused.
    """
    out: list[tuple[str, str, str | Discarded]] = []
    for query_id, items in vp_token.items():
        try:
            asked = query.credential(query_id) if query is not None else None
        except KeyError:
            raise VerificationDenied(
                Reason.DCQL_UNSATISFIED, "a vp_token key is not a Credential Query id"
            ) from None
        limit = MAX_PER_QUERY if asked is None or asked.multiple else 1
        if not items or len(items) > limit:
            raise VerificationDenied(Reason.DCQL_UNSATISFIED, "too many presentations")
        format_ = asked.format if asked is not None else SD_JWT_FORMAT
        for item in items:
            if isinstance(item, str) and _fits(format_, item):
                out.append((query_id, format_, item))
            else:
                out.append((query_id, format_, Discarded(query_id, Reason.CREDENTIAL_INVALID)))
    return out


def _fits(format_: str, text: str) -> bool:
    # The serialization of the format, at a glance: SD-JWT's "~"-separated parts (RFC 9901
    # §4), or a compact JWS (three base64url parts) for a VP-JWT.
    if format_ == "dc+sd-jwt":
        return "~" in text and text.count(".") >= 2
    return text.count(".") == 2 and "~" not in text
