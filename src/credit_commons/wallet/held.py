"""What the wallet holds, as DCQL sees it (OpenID4VP 1.0 §6-§7), pure.

:func:`held_facts` describes a stored credential for :func:`credit_commons.formats.dcql.select`:
an SD-JWT VC by its fully disclosed claims (every Disclosure applied, decoys dropped — the
claims a presentation could show), a VC-JWT by its ``vc`` object (VCDM 1.1) or its payload
(VCDM 2.0).  :func:`disclosure_pointers` turns a DCQL claims path pointer into the RFC 9901
disclosure paths (JSON Pointers over the *issued* structure, array indexes counting decoys)
that ``issuer.present`` takes, so exactly the selected claims are disclosed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from credit_commons import zk
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, ValidationError
from credit_commons.formats.dcql import ClaimPath, ClaimsQuery, HeldFacts
from credit_commons.formats.jws import decode_json_object
from credit_commons.formats.sd_jwt_format import ELLIPSIS, SD, SD_ALG, Disclosure, SdJwt
from credit_commons.issuer import disclosure_paths
from credit_commons.wallet.store import StoredCredential

__all__ = [
    "SD_JWT_VC",
    "VC_JWT",
    "HolderBinding",
    "UnreadableCredential",
    "claim_text",
    "disclosure_pointers",
    "held_facts",
    "holder_binding",
    "is_opening",
    "pointer_text",
]

SD_JWT_VC: Final = "dc+sd-jwt"
VC_JWT: Final = "jwt_vc_json"


class UnreadableCredential(ValidationError):
    """A stored credential the wallet cannot read as an SD-JWT VC or a VC-JWT."""

    code = "wallet.credential_unreadable"
    title = "Credential cannot be read"


def _escape(segment: str | int) -> str:
    return "/" + str(segment).replace("~", "~0").replace("/", "~1")


def pointer_text(path: ClaimPath) -> str:
    """A DCQL claims path pointer for people: ``address.street_address``, ``degrees[*].type``,
    ``nationalities[1]``."""
    text = ""
    for part in path:
        if part is None:
            text += "[*]"
        elif isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def claim_text(claim: ClaimsQuery) -> str:
    """A Claims Query for people: its path, and the values it asks for (only those are
    disclosed, §6.3): ``nationalities[*] = "FR"``, ``age_over_18 = true``."""
    text = pointer_text(claim.path)
    if claim.values is None:
        return text
    return f"{text} = {' or '.join(json.dumps(v) for v in claim.values)}"


@dataclass(frozen=True, slots=True)
class _Disclosures:
    # An SD-JWT's Disclosures by digest, for walking its issued structure.
    by_digest: Mapping[str, Disclosure]

    @classmethod
    def of(cls, sd_jwt: SdJwt) -> _Disclosures:
        return cls({d.digest(sd_jwt.hash_alg): d for d in sd_jwt.disclosures})

    def named(self, node: JsonObject, name: str) -> Disclosure | None:
        # RFC 9901 §7.1 step 3: the object property Disclosure of ``name`` listed in _sd.
        listed = node.get(SD)
        for digest in listed if isinstance(listed, list) else []:
            found = self.by_digest.get(digest) if isinstance(digest, str) else None
            if found is not None and found.name == name:
                return found
        return None

    def element(self, item: Any) -> tuple[bool, Any]:
        # An array element: (visible, its value).  A {"...": digest} element is its
        # Disclosure's value, or a decoy (invisible) when no Disclosure has that digest.
        if isinstance(item, dict) and set(item) == {ELLIPSIS}:
            found = self.by_digest.get(item[ELLIPSIS])
            if found is None or found.name is not None:
                return False, None
            return True, found.value
        return True, item

    def process(self, node: Any) -> Any:
        # The claims as a verifier holding every Disclosure would see them (§7.1 step 3-4).
        if isinstance(node, dict):
            out = {k: self.process(v) for k, v in node.items() if k not in (SD, SD_ALG)}
            listed = node.get(SD)
            for digest in listed if isinstance(listed, list) else []:
                found = self.by_digest.get(digest) if isinstance(digest, str) else None
                if found is not None and found.name is not None:
                    out[found.name] = self.process(found.value)
            return out
        if isinstance(node, list):
            elements = (self.element(item) for item in node)
            return [self.process(value) for visible, value in elements if visible]
        return node


def _sd_jwt_facts(stored: StoredCredential, sd_jwt: SdJwt) -> HeldFacts:
    claims = _Disclosures.of(sd_jwt).process(sd_jwt.payload)
    vct, issuer = claims.get("vct"), claims.get("iss")
    return HeldFacts(
        ref=stored.id,
        format=SD_JWT_VC,
        issuer=issuer if isinstance(issuer, str) else stored.issuer,
        claims=claims,
        vct=vct if isinstance(vct, str) else None,
        holder_binding=isinstance(claims.get("cnf"), dict),
    )


def _vc_jwt(stored: StoredCredential) -> tuple[JsonObject, JsonObject]:
    # A VC-JWT's payload and its credential: VCDM 1.1 as a JWT keeps the credential in
    # "vc"; VCDM 2.0 (vc+jwt) is the payload.
    parts = stored.credential.split(".")
    if len(parts) != 3:
        raise UnreadableCredential(f"{stored.id} is neither an SD-JWT nor a JWT")
    payload = decode_json_object(parts[1], "payload")
    inner = payload.get("vc")
    return payload, inner if isinstance(inner, dict) else payload


def _subject_did(payload: JsonObject, vc: JsonObject) -> str | None:
    # The DID the credential is about, whose key proves holder binding: ``sub``, else the
    # credentialSubject's ``id`` (VCDM 1.1 §6.3.1 maps one onto the other).
    subject = vc.get("credentialSubject")
    holder = payload.get("sub") or (subject.get("id") if isinstance(subject, dict) else None)
    return holder if isinstance(holder, str) and holder.startswith("did:") else None


def _vc_jwt_facts(stored: StoredCredential) -> HeldFacts:
    payload, vc = _vc_jwt(stored)
    types = vc.get("type")
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise UnreadableCredential(f"{stored.id} is a JWT but not a verifiable credential")
    issuer = payload.get("iss") or vc.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    return HeldFacts(
        ref=stored.id,
        format=VC_JWT,
        issuer=issuer if isinstance(issuer, str) else stored.issuer,
        claims=vc,
        types=tuple(types),
        holder_binding=_subject_did(payload, vc) is not None,
    )


def held_facts(stored: StoredCredential) -> HeldFacts:
    """The DCQL facts of a stored credential.  Raises :class:`UnreadableCredential`."""
    try:
        if "~" in stored.credential:
            return _sd_jwt_facts(stored, SdJwt.parse(stored.credential))
        return _vc_jwt_facts(stored)
    except UnreadableCredential:
        raise
    except (CommonsError, ValueError) as e:
        raise UnreadableCredential(f"{stored.id} cannot be read") from e


def _value_matches(value: object, expected: Sequence[object]) -> bool:
    # §6.3: "the type and value of the claim both match exactly" (True is not 1).
    return any(type(value) is type(v) and value == v for v in expected)


@dataclass(frozen=True, slots=True)
class HolderBinding:
    """What binds a credential to a holder key: an SD-JWT VC's ``cnf.jwk`` (RFC 7800
    §3.2), or the DID a VC-JWT is about (its ``sub``, else ``credentialSubject.id``)."""

    jwk: JsonObject | None = None
    did: str | None = None


def holder_binding(stored: StoredCredential) -> HolderBinding | None:
    """How ``stored`` is bound to its holder, or None for a credential without Cryptographic
    Holder Binding (an SD-JWT VC without ``cnf.jwk``, a VC-JWT about no DID).  Raises
    :class:`UnreadableCredential`."""
    try:
        if "~" in stored.credential:
            cnf = SdJwt.parse(stored.credential).payload.get("cnf")
            jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
            return HolderBinding(jwk=jwk) if isinstance(jwk, dict) else None
        did = _subject_did(*_vc_jwt(stored))
    except UnreadableCredential:
        raise
    except (CommonsError, ValueError) as e:
        raise UnreadableCredential(f"{stored.id} cannot be read") from e
    return HolderBinding(did=did) if did is not None else None


def disclosure_pointers(sd_jwt: SdJwt, claims: Sequence[ClaimsQuery]) -> set[str]:
    """The disclosure paths that disclose exactly the claims ``claims`` select (§7.1), each
    with everything below it (a claims path pointer selects a claim "with its sub-claims";
    ``issuer.present`` brings the Disclosures on the way to each).  A claim with ``values``
    selects only the elements whose value matches one of them (§6.3: "the Wallet SHOULD
    return the claim only if the type and value of the claim both match exactly"), so a
    ``null`` path component does not disclose the array's other elements.  A path that
    selects nothing contributes nothing."""
    disclosures = _Disclosures.of(sd_jwt)
    pointers: set[str] = set()
    for claim in claims:
        selected: list[tuple[Any, str]] = [(sd_jwt.payload, "")]
        for component in claim.path:
            step: list[tuple[Any, str]] = []
            for node, prefix in selected:
                if isinstance(component, str) and isinstance(node, dict):
                    if component in node and component not in (SD, SD_ALG, ELLIPSIS):
                        step.append((node[component], prefix + _escape(component)))
                    elif (found := disclosures.named(node, component)) is not None:
                        step.append((found.value, prefix + _escape(component)))
                elif not isinstance(component, str) and isinstance(node, list):
                    # Issued indexes, counting decoys; the DCQL index counts visible elements.
                    visible = [
                        (i, value)
                        for i, (shown, value) in enumerate(map(disclosures.element, node))
                        if shown
                    ]
                    if component is None:
                        step.extend((value, prefix + _escape(i)) for i, value in visible)
                    elif component < len(visible):
                        i, value = visible[component]
                        step.append((value, prefix + _escape(i)))
            selected = step
        if claim.values is not None:
            selected = [(v, prefix) for v, prefix in selected if _value_matches(v, claim.values)]
        pointers.update(prefix for _, prefix in selected if prefix)
    below = [p for p in disclosure_paths(sd_jwt) if any(p.startswith(q + "/") for q in pointers)]
    return pointers | set(below)


def is_opening(pointer: str) -> bool:
    """Whether a disclosure path (``/zk_openings/score``) reveals a commitment's salt.

    The wallet never discloses one (issue 18 §3): with the salt and the commitment anyone
    finds a score or an income bracket by trying its few hundred possible values, so a
    presentation that shows an opening shows the value it was meant to hide.  A holder
    proves a predicate instead (``wallet/zk_proofs.py``)."""
    return pointer == f"/{zk.OPENINGS_CLAIM}" or pointer.startswith(f"/{zk.OPENINGS_CLAIM}/")
