"""The vault: envelope encryption of personal data under a KMS-held master key.

Key hierarchy: a versioned master key (KEK) inside a KMS (:class:`LocalKms`, or
:class:`Pkcs11Kms` on an HSM) wraps one subject key per (subject, purpose); each sealed value
carries its own record key wrapped under the subject key (:mod:`credit_commons.vault.envelope`,
format ``CCV1``).  Master-key rotation rewraps subject keys only; deleting a subject's keys
crypto-shreds everything sealed for them.  Every failure to open is :class:`DecryptionFailed`.

``Pkcs11Kms`` imports python-pkcs11 only when a token is used, so the vault loads without it.
"""

from __future__ import annotations

from credit_commons.vault.envelope import (
    EnvelopeHeader,
    SealContext,
    SubjectKeyRef,
    open_envelope,
    parse_header,
    seal,
)
from credit_commons.vault.errors import (
    DecryptionFailed,
    KeyVersionRetired,
    KmsConfigInvalid,
    KmsUnavailable,
)
from credit_commons.vault.kms import Kms, LocalKms, WrappedKey
from credit_commons.vault.pkcs11 import Pkcs11Kms
from credit_commons.vault.service import Vault
from credit_commons.vault.state import note_destroyed_below, note_kek_version, state_subquery

__all__ = [
    "DecryptionFailed",
    "EnvelopeHeader",
    "KeyVersionRetired",
    "Kms",
    "KmsConfigInvalid",
    "KmsUnavailable",
    "LocalKms",
    "Pkcs11Kms",
    "SealContext",
    "SubjectKeyRef",
    "Vault",
    "WrappedKey",
    "note_destroyed_below",
    "note_kek_version",
    "open_envelope",
    "parse_header",
    "seal",
    "state_subquery",
]
