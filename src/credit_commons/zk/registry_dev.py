"""The engine's statements as registry documents, from its artefact manifest (``dev``).

``artefacts/manifest.json`` (``scripts/zk-setup.sh``) gives each circuit's files by role
(``wasm``, ``zkey``, ``vkey``) and their SHA-256; the documents here say what each circuit's
public inputs are, in its order, where a verifier takes each value, the parameters' bounds,
and the credential claim it reads.  The
setup is a local one-contributor powers of tau, hence ``dev``: production refuses these.

- ``score_at_least``: the Credit Readiness Credential's score (``/score_opening/score``,
  300-900) ≥ ``threshold``;
- ``income_bracket_at_most``: its income bracket's position (``<1L`` = 0 … ``>1Cr`` = 4)
  ≤ ``limit``;
- ``age_at_least``: a birth date (``/birth_date`` of the catalogue's ``KycCredential``, as
  its day number, ``date.toordinal()``) at least ``min_age_days`` before the verifier's
  day — the proof's ``verifier_day`` within one day of the verifier's own, the circuit's
  ``max_drift`` fixed at 0 — so a holder passes at most one day before the date;
- ``member_of_group``: an SHG id (``/shg_id`` of the catalogue's ``ShgMembershipCredential``)
  in the set of ids the verifier names (``groups``: the root of their Poseidon Merkle tree,
  ``zk/merkle.py``);
- ``community_score_at_least``: issue 19's community score (``/score_opening/score`` of the
  catalogue's ``CommunityTierCredential``, in micro-units: 25 is ``25000000``) ≥
  ``threshold`` — the same comparison as ``score_at_least``, its own circuit and keys.

The ``vct`` of each statement's credential type is defined here, and the catalogue's
built-in types (``issuer/catalogue.py``) take theirs from these constants, so the two cannot
drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from credit_commons.core.encoding import JsonObject
from credit_commons.zk.statement import ArtefactMismatch

__all__ = ["COMMUNITY_TIER_VCT", "CREDIT_READINESS_VCT", "KYC_VCT", "SHG_VCT", "dev_statements"]

CREDIT_READINESS_VCT: Final = "https://credit-commons.dev/vct/credit-readiness/v1"
KYC_VCT: Final = "https://credit-commons.dev/vct/kyc/v1"
SHG_VCT: Final = "https://credit-commons.dev/vct/shg-membership/v1"
COMMUNITY_TIER_VCT: Final = "https://credit-commons.dev/vct/community-tier/v1"
#: The largest community score a proof can name, in micro-units (10^9 units; the circuit's
#: comparison is over 64 bits).
COMMUNITY_SCORE_MAX: Final = 10**15
INCOME_BRACKETS: Final = ("<1L", "1L-5L", "5L-25L", "25L-1Cr", ">1Cr")

_COMMITMENT: Final = {"name": "commitment", "source": "commitment"}
_BINDING: Final = {"name": "binding", "source": "binding"}

_SHAPES: Final[dict[str, dict[str, Any]]] = {
    "score_at_least": {
        "title": "the committed score is at least threshold",
        "public_inputs": [
            _COMMITMENT,
            {"name": "threshold", "source": "param", "param": "threshold"},
            _BINDING,
        ],
        "params": {"threshold": {"min": 0, "max": 1000}},
        "credential": {
            "vct": CREDIT_READINESS_VCT,
            "claim": "/score_opening/score",
            "encoding": "integer",
            "commitment": "score",
        },
    },
    "income_bracket_at_most": {
        "title": "the committed income bracket is at most limit",
        "public_inputs": [
            _COMMITMENT,
            {"name": "limit", "source": "param", "param": "limit"},
            _BINDING,
        ],
        "params": {"limit": {"min": 0, "max": len(INCOME_BRACKETS) - 1}},
        "credential": {
            "vct": CREDIT_READINESS_VCT,
            "claim": "/income_bracket",
            "encoding": "enum_index",
            "commitment": "income_bracket",
            "enum": list(INCOME_BRACKETS),
        },
    },
    "age_at_least": {
        "title": "the committed birth date is at least min_age_days before the verifier's day",
        "public_inputs": [
            _COMMITMENT,
            {"name": "verifier_day", "source": "verifier_day", "max_drift_days": 1},
            {"name": "min_age_days", "source": "param", "param": "min_age_days"},
            {"name": "max_drift", "source": "constant", "value": 0},
            _BINDING,
        ],
        "params": {"min_age_days": {"min": 0, "max": 54_750}},
        "credential": {
            "vct": KYC_VCT,
            "claim": "/birth_date",
            "encoding": "date_days",
            "commitment": "birth_date",
        },
    },
    "member_of_group": {
        "title": "the committed SHG id is in the verifier's set",
        "public_inputs": [
            _COMMITMENT,
            {"name": "root", "source": "set_root", "param": "groups"},
            _BINDING,
        ],
        "params": {"groups": {"set_of": "string_id", "max_items": 64}},
        "credential": {
            "vct": SHG_VCT,
            "claim": "/shg_id",
            "encoding": "string_id",
            "commitment": "shg_id",
        },
    },
    "community_score_at_least": {
        "title": "the committed community score (micro-units) is at least threshold",
        "public_inputs": [
            _COMMITMENT,
            {"name": "threshold", "source": "param", "param": "threshold"},
            _BINDING,
        ],
        "params": {"threshold": {"min": 0, "max": COMMUNITY_SCORE_MAX}},
        "credential": {
            "vct": COMMUNITY_TIER_VCT,
            "claim": "/score_opening/score",
            "encoding": "integer",
            "commitment": "score",
        },
    },
}
_ROLES: Final = ("wasm", "zkey", "vkey")


def dev_statements(directory: Path, *, version: int = 1) -> list[JsonObject]:
    """The engine's statements as documents, their artefacts' hashes from the manifest in
    ``directory`` (provenance ``dev``).

    Raises :class:`ArtefactMismatch` when the manifest is missing or lacks a statement.
    """
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        listed = manifest["statements"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ArtefactMismatch("the engine's artefact manifest cannot be read") from e
    documents: list[JsonObject] = []
    for name, shape in _SHAPES.items():
        files = listed.get(name) if isinstance(listed, dict) else None
        if not isinstance(files, dict) or any(
            not isinstance(files.get(role), dict) or set(files[role]) < {"file", "sha256"}
            for role in _ROLES
        ):
            raise ArtefactMismatch(f"the manifest has no artefacts for {name}")
        documents.append(
            {
                "id": name,
                "version": version,
                **shape,
                "proof_system": "groth16",
                "curve": "bls12-381",
                "artefacts": {
                    role: {"file": files[role]["file"], "sha256": files[role]["sha256"]}
                    for role in _ROLES
                },
                "required_bindings": ["nonce", "audience", "request_hash"],
                "setup_provenance": "dev",
            }
        )
    return documents
