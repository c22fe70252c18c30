"""The credential issuer: the catalogue of credential types (``catalogue``, ``service``),
issuing SD-JWT VCs and VC-JWTs singly, in batches and through OID4VCI (``credentials``,
``batch``, ``build_pool``, ``oid4vci``, with ``sd_jwt`` for issuance and presentation), the
registry of issued credentials and their status changes (``registry``), the status lists
it publishes (``status``, ``status_index``), the issuer identifiers it has used
(``identifiers``), and its parts of consent retrieval, export and erasure (``holdings``,
``export``, ``erasure``).

Verifying credentials — this issuer's and trusted others' — is the verifier's
(:mod:`credit_commons.verifier`, one layer up); the issuer never imports it.
``sd_jwt_errors`` and ``status_list`` only keep the import paths of the published vector
tests (the code is in :mod:`credit_commons.formats`).
"""

from __future__ import annotations

from credit_commons.issuer.catalogue import COMMUNITY_TIER, COMMUNITY_TIER_VCT, CREDIT_READINESS
from credit_commons.issuer.documents import issuer_did
from credit_commons.issuer.erasure import forget_subject, subject_erased
from credit_commons.issuer.export import export_credentials
from credit_commons.issuer.holdings import (
    HELD,
    EntryState,
    HeldCredential,
    entry_state,
    held,
    issued_text,
    join_held_credentials,
    sd_jwt_credentials,
    subject_at_entry,
)
from credit_commons.issuer.identifiers import is_own_issuer, own_status_list_id
from credit_commons.issuer.schemas import ExportedCredential
from credit_commons.issuer.sd_jwt import disclosure_paths, present
from credit_commons.issuer.status import (
    ISSUER_KEY,
    RenderedList,
    StatusKind,
    StatusRef,
    get_status,
    issuer_key_versions,
    issuer_public_key,
    issuer_signer,
    status_uri,
)
from credit_commons.issuer.status import render as render_status_list

__all__ = [
    "COMMUNITY_TIER",
    "COMMUNITY_TIER_VCT",
    "CREDIT_READINESS",
    "HELD",
    "ISSUER_KEY",
    "EntryState",
    "ExportedCredential",
    "HeldCredential",
    "RenderedList",
    "StatusKind",
    "StatusRef",
    "disclosure_paths",
    "entry_state",
    "export_credentials",
    "forget_subject",
    "get_status",
    "held",
    "is_own_issuer",
    "issued_text",
    "issuer_did",
    "issuer_key_versions",
    "issuer_public_key",
    "issuer_signer",
    "join_held_credentials",
    "own_status_list_id",
    "present",
    "render_status_list",
    "sd_jwt_credentials",
    "status_uri",
    "subject_at_entry",
    "subject_erased",
]
