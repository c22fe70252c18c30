"""Errors of the vault.

Opening data fails in exactly one way toward the caller: :class:`DecryptionFailed`, whatever
went wrong (unknown format, truncation, a wrong key, a moved ciphertext, a flipped bit).  A
distinct error per cause would be an oracle.  :class:`KeyVersionRetired` is the one refinement:
it is raised for a wrapped key whose master-key version an operator has retired, and it *is a*
:class:`DecryptionFailed`, so code that catches the one opaque error still catches it.

:class:`KmsUnavailable` and :class:`KmsConfigInvalid` are defined with the PKCS#11 token in
:mod:`credit_commons.keys.errors` (the key store on an HSM raises them too) and named here.
"""

from __future__ import annotations

from credit_commons.core.errors import IntegrityError
from credit_commons.keys import KmsConfigInvalid, KmsUnavailable

__all__ = ["DecryptionFailed", "KeyVersionRetired", "KmsConfigInvalid", "KmsUnavailable"]


class DecryptionFailed(IntegrityError):
    """A sealed value or a wrapped key does not open (one opaque error for every cause)."""

    code = "vault.decryption_failed"
    title = "Decryption failed"


class KeyVersionRetired(DecryptionFailed):
    """A wrapped key is under a master-key version below the minimum decryption version.

    Rewrap the data keys (``commons vault rewrap``) before retiring a version.
    """

    code = "vault.key_version_retired"
    title = "Master key version retired"
