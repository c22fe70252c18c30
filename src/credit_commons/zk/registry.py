"""The ZK statement registry (issue 18 §1; seed 002 §6): signed statements in a table.

:func:`register_statement` checks a statement document (``zk/statement.py``), refuses a
``dev`` setup in production and an artefact whose file is missing or whose SHA-256 is not the
document's, signs it with the platform's ``zk-registry`` key (Ed25519, made on first use) and
writes it — a new version replaces the row — with a ``zk.statement_registered`` event in the
same transaction.  :func:`load_statement` is what the wallet and the verifier use: it verifies
the stored token's signature under the registry key, refuses a ``dev`` setup in production,
and re-hashes every artefact, refusing a mismatch, before anything reads them.

Artefacts are files of one directory, the engine's (:data:`ARTEFACTS`, package data); a
statement names them by file name only.  :func:`register_dev_statements` registers the
engine's statements from its manifest (their setup is ``dev``: a one-contributor local
powers of tau).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import JsonObject, canonical_json
from credit_commons.core.errors import ConflictError, NotFoundError
from credit_commons.events import Digest, EventDetails, Token, record_event
from credit_commons.identity import Principal, actor_of
from credit_commons.keys import KeyType
from credit_commons.keys import service as key_service
from credit_commons.runtime import Runtime
from credit_commons.zk.registry_dev import dev_statements
from credit_commons.zk.registry_models import ZkProofUseRow, ZkStatementRow
from credit_commons.zk.registry_schemas import StatementView
from credit_commons.zk.statement import (
    ArtefactMismatch,
    SetupNotAllowed,
    Statement,
    StatementNotFound,
    StatementSignatureInvalid,
    parse_statement,
    sign_statement,
    statement_kid,
    verify_statement,
)

__all__ = [
    "ARTEFACTS",
    "ZK_REGISTRY_KEY",
    "LoadedStatement",
    "StatementRegistered",
    "artefact_files",
    "get_statement",
    "list_statements",
    "load_statement",
    "proof_used",
    "record_proof_uses",
    "register_dev_statements",
    "register_statement",
    "register_statement_as",
    "statements_for_vct",
]

ZK_REGISTRY_KEY: Final = "zk-registry"
_PLATFORM_KEY: Final = key_service.PlatformKey(ZK_REGISTRY_KEY, KeyType.ED25519, "zk")
#: The directory of the engine's artefacts (circuits' WASM, proving and verification keys),
#: read at each load (a test points it elsewhere).
ARTEFACTS = Path(__file__).parent / "artefacts"


class StatementRegistered(EventDetails, event_type="zk.statement_registered"):
    """A ZK statement was registered or replaced: its id, version, setup provenance and the
    SHA-256 of its document (statements are public; nothing personal is in them)."""

    statement: Token
    version: int
    provenance: Token
    document_sha256: Digest


@dataclass(frozen=True, slots=True)
class LoadedStatement:
    """A registry statement whose signature verified and whose artefacts hashed as
    registered: the statement, and each artefact's path and bytes (by role)."""

    statement: Statement
    paths: dict[str, Path]
    contents: dict[str, bytes]

    @property
    def verification_key(self) -> JsonObject:
        """The verification key's JSON (snarkjs ``verification_key.json``)."""
        loaded: JsonObject = json.loads(self.contents["vkey"])
        return loaded


def _document_sha256(statement: Statement) -> str:
    return hashlib.sha256(canonical_json(statement.document())).hexdigest()


def _refuse_dev(rt: Runtime, statement: Statement) -> None:
    # Seed 002 §6, mainnet hardening: only a ceremony-attested setup in production.
    if rt.settings.is_production and statement.setup_provenance != "ceremony_attested":
        raise SetupNotAllowed(
            f"production refuses the {statement.setup_provenance} setup of {statement.id}"
        )


def _artefacts(statement: Statement, directory: Path) -> tuple[dict[str, Path], dict[str, bytes]]:
    # Every artefact re-hashed from its file: a mismatch (or a missing file) refuses.
    paths: dict[str, Path] = {}
    contents: dict[str, bytes] = {}
    for role, artefact in sorted(statement.artefacts.items()):
        path = directory / artefact.file
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ArtefactMismatch(f"the {role} of {statement.id} cannot be read") from e
        if hashlib.sha256(data).hexdigest() != artefact.sha256:
            raise ArtefactMismatch(f"the {role} of {statement.id} differs from the registry's")
        paths[role], contents[role] = path, data
    return paths, contents


def artefact_files(statement: Statement, directory: Path) -> dict[str, Path]:
    """The paths of ``statement``'s artefacts in ``directory`` (by role), each re-hashed
    against the statement (a wallet's local copies, before it proves).

    Raises :class:`ArtefactMismatch`.
    """
    return _artefacts(statement, directory)[0]


def _view(row: ZkStatementRow, statement: Statement) -> StatementView:
    return StatementView(
        id=row.id,
        version=row.version,
        setup_provenance=row.provenance,
        document_sha256=row.document_sha256,
        registered_at=utc(row.registered_at).isoformat(),
        statement=statement.document(),
        token=row.token,
    )


def register_statement(
    session: Session,
    rt: Runtime,
    document: object,
    *,
    actor: str,
    artefacts: Path | None = None,
) -> StatementView:
    """Register ``document`` (a statement's JSON), or a newer version of one, signed by the
    registry key, with its event; ``actor`` is the operator's pseudonym.

    Raises ``StatementInvalid``, :class:`SetupNotAllowed` (``dev`` in production),
    :class:`ArtefactMismatch`, and :class:`ConflictError` for a version not above the one
    registered.
    """
    statement = parse_statement(document)
    _refuse_dev(rt, statement)
    _artefacts(statement, artefacts or ARTEFACTS)
    row = session.get(ZkStatementRow, statement.id)
    if row is not None and row.version >= statement.version:
        raise ConflictError(
            f"{statement.id} is registered at version {row.version}; register a higher one"
        )
    now = rt.clock.now()
    signer = key_service.platform_signer(session, rt, _PLATFORM_KEY)
    token = sign_statement(
        statement,
        iss=rt.settings.public_url,
        iat=int(now.timestamp()),
        signer=signer,
        kid=signer.kid,
    )
    digest = _document_sha256(statement)
    if row is None:
        row = ZkStatementRow(id=statement.id)
        session.add(row)
    row.version = statement.version
    row.provenance = statement.setup_provenance
    row.document_sha256 = digest
    row.token = token
    row.registered_at = now
    session.flush()
    record_event(
        session,
        StatementRegistered(
            statement=statement.id,
            version=statement.version,
            provenance=statement.setup_provenance,
            document_sha256=digest,
        ),
        actor=actor,
        at=now,
        object=rt.objects.digest("zk_statement", statement.id),
    )
    return _view(row, statement)


def register_statement_as(
    session: Session, rt: Runtime, principal: Principal, document: object
) -> StatementView:
    """:func:`register_statement` for an administrator over HTTP (``POST
    /v1/admin/zk/statements``; others get :class:`NotFoundError`), the event's actor the
    administrator's pseudonym.

    Raises what :func:`register_statement` raises (:class:`SetupNotAllowed` in production).
    """
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    return register_statement(session, rt, document, actor=actor_of(rt, principal))


def register_dev_statements(
    session: Session, rt: Runtime, *, actor: str, artefacts: Path | None = None
) -> list[StatementView]:
    """Register the engine's statements from its manifest (``zk/registry_dev.py``; setup
    ``dev``): each one not registered yet, or registered with another document (the
    artefacts were made again) as its next version.  Returns those registered now.

    Raises what :func:`register_statement` raises (:class:`SetupNotAllowed` in production).
    """
    directory = artefacts or ARTEFACTS
    registered = []
    for made in dev_statements(directory):
        row = session.get(ZkStatementRow, made["id"])
        version = 1
        if row is not None:
            current = {**made, "version": row.version}
            if row.document_sha256 == _document_sha256(parse_statement(current)):
                continue  # registered already, as it is
            version = row.version + 1
        document = {**made, "version": version}
        registered.append(
            register_statement(session, rt, document, actor=actor, artefacts=directory)
        )
    return registered


def list_statements(session: Session, rt: Runtime) -> list[StatementView]:
    """Every registered statement (newest version of each), by id, each token's signature
    verified.  Raises :class:`StatementSignatureInvalid`."""
    rows = session.scalars(select(ZkStatementRow).order_by(ZkStatementRow.id))
    return [_view(r, _verified(session, rt, r)) for r in rows]


def _verified(session: Session, rt: Runtime, row: ZkStatementRow) -> Statement:
    kid = statement_kid(row.token)
    versions = key_service.platform_key_versions(session, rt, _PLATFORM_KEY)
    key = next((v.public_key for v in versions if v.kid == kid), None)
    if key is None:
        raise StatementSignatureInvalid("the statement's key is not the registry's")
    signed = verify_statement(row.token, key)
    statement = signed.statement
    if statement.id != row.id or statement.version != row.version:
        raise StatementSignatureInvalid("the statement is not the one registered under its id")
    if _document_sha256(statement) != row.document_sha256:
        raise StatementSignatureInvalid("the statement's document differs from the registry's")
    return statement


def get_statement(
    session: Session, rt: Runtime, statement_id: str
) -> tuple[StatementView, Statement]:
    """One registered statement: its view and its document, the token's signature verified.

    Raises :class:`StatementNotFound` and :class:`StatementSignatureInvalid`.
    """
    row = session.get(ZkStatementRow, statement_id) if len(statement_id) <= 64 else None
    if row is None:
        raise StatementNotFound("no such ZK statement")
    statement = _verified(session, rt, row)
    return _view(row, statement), statement


def load_statement(
    session: Session, rt: Runtime, statement_id: str, *, artefacts: Path | None = None
) -> LoadedStatement:
    """The statement ``statement_id`` ready to prove or verify with: its signature verified,
    its setup allowed here, every artefact re-hashed against the registry's SHA-256.

    Raises :class:`StatementNotFound`, :class:`StatementSignatureInvalid`,
    :class:`SetupNotAllowed` and :class:`ArtefactMismatch`.
    """
    _, statement = get_statement(session, rt, statement_id)
    _refuse_dev(rt, statement)
    paths, contents = _artefacts(statement, artefacts or ARTEFACTS)
    return LoadedStatement(statement, paths, contents)


def statements_for_vct(session: Session, rt: Runtime, vct: str) -> list[Statement]:
    """The registered statements that read a claim of credential type ``vct`` (what the
    issuer commits to at issuance), their signatures verified.

    Raises :class:`StatementSignatureInvalid`.
    """
    rows = session.scalars(select(ZkStatementRow).order_by(ZkStatementRow.id))
    found = [_verified(session, rt, row) for row in rows]
    return [s for s in found if s.credential.vct == vct]


def proof_used(session: Session, digest: str) -> bool:
    """Whether a proof of SHA-256 ``digest`` was accepted before (step 8's replay check)."""
    return session.get(ZkProofUseRow, digest) is not None


def record_proof_uses(session: Session, rt: Runtime, digests: Sequence[str]) -> None:
    """Mark the proofs of ``digests`` used, in the decision's transaction (a digest used
    twice makes the transaction fail: a replay that raced the first use decides nothing).

    Raises the database's integrity error for a digest already used.
    """
    now = rt.clock.now()
    for digest in dict.fromkeys(digests):
        session.add(ZkProofUseRow(proof_sha256=digest, used_at=now))
    session.flush()
