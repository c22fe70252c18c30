"""ZK statements: what a proof claims, in a signed JSON document (seed 002 §6), pure.

A statement is the contract between issuer, wallet and verifier for one predicate::

    {"id": "score_at_least", "version": 1, "proof_system": "groth16", "curve": "bls12-381",
     "artefacts": {"wasm": {"file": "score_at_least.wasm", "sha256": "…"},
                   "zkey": {"file": "score_at_least.zkey", "sha256": "…"},
                   "vkey": {"file": "score_at_least.vkey.json", "sha256": "…"}},
     "public_inputs": [{"name": "commitment", "source": "commitment"},
                       {"name": "threshold", "source": "param"},
                       {"name": "binding", "source": "binding"}],
     "required_bindings": ["nonce", "audience", "request_hash"],
     "params": {"threshold": {"min": 0, "max": 1000}},
     "credential": {"vct": "https://…/credit-readiness/v1", "claim": "/score_opening/score",
                    "encoding": "integer", "commitment": "score"},
     "setup_provenance": "dev"}

``public_inputs`` lists the circuit's public signals in their order, each with where the
verifier takes the value it must equal (:data:`INPUT_SOURCES`): the ``commitment`` the issuer
signed in the presented credential, the ``binding`` it recomputes from the request, a
``param`` of the verifier's request (its policy value: a proof for θ′ < θ is no proof for
θ), the ``verifier_day`` (today at the verifier, within ``max_drift_days``) or the
``set_root`` of the set a ``param`` names.  ``credential`` names the credential type
(``vct``), the committed claim (a JSON pointer into its claims), how the claim's value
becomes a number (:data:`ENCODINGS`) and the key of its commitment under the credential's
``zk_commitments`` claim.  ``setup_provenance`` is ``dev`` (a local one-contributor setup)
or ``ceremony_attested``; production refuses ``dev``.

The registry signs each statement as a compact JWS, ``typ: zk-statement+jwt``, whose payload
is ``{"iss", "iat", "statement": {…}}`` (:func:`sign_statement`, :func:`verify_statement`).
The artefacts' hashes are what binds the document to the keys: loading one re-hashes its files
(``zk/registry.py``).  JWS signing and verification are ``formats/jws.py`` over the keys
domain's Ed25519; nothing here is cryptography of its own beyond SHA-256 comparisons.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, IntegrityError, NotFoundError, ValidationError
from credit_commons.formats.jws import (
    JwsInvalid,
    JwsSigner,
    SignatureVerifier,
    parse_compact,
    sign_compact,
)
from credit_commons.keys import ACCEPTED_ALGS

__all__ = [
    "ARTEFACT_ROLES",
    "BINDINGS",
    "ENCODINGS",
    "INPUT_SOURCES",
    "PROVENANCES",
    "STATEMENT_TYP",
    "Artefact",
    "ArtefactMismatch",
    "CredentialBinding",
    "Param",
    "PublicInput",
    "SetupNotAllowed",
    "SignedStatement",
    "Statement",
    "StatementInvalid",
    "StatementNotFound",
    "StatementSignatureInvalid",
    "parse_statement",
    "sign_statement",
    "statement_kid",
    "verify_statement",
]

STATEMENT_TYP: Final = "zk-statement+jwt"
#: The circuit's artefacts a statement pins: the witness generator, the proving key and
#: the verification key.
ARTEFACT_ROLES: Final = ("wasm", "zkey", "vkey")
#: Where a verifier takes the value a public input must equal.
INPUT_SOURCES: Final = ("commitment", "binding", "param", "verifier_day", "set_root", "constant")
#: How a claim's value becomes the non-negative integer that is committed: an integer as
#: it is, the position of a string in the claim's ``enum``, an ISO date as its proleptic
#: Gregorian ordinal, a string identifier as the first 64 bits of its SHA-256
#: (``zk/registry_claims.py``).
ENCODINGS: Final = ("integer", "enum_index", "date_days", "string_id")
PROVENANCES: Final = ("dev", "ceremony_attested")
BINDINGS: Final = ("nonce", "audience", "request_hash")

_ID = r"^[a-z][a-z0-9_]{2,63}$"
_NAME = r"^[a-z][a-z0-9_]{0,31}$"
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})?")
_MAX_TOKEN_CHARS: Final = 64 * 1024


class StatementInvalid(ValidationError):
    """A statement document (or its signed token) that is not acceptable."""

    code = "zk.statement_invalid"
    title = "ZK statement not acceptable"


class StatementSignatureInvalid(IntegrityError):
    """A stored statement whose signature does not verify under the registry's key."""

    code = "zk.statement_signature_invalid"
    title = "ZK statement signature invalid"


class StatementNotFound(NotFoundError):
    """No statement of that id is in the registry."""

    code = "zk.statement_unknown"
    title = "No such ZK statement"


class ArtefactMismatch(IntegrityError):
    """An artefact's file is missing or its SHA-256 differs from the registry's."""

    code = "zk.artefact_mismatch"
    title = "ZK artefact does not match the registry"


class SetupNotAllowed(IntegrityError):
    """A statement whose setup provenance this platform refuses (``dev`` in production)."""

    code = "zk.setup_not_allowed"
    title = "ZK setup not allowed here"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Artefact(_Doc):
    """One artefact file (a path in the engine's artefact directory: a name, or a folder and
    a name) and its SHA-256."""

    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _plain_name(self) -> Artefact:
        if not _FILE.fullmatch(self.file) or ".." in self.file:
            raise ValueError("an artefact is a file name, in at most one folder")
        return self


class PublicInput(_Doc):
    """One public signal of the circuit, in order, and where the verifier takes its value;
    ``param`` names the request parameter of a ``param`` or ``set_root`` input;
    ``max_drift_days`` bounds a ``verifier_day``; ``value`` is a ``constant``'s."""

    name: str = Field(pattern=_NAME)
    source: Literal["commitment", "binding", "param", "verifier_day", "set_root", "constant"]
    param: str | None = Field(default=None, pattern=_NAME)
    max_drift_days: int | None = Field(default=None, ge=0, le=7)
    value: int | None = Field(default=None, ge=0, lt=2**64)

    @model_validator(mode="after")
    def _complete(self) -> PublicInput:
        if (self.source in ("param", "set_root")) != (self.param is not None):
            raise ValueError("a param or set_root input names its parameter, others none")
        if (self.source == "verifier_day") != (self.max_drift_days is not None):
            raise ValueError("a verifier_day input, and only it, bounds its drift")
        if (self.source == "constant") != (self.value is not None):
            raise ValueError("a constant input, and only it, has a value")
        return self


class Param(_Doc):
    """A request parameter: an integer in ``[min, max]`` or, with ``set_of``, a list of at
    most ``max_items`` values of that encoding (a ``set_root`` input's set)."""

    min: int = 0
    max: int = Field(default=2**32 - 1, ge=0)
    set_of: Literal["string_id"] | None = None
    max_items: int = Field(default=256, ge=1, le=256)


class CredentialBinding(_Doc):
    """The credential a statement reads: its ``vct``, the committed claim (a JSON pointer),
    the claim's encoding, and its commitment's key under ``zk_commitments``; ``enum`` gives
    an ``enum_index`` claim's values in order."""

    vct: str = Field(min_length=8, max_length=255)
    claim: str = Field(pattern=r"^(/[A-Za-z0-9_]{1,64}){1,4}$")
    encoding: Literal["integer", "enum_index", "date_days", "string_id"]
    commitment: str = Field(pattern=_NAME)
    enum: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _enum(self) -> CredentialBinding:
        if (self.encoding == "enum_index") != (self.enum is not None):
            raise ValueError("an enum_index claim, and only it, lists its enum")
        return self


class Statement(_Doc):
    """A ZK statement (see the module docstring).  An instance is valid: its inputs name
    exactly one commitment and one binding, its params exist, its bindings are the three."""

    id: str = Field(pattern=_ID)
    version: int = Field(ge=1)
    title: str = Field(default="", max_length=200)
    proof_system: Literal["groth16"]
    curve: Literal["bls12-381"]
    artefacts: dict[Literal["wasm", "zkey", "vkey"], Artefact]
    public_inputs: tuple[PublicInput, ...] = Field(min_length=2, max_length=16)
    required_bindings: tuple[Literal["nonce", "audience", "request_hash"], ...]
    params: dict[str, Param] = {}
    credential: CredentialBinding
    setup_provenance: Literal["dev", "ceremony_attested"]

    @model_validator(mode="after")
    def _coherent(self) -> Statement:
        if set(self.artefacts) != set(ARTEFACT_ROLES):
            raise ValueError("a statement pins its wasm, zkey and vkey")
        sources = [i.source for i in self.public_inputs]
        if sources.count("commitment") != 1 or sources.count("binding") != 1:
            raise ValueError("exactly one commitment and one binding input")
        names = [i.name for i in self.public_inputs]
        if len(set(names)) != len(names):
            raise ValueError("public input names are unique")
        if sorted(self.required_bindings) != sorted(BINDINGS):
            raise ValueError("a statement binds the nonce, the audience and the request hash")
        used = {i.param for i in self.public_inputs if i.param is not None}
        if used != set(self.params):
            raise ValueError("every param is a public input's, and only those")
        for i in self.public_inputs:
            param = self.params.get(i.param) if i.param else None
            if param is not None and (param.set_of is not None) != (i.source == "set_root"):
                raise ValueError("a set_root input's param, and only it, is a set")
        return self

    def document(self) -> JsonObject:
        """The statement as its JSON document (what is signed and served)."""
        return self.model_dump(mode="json", exclude_none=True)

    def input_index(self, source: str) -> int:
        """The position of the (one) public input of ``source`` (``commitment``,
        ``binding``).  Raises :class:`ValueError` when there is none."""
        return next(n for n, i in enumerate(self.public_inputs) if i.source == source)


def parse_statement(document: Any) -> Statement:
    """Parse a statement document.  Raises :class:`StatementInvalid`, naming the fields."""
    if not isinstance(document, Mapping):
        raise StatementInvalid("a statement is a JSON object")
    try:
        return Statement.model_validate(dict(document))
    except PydanticValidationError as e:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "/" for err in e.errors()})
        raise StatementInvalid(
            "the statement is not acceptable: " + ", ".join(fields), extra={"fields": fields}
        ) from e


@dataclass(frozen=True, slots=True)
class SignedStatement:
    """A statement with its registry signature's issuer and time."""

    statement: Statement
    iss: str
    iat: int


def sign_statement(statement: Statement, *, iss: str, iat: int, signer: JwsSigner, kid: str) -> str:
    """The compact JWS of ``statement`` (``typ: zk-statement+jwt``) signed by ``signer``."""
    payload = {"iss": iss, "iat": iat, "statement": statement.document()}
    return sign_compact({"typ": STATEMENT_TYP, "kid": kid}, payload, signer)


def statement_kid(token: str) -> str:
    """The ``kid`` a statement token names (to find the registry key's version).

    Raises :class:`StatementSignatureInvalid` for a token that is not a JWS with one.
    """
    try:
        jws = parse_compact(
            token, algs=ACCEPTED_ALGS, max_chars=_MAX_TOKEN_CHARS, decode_payload=False
        )
    except JwsInvalid as e:
        raise StatementSignatureInvalid("the statement is not an acceptable JWS") from e
    kid = jws.header.get("kid")
    if not isinstance(kid, str):
        raise StatementSignatureInvalid("the statement names no key")
    return kid


def verify_statement(
    token: str, key: SignatureVerifier, *, iss: str | None = None
) -> SignedStatement:
    """Verify a statement token under the registry ``key``: 1 a compact JWS with an
    allowed ``alg`` and no embedded key, 2 ``typ``, 3 the signature, 4 ``iss``, 5 the
    statement's shape.

    Raises :class:`StatementSignatureInvalid` (steps 1-4) or :class:`StatementInvalid`.
    """
    try:
        jws = parse_compact(
            token, algs=ACCEPTED_ALGS, max_chars=_MAX_TOKEN_CHARS, decode_payload=False
        )
    except JwsInvalid as e:
        raise StatementSignatureInvalid("the statement is not an acceptable JWS") from e
    if jws.header.get("typ") != STATEMENT_TYP:
        raise StatementSignatureInvalid(f"the JWS typ is not {STATEMENT_TYP}")
    try:
        jws.verify(key)
        payload = jws.payload
    except (CommonsError, JwsInvalid) as e:
        raise StatementSignatureInvalid("the statement signature does not verify") from e
    if iss is not None and payload.get("iss") != iss:
        raise StatementSignatureInvalid("the statement was not signed by this registry")
    iat = payload.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise StatementSignatureInvalid("the statement has no signing time")
    issuer = payload.get("iss")
    if not isinstance(issuer, str):
        raise StatementSignatureInvalid("the statement names no issuer")
    return SignedStatement(parse_statement(payload.get("statement")), issuer, iat)
